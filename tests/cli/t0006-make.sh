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
done_testing
