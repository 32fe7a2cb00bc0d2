#!/bin/sh
# Low-rank grid on one model: plain SVD, SVD-LLM whitening and ASVD at the
# same parameter cuts; GPTQ 3-bit g128 with and without a rank-32 8-bit
# compensation, next to what the same bytes buy as a smaller group or more
# bits.  Each is evaluated with lc-eval against the base (heldout, default
# protocol, 120 chunks) into the ledger; SPEED=1 measures speed too.
#   pipelines/lowrank-grid.sh [MODEL_DIR_OR_FILE] [OUT_DIR]
# Environment: LC_SHARED, LC_LEDGER_DB (default results/ledger.db), CHUNKS (120),
# RATIOS ("0.2 0.4").  The base's log-probs are cached in OUT/base.cache.
set -eu
cd "$(dirname "$0")/.."
./pipelines/deps.sh grid
export PATH="$PWD/bin:$PATH"
SRC=${1:-${LC_SHARED:-../shared}/models/sqz-m29}
OUT=${2:-results/lowrank-grid}
CHUNKS=${CHUNKS:-120}
RATIOS=${RATIOS:-0.2 0.4}
mkdir -p "$OUT"
base=$OUT/base.h5
[ -f "$base" ] || lc-import -q "$SRC" -o "$base"
eval_one() { # name file (a report newer than the file is kept: rerunning resumes the grid)
  [ -s "$OUT/$1.txt" ] && [ "$OUT/$1.txt" -nt "$2" ] && { grep -E "KLD" "$OUT/$1.txt" | sed "s/^/$1: /" >&2; return; }
  lc-eval -q --text heldout --chunks "$CHUNKS" --base "$base" --base-cache "$OUT/base.cache" \
    $([ "${SPEED:-0}" = 1 ] || echo --no-speed) --name "$1" "$2" >"$OUT/$1.txt"
  grep -E "^size|KLD|top-1|decode" "$OUT/$1.txt" | sed "s/^/$1: /" >&2
}
run() { # name, lc-lowrank args...
  name=$1; shift
  if [ ! -f "$OUT/$name.h5" ]; then
    echo "== $name: lc-lowrank $*" >&2
    /usr/bin/time -f "$name: factor %e s, peak %M KiB" lc-lowrank -q "$@" "$base" -o "$OUT/$name.h5"
  fi
  eval_one "$name" "$OUT/$name.h5"
}
eval_one base "$base"
for r in $RATIOS; do
  pct=$(echo "$r" | awk '{printf "%d", $1 * 100 + 0.5}')
  run "svd-cut$pct" --method svd --ratio "$r"
  run "whiten-cut$pct" --method whiten --ratio "$r"
  run "asvd-cut$pct" --method asvd --ratio "$r"
done
quant() { # name, lc-quant args...
  name=$1; shift
  [ -f "$OUT/$name.h5" ] || /usr/bin/time -f "$name: quantize %e s, peak %M KiB" lc-quant -q "$@" "$base" -o "$OUT/$name.h5"
  eval_one "$name" "$OUT/$name.h5"
}
quant gptq3-g128 --method gptq --bits 3 --group 128
if [ ! -f "$OUT/gptq3-g128-comp32q8.h5" ]; then
  /usr/bin/time -f "gptq3-g128-comp32q8: compensate %e s, peak %M KiB" lc-lowrank -q --compensate 32 --factor-bits 8 \
    --reference "$base" "$OUT/gptq3-g128.h5" -o "$OUT/gptq3-g128-comp32q8.h5"
fi
eval_one gptq3-g128-comp32q8 "$OUT/gptq3-g128-comp32q8.h5"
quant gptq3-g32 --method gptq --bits 3 --group 32
quant gptq4-g128 --method gptq --bits 4 --group 128
