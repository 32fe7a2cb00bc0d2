#!/bin/sh
# Build every fuzz target with libFuzzer + ASan/UBSan and run each for a
# short, bounded time (FUZZ_SECONDS, default 10) from its seed corpus.
# Any crash, leak, sanitizer report or oversized allocation fails.
set -eu
cd "$(dirname "$0")/../.."
SECS=${FUZZ_SECONDS:-10}
OUT=build/fuzz
mkdir -p "$OUT/obj"
CC=${FUZZ_CC:-clang}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
CFLAGS="-O1 -g -std=gnu11 -Werror=implicit-function-declaration -Ilibcompress $(pkg-config --cflags hdf5 jansson libxxhash) $SAN"
HDF5_LIBS=$(pkg-config --libs hdf5)
HL=$(echo "$HDF5_LIBS" | sed -n 's/.*-l\(hdf5[a-z_]*\).*/-l\1_hl/p')
LIBS="$HL $HDF5_LIBS $(pkg-config --libs jansson libxxhash) -lsqlite3 -lgsl -llapacke -lopenblas -lm -lpthread"
objs=""
for src in libcompress/*/*.c; do
  o=$OUT/obj/$(echo "${src#libcompress/}" | tr / _ | sed 's/\.c$//').o
  if [ ! -f "$o" ] || [ "$src" -nt "$o" ] || [ -n "$(find libcompress -name '*.h' -newer "$o")" ]; then
    $CC $CFLAGS -fsanitize=fuzzer-no-link -c "$src" -o "$o"
  fi
  objs="$objs $o"
done
fail=0
for f in "$@"; do
  name=$(basename "$f" .c)
  $CC $CFLAGS -fsanitize=fuzzer "$f" $objs $LIBS -o "$OUT/$name"
  corpus=$OUT/corpus-$name
  rm -rf "$corpus"; mkdir -p "$corpus"
  [ -d "tests/fuzz/corpus/$name" ] && cp tests/fuzz/corpus/"$name"/* "$corpus"/ 2>/dev/null || true
  echo "== fuzz $name (${SECS}s)"
  if ! ASAN_OPTIONS=detect_leaks=1 "$OUT/$name" -max_total_time="$SECS" -max_len=65536 \
       -rss_limit_mb=2048 -malloc_limit_mb=1024 -print_final_stats=0 -artifact_prefix="$OUT/$name-" \
       "$corpus" >"$OUT/$name.log" 2>&1; then
    echo "FAIL: fuzz $name (see $OUT/$name.log)"; tail -30 "$OUT/$name.log"; fail=1
    [ -n "${LC_TEST_LOG:-}" ] && echo "fail 1" >>"$LC_TEST_LOG"
  else
    grep -E '^#[0-9]+.*DONE' "$OUT/$name.log" | tail -1 || true
    [ -n "${LC_TEST_LOG:-}" ] && echo "pass 1" >>"$LC_TEST_LOG"
  fi
done
exit $fail
