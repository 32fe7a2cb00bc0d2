#!/bin/sh
# The Makefile's sanitizer targets add their flags to the project's (warnings,
# -MMD -MP dependency files, -fno-strict-aliasing) instead of replacing them.
. "$(dirname "$0")/lib.sh"
need make "Makefile flag checks" || { done_testing; exit; }
for t in asan tsan; do
  make -n -C "$TOP" --no-print-directory "$t" ASAN_BUILD="$TMP/b-$t" TSAN_BUILD="$TMP/b-$t" >"$TMP/n-$t" 2>&1
  line=$(grep -m1 -- ' -c libcompress/core/lc.c' "$TMP/n-$t")
  case "$line" in *-fsanitize=*) ok "make $t compiles with the sanitizer" ;; *) not_ok "make $t compiles with the sanitizer" ;; esac
  for f in -MMD -MP -Wall -fno-strict-aliasing; do
    case "$line" in *" $f "*) ok "make $t keeps $f" ;; *) echo "# $line"; not_ok "make $t keeps $f" ;; esac
  done
done
# deps.sh: per target, and without root once everything is present (a
# fresh build tree has no stamp, so make -n shows the deps.sh call)
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
  expect_code 0 "deps.sh check passes without root on a complete machine" \
    setpriv --reuid=65534 --regid=65534 --clear-groups "$TOP/pipelines/deps.sh" check
else
  skip "deps.sh without root: this test drops root with setpriv, and runs as $(id -un)"
fi
expect_code 2 "deps.sh refuses an unknown set" "$TOP/pipelines/deps.sh" nosuchset
make -n -C "$TOP" --no-print-directory BUILD="$TMP/b-demo" demo >"$TMP/n-demo" 2>&1
check "make demo asks for the demo set only (no clang)" grep -q "deps.sh demo\$" "$TMP/n-demo"
make -n -C "$TOP" --no-print-directory BUILD="$TMP/b-check" check >"$TMP/n-check" 2>&1
check "make check asks for the check set" grep -q "deps.sh check\$" "$TMP/n-check"
done_testing
