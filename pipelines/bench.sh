#!/bin/sh
# `make bench`: speed of the reference inference core on the shared models
# (a benchmark, not a test: it never fails on a slow figure).
#
# For sqz-s7 (f32), sqz-m29 (bf16, as shipped), sqz-m29 converted to f32
# (through lc-export --type f32 and lc-import), and variants of the
# latter - 50% unstructured and 2:4 pruned (magnitude, f32 values), RTN
# 4-bit g32, 2:4 and 50% unstructured with 4-bit g32 codes, and a 20%
# parameter cut by low-rank factors - at 1 and 2 threads:
#   prefill tok/s  one lc_forward of 512 tokens from position 0   (lc-eval --speed-only)
#   decode tok/s   128 single-token steps after an 8-token prompt
#   of BW limit    decode tok/s x bytes read per token (lc_model_bytes_per_token)
#                  / streaming-read bandwidth measured by `lc-eval --bandwidth`
#                  with the same thread count (1 GiB buffer, 4x the L3).
# The fraction can exceed 1 when the weights fit in the L3 cache (sqz-s7's
# 26 MiB do; DESIGN.md: measure, don't assume).  Medians of REPS runs
# (default 5) with their spread (max-min)/median.  The machine is shared:
# compare figures from one run side by side and quote ratios.
#
#   REPS=5 THREADS="1 2" pipelines/bench.sh
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
: "${LC_SHARED:=$TOP/../shared}"
BIN=$TOP/bin
OUT=$TOP/build/bench
REPS=${REPS:-5}
THREADS=${THREADS:-1 2}
mkdir -p "$OUT" || exit 1
[ -x "$BIN/lc-eval" ] || { echo "bench: build first (make)" >&2; exit 1; }
if [ ! -d "$LC_SHARED/models" ]; then
  echo "bench: no test assets in $LC_SHARED (set LC_SHARED): nothing to measure" >&2
  exit 0
fi

# jget KEY FILE: first numeric value of "KEY" in lc-eval's JSON
jget() { sed -n "s/.*\"$1\": \([-0-9.eE+]*\).*/\1/p" "$2" | head -n 1; }

import() { # name -> build/bench/name.h5
  f=$OUT/$1.h5
  [ -s "$f" ] || "$BIN/lc-import" -q "$LC_SHARED/models/$1" -o "$f" || exit 1
}
import sqz-s7
import sqz-m29
if [ ! -s "$OUT/sqz-m29-f32.h5" ]; then
  "$BIN/lc-export" -q --to gguf --type f32 "$OUT/sqz-m29.h5" -o "$OUT/sqz-m29-f32.gguf" &&
    "$BIN/lc-import" -q "$OUT/sqz-m29-f32.gguf" -o "$OUT/sqz-m29-f32.h5" || exit 1
  rm -f "$OUT/sqz-m29-f32.gguf"
fi

# compressed variants of sqz-m29 (f32): the pairs the low-bit and sparse
# kernels must win - 50% unstructured and 2:4 f32 against dense f32, 2:4 +
# 4-bit against 4-bit
derive() { # name tool args...
  f=$OUT/$1.h5 tool=$2
  shift 2
  [ -s "$f" ] || "$BIN/$tool" -q "$@" "$OUT/sqz-m29-f32.h5" -o "$f" || exit 1
}
derive m29-q4g32 lc-quant --method rtn --bits 4 --group 32
derive m29-50 lc-prune --method magnitude --sparsity 0.5
derive m29-nm24 lc-prune --method magnitude --nm 2:4
derive m29-nm24-q4g32 lc-prune --method magnitude --nm 2:4 --bits 4 --group 32
derive m29-50-q4g32 lc-prune --method magnitude --sparsity 0.5 --bits 4 --group 32
# a 20% parameter cut of every linear by low-rank factors (f32), against dense f32: the embedding
# and the tied head stay, so the ideal is the ratio of bytes per token (~1.21x)
derive m29-lr20 lc-lowrank --method svd --ratio 0.2

for t in $THREADS; do
  "$BIN/lc-eval" --bandwidth --json --threads "$t" >"$OUT/bw-$t.json" || exit 1
  printf 'bandwidth, %s thread(s): %.2f GB/s\n' "$t" "$(awk -v b="$(jget bandwidth_bytes_s "$OUT/bw-$t.json")" \
    'BEGIN { print b / 1e9 }')"
done
echo
printf '%-14s %3s %10s %7s %9s %7s %10s %9s\n' model thr prefill spread decode spread "MiB/token" "of BW"
for m in sqz-s7 sqz-m29 sqz-m29-f32 m29-50 m29-nm24 m29-q4g32 m29-nm24-q4g32 m29-50-q4g32 m29-lr20; do
  for t in $THREADS; do
    j=$OUT/speed-$m-$t.json
    "$BIN/lc-eval" -q --speed-only --no-ledger --json --threads "$t" --speed-reps "$REPS" "$OUT/$m.h5" >"$j" ||
      exit 1
    bw=$(jget bandwidth_bytes_s "$OUT/bw-$t.json")
    awk -v m="$m" -v t="$t" -v pp="$(jget prefill_tok_s "$j")" -v ps="$(jget prefill_spread "$j")" \
      -v tg="$(jget decode_tok_s "$j")" -v ts="$(jget decode_spread "$j")" -v bpt="$(jget bytes_per_token "$j")" \
      -v bw="$bw" 'BEGIN { printf "%-14s %3d %10.1f %6.1f%% %9.1f %6.1f%% %10.2f %8.1f%%\n", m, t, pp, 100 * ps, tg,
        100 * ts, bpt / 1048576, 100 * tg * bpt / bw }'
  done
done
echo
echo "prefill/decode: tokens/s, median of $REPS; spread = (max-min)/median; of BW = decode x bytes/token / bandwidth"
