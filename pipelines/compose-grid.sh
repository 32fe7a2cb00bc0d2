#!/bin/sh
# Composition grid: pruning and quantization chained through pipes against
# the one-pass joint SparseGPT, and each stage alone; every result is
# evaluated with lc-eval against the base (heldout, default protocol, 120
# chunks) and lands in the ledger.  Then decode speed of 2:4 + 4-bit from a
# pipe against dense 4-bit of the same group.  Prints the criteria of the
# composition issue with their figures.
#   pipelines/compose-grid.sh [MODEL_DIR_OR_FILE] [OUT_DIR]
# Environment: LC_SHARED, LC_LEDGER_DB (default results/ledger.db), CHUNKS
# (120), NSAMPLES (128), SEQLEN (512), THREADS (1, for the speed runs),
# REPS (3 alternating speed pairs; 0: no speed runs).
set -eu
cd "$(dirname "$0")/.."
./pipelines/deps.sh grid
export PATH="$PWD/bin:$PATH"
SRC=${1:-${LC_SHARED:-../shared}/models/sqz-m29}
OUT=${2:-results/compose-grid}
CHUNKS=${CHUNKS:-120}
NS=${NSAMPLES:-128}
SL=${SEQLEN:-512}
THREADS=${THREADS:-1}
REPS=${REPS:-3}
mkdir -p "$OUT"
base=$OUT/base.h5
# an f32 base, as the pruning grid (bf16 checkpoints are widened)
[ -f "$base" ] || lc-import -q --dtype f32 "$SRC" -o "$base"
CAL="--calib calib --nsamples $NS --seqlen $SL"
SGPT24="lc-prune -q --method sparsegpt --nm 2:4 $CAL"
GPTQ32="lc-quant -q --method gptq --bits 4 --group 32 $CAL"

# make NAME PIPELINE: the pipeline (reading $base on stdin) -> OUT/NAME.h5, timed
make_one() {
  name=$1 pipe=$2
  if [ ! -f "$OUT/$name.h5" ]; then
    echo "== $name: $pipe" >&2
    s=$(date +%s)
    sh -c "$pipe" <"$base" >"$OUT/$name.h5.part"
    mv "$OUT/$name.h5.part" "$OUT/$name.h5"
    echo "$name: built in $(($(date +%s) - s)) s" >&2
  fi
  lc-eval -q --text heldout --chunks "$CHUNKS" --base "$base" --base-cache "$OUT/base.cache" --no-speed \
    --name "$name" --json "$OUT/$name.h5" >"$OUT/$name.json"
}
kld() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["base"]["kld_mean"])' "$OUT/$1.json"; }
bpw() { /usr/bin/python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["size"]["bpw"])' "$OUT/$1.json"; }

make_one joint-sgpt24-q4g32 "lc-prune -q --method sparsegpt --nm 2:4 --bits 4 --group 32 $CAL"
make_one sgpt24-then-gptq4g32 "$SGPT24 | $GPTQ32"
make_one gptq4g32-then-sgpt24 "$GPTQ32 | $SGPT24"
make_one wanda50 "lc-prune -q --method wanda --sparsity 0.5 $CAL"
make_one gptq4g32 "$GPTQ32"
make_one wanda50-then-gptq4g32 "lc-prune -q --method wanda --sparsity 0.5 $CAL | $GPTQ32"
make_one rtn4g32 "lc-quant -q --method rtn --bits 4 --group 32"
make_one mag24-then-rtn4g32 "lc-prune -q --method magnitude --nm 2:4 | lc-quant -q --method rtn --bits 4 --group 32"

echo
printf '%-24s %8s %10s\n' recipe bpw kld_mean
for n in joint-sgpt24-q4g32 sgpt24-then-gptq4g32 gptq4g32-then-sgpt24 wanda50 gptq4g32 wanda50-then-gptq4g32; do
  printf '%-24s %8.3f %10.6f\n' "$n" "$(bpw $n)" "$(kld $n)"
done
/usr/bin/python3 - "$(kld joint-sgpt24-q4g32)" "$(kld sgpt24-then-gptq4g32)" "$(kld gptq4g32-then-sgpt24)" \
  "$(kld wanda50)" "$(kld gptq4g32)" "$(kld wanda50-then-gptq4g32)" <<'EOF'
import sys
j, pq, qp, w, g, wg = map(float, sys.argv[1:])
def line(ok, s): print(("met    " if ok else "NOT MET") + "  " + s)
line(pq <= 1.10 * j, "sparsegpt 2:4 | gptq 4-bit g32 within 10%% of joint: %.5f vs %.5f (x%.3f)" % (pq, j, pq / j))
line(qp <= 1.25 * j, "gptq 4-bit g32 | sparsegpt 2:4 within 25%% of joint: %.5f vs %.5f (x%.3f)" % (qp, j, qp / j))
line(wg <= w + g, "wanda 50%% | gptq 4-bit g32 no worse than the sum: %.5f vs %.5f + %.5f = %.5f" % (wg, w, g, w + g))
EOF

# decode speed: 2:4 + 4-bit (from a pipe) against dense 4-bit g32, alternating pairs
[ "$REPS" -gt 0 ] || exit 0
echo
echo "decode, $THREADS thread(s), $REPS alternating pairs (median of 5 inside each lc-eval run):"
for i in $(seq 1 "$REPS"); do
  for n in mag24-then-rtn4g32 rtn4g32; do
    lc-eval -q --speed-only --threads "$THREADS" --speed-reps 5 --json "$OUT/$n.h5" |
      /usr/bin/python3 -c 'import json,sys; print(sys.argv[1], json.load(sys.stdin)["speed"]["decode_tok_s"])' "$n"
  done
done | tee "$OUT/speed.txt"
/usr/bin/python3 - "$OUT/speed.txt" <<'EOF'
import sys, statistics as st
v = {}
for l in open(sys.argv[1]):
    n, x = l.split(); v.setdefault(n, []).append(float(x))
s, d = st.median(v["mag24-then-rtn4g32"]), st.median(v["rtn4g32"])
print(("met    " if s >= 1.1 * d else "NOT MET") + "  2:4 + 4-bit decodes at %.1f tok/s, dense 4-bit %.1f: x%.2f (goal 1.1)" % (s, d, s / d))
EOF
