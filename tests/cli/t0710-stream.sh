#!/bin/sh
# The stream form (docs/FORMAT.md, "The stream form"): a pipe carries it,
# a redirected stdout stays HDF5, it round-trips to HDF5 and back bit for bit,
# every tool reads and writes it, and a stream cut short or corrupted is
# named as such: exit 1, nothing on stdout.
. "$(dirname "$0")/lib.sh"
export SOURCE_DATE_EPOCH=1700000000 # the lineage's time: the same bytes each run
lc-import -q --synthetic 3 -o "$TMP/base.h5"
lc-prune -q --method magnitude --nm 2:4 "$TMP/base.h5" -o "$TMP/s24.h5"
lc-quant -q --method rtn --bits 4 --group 32 "$TMP/s24.h5" -o "$TMP/sq.h5"
lc-lowrank -q --method svd --rank 8 "$TMP/base.h5" -o "$TMP/lr.h5"
hdf5() { [ "$(head -c 4 "$1" | od -An -c | tr -d ' ')" = '211HDF' ]; }

lc-export -q --to container "$TMP/sq.h5" | cat >"$TMP/sq.lcs"
check "a pipe carries the stream form" [ "$(head -c 8 "$TMP/sq.lcs")" = LCSTREAM ]
run lc-export -q --to container "$TMP/sq.h5"
check "stdout redirected to a file: HDF5" hdf5 "$TMP/out"
LC_PIPE_FORMAT=hdf5 lc-export -q --to container "$TMP/sq.h5" | cat >"$TMP/pipe.h5"
check "LC_PIPE_FORMAT=hdf5: HDF5 through a pipe" hdf5 "$TMP/pipe.h5"
check "LC_PIPE_FORMAT=hdf5: the same file as the input" cmp -s "$TMP/pipe.h5" "$TMP/sq.h5"

# ---- round trips -----------------------------------------------------------
for m in sq lr base; do
  lc-export -q --to container "$TMP/$m.h5" | cat >"$TMP/$m.lcs"
  run lc-export -q --to container -o "$TMP/$m.back.h5" - <"$TMP/$m.lcs"
  check "$m: stream -> file exits 0" [ "$rc" = 0 ]
  check "$m: the file from the stream is HDF5" hdf5 "$TMP/$m.back.h5"
  lc-export -q --to container "$TMP/$m.back.h5" | cat >"$TMP/$m.lcs2"
  check "$m: stream -> file -> stream, the same bytes" cmp -s "$TMP/$m.lcs" "$TMP/$m.lcs2"
  lc-info "$TMP/$m.h5" | tail -n +2 >"$TMP/a.txt"
  lc-info - <"$TMP/$m.lcs" | tail -n +2 >"$TMP/b.txt"
  check "$m: lc-info reads the same container from the stream" cmp -s "$TMP/a.txt" "$TMP/b.txt"
  lc-info "$TMP/$m.lcs" | tail -n +2 >"$TMP/c.txt"
  check "$m: and from the stream saved to a file" cmp -s "$TMP/a.txt" "$TMP/c.txt"
done
# lc-prune, lc-quant and lc-import write files the same way, so their files
# come back byte for byte
check "sq: file -> stream -> file, the same bytes" cmp -s "$TMP/sq.h5" "$TMP/sq.back.h5"
check "lr: file -> stream -> file, the same bytes" cmp -s "$TMP/lr.h5" "$TMP/lr.back.h5"

# ---- every tool reads and writes it ----------------------------------------
lc-import -q --synthetic 3 | lc-prune -q --method magnitude --nm 2:4 | lc-quant -q --method rtn --bits 4 --group 32 |
  lc-export -q --to gguf --name m -o "$TMP/chain.gguf"
