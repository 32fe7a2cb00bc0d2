#!/bin/sh
# One table of options (docs/OPTIONS.md): every tool's --help agrees with it,
# and no letter means two things.
. "$(dirname "$0")/lib.sh"
DOC=$TOP/docs/OPTIONS.md
: >"$TMP/pairs"
for t in lc-eval lc-export lc-gen lc-import lc-info lc-ledger lc-prune lc-quant; do
  run "$t" --help
  check "$t --help exits 0" test "$rc" = 0
  grep -oE '^  -[A-Za-z], --[a-z-]+' "$TMP/out" | sed "s/^  //; s/,//; s/$/ $t/" >>"$TMP/pairs"
  grep -oE '^ +--[a-z-]+' "$TMP/out" | sed 's/^ *//' >>"$TMP/longs"
  grep -oE '^  -[A-Za-z], --[a-z-]+' "$TMP/out" | sed 's/^.*, //' >>"$TMP/longs"
done
# a letter, one long name
dups=$(awk '{print $1, $2}' "$TMP/pairs" | sort -u | awk '{n[$1]++; l[$1]=l[$1]" "$2} END{for(k in n) if(n[k]>1) print k":"l[k]}')
check "no letter has two meanings${dups:+ ($dups)}" test -z "$dups"
# every pair in the short table
missing=""
for p in $(awk '{print $1 "|" $2}' "$TMP/pairs" | sort -u); do
  s=${p%|*} l=${p#*|}
  grep -q "^| \`$s\` | \`$l\` |" "$DOC" || missing="$missing $s/$l"
done
check "every short option is in docs/OPTIONS.md${missing:+ (missing:$missing)}" test -z "$missing"
# every long option somewhere in the doc
missing=""
for l in $(sort -u "$TMP/longs"); do
  grep -q -- "\`$l[\` ]" "$DOC" || missing="$missing $l"
done
check "every long option is in docs/OPTIONS.md${missing:+ (missing:$missing)}" test -z "$missing"
# the long spellings people bring from other tools
expect_code 0 "lc-gen --temperature / --threads" lc-gen --temperature 0 --threads 1 --help
expect_fail_clean 2 "lc-gen -j is not --threads" lc-gen -j 2 x.h5
expect_fail_clean 2 "lc-export -t is not --to" lc-export -t gguf x.h5
done_testing
