#!/bin/sh
# make demo: the main job - a small night of compression jobs on one machine.
#   a plan (results/demo/demo.plan) of one model x {RTN 4-bit, GPTQ 4-bit,
#   SparseGPT 2:4, 2:4 + GPTQ 4-bit, low-rank (whitened SVD, 20% of the
#   parameters removed)} x {laptop-2c, edge-1c} -> pipelines/nightly.sh ->
#   one ledger row per model and profile -> the comparison table and the
#   night's HTML report (Pareto plots).
# Model: LC_MODEL, else sqz-s7 from the shared test assets, else a SYNTHETIC
# random model (mechanics only: its figures mean nothing, and say so).
# Environment: LC_SHARED, LC_MODEL, LC_DEMO_DIR (results/demo), LC_LEDGER_DB
# (default results/ledger.db), CHUNKS (40), JOBS (2).
set -eu
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:$PATH"
SHARED=${LC_SHARED:-../shared}
OUT=${LC_DEMO_DIR:-results/demo}
CHUNKS=${CHUNKS:-40}
DB=${LC_LEDGER_DB:-results/ledger.db}
mkdir -p "$OUT"

model=${LC_MODEL:-}
if [ -z "$model" ] && [ -d "$SHARED/models/sqz-s7" ]; then model=$SHARED/models/sqz-s7; fi
if [ -n "$model" ]; then
  model=$(readlink -f "$model")
  TEXT=heldout CALIB="--calib calib --nsamples 64 --seqlen 512" CTX=512 LABEL=$(basename "$model")
  SRC=$model
else
  echo "demo: no model found (set LC_MODEL or LC_SHARED): using a SYNTHETIC random model." >&2
  echo "demo: its figures exercise the mechanics only and mean nothing." >&2
  # byte-level vocabulary: the project's own documentation serves as text
  cat README.md docs/*.md >"$OUT/text.txt"
  TEXT=$(readlink -f "$OUT/text.txt") CALIB="--calib $(readlink -f "$OUT/text.txt") --nsamples 8 --seqlen 256"
  CTX=256 LABEL=SYNTHETIC SRC="--synthetic 1" CHUNKS=8
fi
cat >"$OUT/demo.plan" <<EOF
# written by pipelines/demo.sh: one model, five recipes, two profiles
model $(echo "$LABEL" | tr -c 'A-Za-z0-9._\n-' _) $SRC
profiles laptop-2c edge-1c
eval --text $TEXT --ctx $CTX --chunks $CHUNKS --speed-reps 3
jobs ${JOBS:-2}
timeout 1800
recipe rtn4       lc-quant --method rtn --bits 4 --group 32
recipe gptq4      lc-quant --method gptq --bits 4 --group 32 $CALIB
recipe sgpt24     lc-prune --method sparsegpt --nm 2:4 $CALIB
recipe sgpt24-q4  lc-prune --method sparsegpt --nm 2:4 $CALIB | lc-quant --method gptq --bits 4 --group 32 $CALIB
recipe lr20       lc-lowrank --method whiten --ratio 0.2 $CALIB
EOF
echo "demo: the plan is $OUT/demo.plan" >&2
night=demo-$(date -u +%Y%m%dT%H%M%SZ)
st=0
./pipelines/nightly.sh --db "$DB" --night "$night" --dir "$OUT/$night" "$OUT/demo.plan" || st=$?
# 3 = some job failed: the table and the report show which
[ $st = 0 ] || [ $st = 3 ] || exit $st
echo
echo "Ledger $DB, night $night, profile laptop-2c:"
lc-ledger --db "$DB" list --night "$night" --profile laptop-2c --limit 0
echo
echo "Same data with SQL:"
echo "  sqlite3 $DB \"select job, bpw, ppl, kld_mean, top1, decode_tok_s from runs where night='$night' order by kld_mean\""
echo "Report (Pareto plots per profile, regressions, failures, commands):"
echo "  $OUT/$night/report.html"
[ "$LABEL" = SYNTHETIC ] && echo "(SYNTHETIC model: these figures mean nothing.)"
exit $st