lc-export -q --to gguf --name m -o "$TMP/file.gguf" "$TMP/sq.h5"
check "import | prune | quant | export through pipes: the GGUF of the files' chain" cmp -s "$TMP/chain.gguf" "$TMP/file.gguf"
lc-import -q --synthetic 3 | lc-lowrank -q --method svd --rank 8 | lc-info --json - >"$TMP/a.json"
lc-info --json "$TMP/lr.h5" >"$TMP/b.json"
check "import | lowrank | info: the file's tensors" [ "$(json_get "$TMP/a.json" tensors)" = "$(json_get "$TMP/b.json" tensors)" ]
check "import | lowrank | info: format version 2 (a low-rank term)" [ "$(json_get "$TMP/a.json" format_version)" = 2 ]
lc-eval -q --text "$TOP/README.md" --ctx 64 --chunks 2 --speed-reps 1 --json "$TMP/sq.h5" >"$TMP/e1.json"
lc-eval -q --text "$TOP/README.md" --ctx 64 --chunks 2 --speed-reps 1 --json - <"$TMP/sq.lcs" >"$TMP/e2.json"
ppl() { /usr/bin/python3 -c 'import json,sys; print(repr(json.load(open(sys.argv[1]))["perplexity"]["ppl"]))' "$1"; }
check "lc-eval: the same perplexity from the stream" [ "$(ppl "$TMP/e1.json")" = "$(ppl "$TMP/e2.json")" ]

# ---- a stream cut short or corrupted -----------------------------------------
SIZE=$(wc -c <"$TMP/sq.lcs")
for n in 0 1 7 8 15 16 17 40 100 1000 3000 $((SIZE / 5)) $((SIZE / 4)) $((SIZE / 3)) $((SIZE / 2)) \
  $((SIZE * 2 / 3)) $((SIZE - 100)) $((SIZE - 9)) $((SIZE - 8)) $((SIZE - 1)); do
  head -c $n "$TMP/sq.lcs" >"$TMP/cut"
  for tool in "lc-info -" "lc-quant -q --method rtn --bits 8 --group 32 --requantize -"; do
    run sh -c "$tool <'$TMP/cut'"
    if [ "$rc" != 1 ] || [ -s "$TMP/out" ]; then echo "# exit $rc"; not_ok "cut at $n of $SIZE: ${tool%% *} exits 1, nothing on stdout"
    elif [ $n -ge 8 ] && ! grep -q "stream cut short after $n bytes" "$TMP/err"; then
      not_ok "cut at $n of $SIZE: ${tool%% *} says the stream was cut short, and where"
    else ok "cut at $n of $SIZE: ${tool%% *}"; fi
  done
done
/usr/bin/python3 - "$TMP/sq.lcs" "$TMP/bad.lcs" <<'PY'
import sys
b = bytearray(open(sys.argv[1], 'rb').read())
b[len(b) // 2] ^= 0x40
open(sys.argv[2], 'wb').write(b)
PY
run sh -c "lc-info - <'$TMP/bad.lcs'"
check "a flipped byte: exit 1, nothing on stdout" [ "$rc" = 1 ] && [ ! -s "$TMP/out" ]
check "a flipped byte: the record that fails its checksum is named" grep -q "record '.*' at byte [0-9]* fails its checksum" "$TMP/err"
{ cat "$TMP/sq.lcs"; echo junk; } >"$TMP/long.lcs"
run sh -c "lc-info - <'$TMP/long.lcs'"
check "bytes after the end: exit 1" [ "$rc" = 1 ] && grep -q "bytes after the end record" "$TMP/err"
head -c $((SIZE - 1)) "$TMP/sq.lcs" >"$TMP/cut"
run sh -c "lc-info --digest - <'$TMP/cut'"
check "--digest of a stream cut short: exit 1, nothing on stdout" [ "$rc" = 1 ] && [ ! -s "$TMP/out" ]
run sh -c "lc-info --digest - <'$TMP/sq.lcs'"
if command -v xxhsum >/dev/null 2>&1; then
  check "--digest of a stream: the XXH64 of its bytes (xxhsum)" [ "$(cat "$TMP/out")" = "$(xxhsum -H1 <"$TMP/sq.lcs" | cut -d' ' -f1)" ]
else
  check "--digest of a piped stream: that of the same stream in a file" [ "$(cat "$TMP/out")" = "$(lc-info --digest "$TMP/sq.lcs")" ]
fi
# a stage whose input stops halfway: the next stage says so, and no file is left
head -c $((SIZE / 2)) "$TMP/sq.lcs" >"$TMP/half"
expect_fail_clean 1 "a stream cut halfway into a file writer" lc-export -q --to container -o "$TMP/never.h5" "$TMP/half"
check "a stream cut halfway: no output file" [ ! -e "$TMP/never.h5" ]
done_testing
