#!/bin/sh
# make demo: the main job, nightly-style, on one machine.
#   import the default model -> a few recipes (RTN and GPTQ 4-bit, ...) ->
#   lc-eval under a target profile -> ledger -> comparison table.
# Model: LC_MODEL, else sqz-s7 from the shared test assets, else a SYNTHETIC
# random model (mechanics only: its figures mean nothing, and say so).
# Environment: LC_SHARED, LC_MODEL, LC_PROFILE (laptop-2c), LC_DEMO_DIR,
# LC_LEDGER_DB (default results/ledger.db), CHUNKS (40).
set -eu
cd "$(dirname "$0")/.."
export PATH="$PWD/bin:$PATH"
SHARED=${LC_SHARED:-../shared}
OUT=${LC_DEMO_DIR:-results/demo}
PROFILE=${LC_PROFILE:-laptop-2c}
CHUNKS=${CHUNKS:-40}
DB=${LC_LEDGER_DB:-results/ledger.db}
mkdir -p "$OUT"

model=${LC_MODEL:-}
if [ -z "$model" ] && [ -d "$SHARED/models/sqz-s7" ]; then model=$SHARED/models/sqz-s7; fi
if [ -n "$model" ]; then
  TEXT=heldout CALIB=calib NS=64 SL=512 CTX=512 LABEL=$(basename "$model")
  echo "demo: importing $model" >&2
  lc-import -q "$model" -o "$OUT/base.h5"
else
  echo "demo: no model found (set LC_MODEL or LC_SHARED): using a SYNTHETIC random model." >&2
  echo "demo: its figures exercise the mechanics only and mean nothing." >&2
  lc-import -q --synthetic 1 -o "$OUT/base.h5"
  # byte-level vocabulary: the project's own documentation serves as text
  cat README.md docs/*.md >"$OUT/text.txt"
  TEXT=$OUT/text.txt CALIB=$OUT/text.txt NS=8 SL=256 CTX=256 LABEL=SYNTHETIC CHUNKS=8
fi
lc-info --check "$OUT/base.h5" >/dev/null
stamp=$(date -u +%Y%m%dT%H%M%SZ)
eval_one() { # recipe-name, container
  lc-eval -q --profile "$PROFILE" --db "$DB" --text "$TEXT" --ctx "$CTX" --chunks "$CHUNKS" \
    --base "$OUT/base.h5" --speed-reps 3 --name "$LABEL/$1" "$2" >"$OUT/$1.txt"
  echo "demo: $1: $(grep -E '^perplexity' "$OUT/$1.txt")" >&2
}
eval_one base "$OUT/base.h5"
echo "demo: RTN 4-bit g32" >&2
lc-quant -q --method rtn --bits 4 --group 32 "$OUT/base.h5" -o "$OUT/rtn4.h5"
eval_one rtn4-g32 "$OUT/rtn4.h5"
echo "demo: GPTQ 4-bit g32 ($NS x $SL calibration tokens)" >&2
lc-quant -q --method gptq --bits 4 --group 32 --calib "$CALIB" --nsamples "$NS" --seqlen "$SL" \
  "$OUT/base.h5" -o "$OUT/gptq4.h5"
eval_one gptq4-g32 "$OUT/gptq4.h5"
echo "demo: RTN 8-bit g32" >&2
lc-quant -q --method rtn --bits 8 --group 32 "$OUT/base.h5" -o "$OUT/rtn8.h5"
eval_one rtn8-g32 "$OUT/rtn8.h5"
echo
echo "Ledger $DB, profile $PROFILE, runs of this demo:"
lc-ledger --db "$DB" list --profile "$PROFILE" --limit 4
echo
echo "Same data with SQL:"
echo "  sqlite3 $DB \"select model_name, bpw, ppl, kld_mean, top1, decode_tok_s from runs where profile='$PROFILE' order by kld_mean\""
[ "$LABEL" = SYNTHETIC ] && echo "(SYNTHETIC model: these figures mean nothing.)"
exit 0
