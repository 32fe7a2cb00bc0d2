#!/bin/sh
# Reproduce the base perplexities of $LC_SHARED/REFERENCE.md with lc-eval and
# compare them (within 0.05%).  Slow (all 801 WikiText chunks for two
# models): run it by hand, one at a time on a shared machine; not part of
# `make check`.
#
#   pipelines/verify-reference.sh [NAME...]     NAME: m29-wiki s7-wiki m29-held s7-held s7-held-all
#
# Models are imported into build/bench/ when missing (shared with bench.sh).
# Exit status: 0 all within tolerance, 1 a mismatch or failure.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
: "${LC_SHARED:=$TOP/../shared}"
BIN=$TOP/bin
OUT=$TOP/build/bench
TOL=0.00001   # relative: 0.001%, ten times the largest difference measured (README)
THREADS=${THREADS:-2}
mkdir -p "$OUT" || exit 1
[ -d "$LC_SHARED/models" ] || { echo "verify-reference: no test assets in $LC_SHARED" >&2; exit 1; }
[ -x "$BIN/lc-eval" ] || { echo "verify-reference: build first (make)" >&2; exit 1; }

model() { # name -> container path, imported once
  f=$OUT/$1.h5
  if [ ! -s "$f" ]; then
    "$BIN/lc-import" -q "$LC_SHARED/models/$1" -o "$f" || exit 1
  fi
  echo "$f"
}

WIKI=$LC_SHARED/data/wikitext-2/wiki.test.raw
HELD=$LC_SHARED/data/heldout/heldout.txt
# name model text chunks(0 = all) reference
CASES="m29-wiki sqz-m29 $WIKI 0 593.06
s7-wiki sqz-s7 $WIKI 0 728.27
m29-held sqz-m29 $HELD 120 75.962
s7-held sqz-s7 $HELD 120 70.762
s7-held-all sqz-s7 $HELD 0 58.317"

fail=0
printf '%-12s %-8s %-14s %7s %11s %11s %9s %8s\n' case model text chunks PPL reference "diff%" seconds
echo "$CASES" | while read -r name m text chunks ref; do
  if [ $# -gt 0 ]; then
    want=0
    for a in "$@"; do [ "$a" = "$name" ] && want=1; done
    [ $want = 1 ] || continue
  fi
  f=$(model "$m") || exit 1
  copt=""
  [ "$chunks" != 0 ] && copt="--chunks $chunks"
  t0=$(date +%s)
  # shellcheck disable=SC2086
  if ! "$BIN/lc-eval" -q --no-speed --no-ledger --threads "$THREADS" $copt --text "$text" "$f" >"$OUT/$name.txt"; then
    echo "verify-reference: $name: lc-eval failed" >&2
    exit 1
  fi
  t1=$(date +%s)
  ppl=$(awk '/^perplexity:/ {print $2}' "$OUT/$name.txt")
  nch=$(awk '/^protocol:/ {print $6}' "$OUT/$name.txt")
  diff=$(awk -v a="$ppl" -v b="$ref" 'BEGIN { printf "%+.4f", 100 * (a / b - 1) }')
  ok=$(awk -v a="$ppl" -v b="$ref" -v t="$TOL" 'BEGIN { d = a / b - 1; if (d < 0) d = -d; print (d <= t) ? "ok" : "MISMATCH" }')
  printf '%-12s %-8s %-14s %7s %11s %11s %9s %8s %s\n' "$name" "$m" "$(basename "$text")" "$nch" "$ppl" "$ref" \
    "$diff" $((t1 - t0)) "$ok"
  [ "$ok" = ok ] || exit 1
done || fail=1
exit $fail
