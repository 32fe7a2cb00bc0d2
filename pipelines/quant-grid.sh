#!/bin/sh
# Quantization grid on one model: every recipe is quantized, evaluated with
# lc-eval against the base (heldout, default protocol, 120 chunks) and lands
# in the ledger; prints the comparison at the end.
#   pipelines/quant-grid.sh [MODEL_DIR_OR_FILE] [OUT_DIR]
# Environment: LC_SHARED, LC_LEDGER_DB (default results/ledger.db), CHUNKS (120).
# The base model's log-probs are computed once and cached in OUT/base.cache.
set -eu
cd "$(dirname "$0")/.."
./pipelines/deps.sh grid
export PATH="$PWD/bin:$PATH"
SRC=${1:-${LC_SHARED:-../shared}/models/sqz-m29}
OUT=${2:-results/quant-grid}
CHUNKS=${CHUNKS:-120}
mkdir -p "$OUT"
base=$OUT/base.h5
[ -f "$base" ] || lc-import -q "$SRC" -o "$base"
run() { # name, lc-quant args...
  name=$1; shift
  if [ ! -f "$OUT/$name.h5" ]; then
    echo "== $name: lc-quant $*" >&2
    /usr/bin/time -f "$name: quantize %e s, peak %M KiB" lc-quant -q "$@" "$base" -o "$OUT/$name.h5"
  fi
  lc-eval -q --text heldout --chunks "$CHUNKS" --base "$base" --base-cache "$OUT/base.cache" --no-speed \
    --name "$name" "$OUT/$name.h5" >"$OUT/$name.txt"
  grep -E "^size|perplexity|KLD|top-1" "$OUT/$name.txt" | sed "s/^/$name: /" >&2
}
run rtn4-g128      --method rtn  --bits 4 --group 128 --embed-bits 8
run gptq4-g128     --method gptq --bits 4 --group 128 --embed-bits 8
run awq4-g128      --method awq  --bits 4 --group 128 --embed-bits 8
run rtn3-g128      --method rtn  --bits 3 --group 128 --embed-bits 8
run gptq3-g128     --method gptq --bits 3 --group 128 --embed-bits 8
run gptq4-g64-asym --method gptq --bits 4 --group 64 --asym --embed-bits 8
run gptq4-g32      --method gptq --bits 4 --group 32 --embed-bits 6
