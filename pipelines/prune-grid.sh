#!/bin/sh
# Pruning grid on one model: magnitude, Wanda and SparseGPT at 50%
# unstructured and at 2:4, and 2:4 + 4-bit next to plain 4-bit at the same
# group size.  Every variant is evaluated with lc-eval against the base
# (heldout, default protocol, 120 chunks) and lands in the ledger; with
# SPEED=1 the decode speed of the pairs that the sparse kernels must win
# (50% unstructured and 2:4 f32 vs dense f32, 2:4 and 50% + 4-bit vs 4-bit) is measured side by side,
# alternating, REPS times each.
#   pipelines/prune-grid.sh [MODEL_DIR_OR_FILE] [OUT_DIR]
# Environment: LC_SHARED, LC_LEDGER_DB (default results/ledger.db), CHUNKS (120),
# SPEED (0), REPS (3), THREADS (1).
set -eu
cd "$(dirname "$0")/.."
./pipelines/deps.sh grid
export PATH="$PWD/bin:$PATH"
SRC=${1:-${LC_SHARED:-../shared}/models/sqz-m29}
OUT=${2:-results/prune-grid}
CHUNKS=${CHUNKS:-120}
mkdir -p "$OUT"
base=$OUT/base.h5
[ -f "$base" ] || lc-import -q --dtype f32 "$SRC" -o "$base"
make_variant() { # name, tool, args...
  name=$1 tool=$2; shift 2
  if [ ! -f "$OUT/$name.h5" ]; then
    echo "== $name: $tool $*" >&2
    /usr/bin/time -f "$name: $tool %e s, peak %M KiB" "$tool" -q "$@" "$base" -o "$OUT/$name.h5"
  fi
}
evaluate() { # name (once per container: a report newer than it is kept)
  if [ ! "$OUT/$1.txt" -nt "$OUT/$1.h5" ]; then
    lc-eval -q --text heldout --chunks "$CHUNKS" --base "$base" --base-cache "$OUT/base.cache" --no-speed \
      --name "$1" "$OUT/$1.h5" >"$OUT/$1.txt.tmp" && mv "$OUT/$1.txt.tmp" "$OUT/$1.txt"
  fi
  grep -E "^size|perplexity|KLD|top-1" "$OUT/$1.txt" | sed "s/^/$1: /" >&2
}
run() { make_variant "$@"; evaluate "$1"; }

run mag-50      lc-prune --method magnitude --sparsity 0.5
run wanda-50    lc-prune --method wanda     --sparsity 0.5
run sgpt-50     lc-prune --method sparsegpt --sparsity 0.5
run mag-24      lc-prune --method magnitude --nm 2:4
run wanda-24    lc-prune --method wanda     --nm 2:4
run sgpt-24     lc-prune --method sparsegpt --nm 2:4
run rtn4-g32    lc-quant --method rtn --bits 4 --group 32
run mag-24-q4-g32  lc-prune --method magnitude --nm 2:4 --bits 4 --group 32
run sgpt-24-q4-g32 lc-prune --method sparsegpt --nm 2:4 --bits 4 --group 32
run mag-50-q4-g32  lc-prune --method magnitude --sparsity 0.5 --bits 4 --group 32

if [ "${SPEED:-0}" = 1 ]; then
  REPS=${REPS:-3} THREADS=${THREADS:-1}
  speed() { # name -> "decode tok/s" of one lc-eval run (median of its 5 repetitions)
    lc-eval --speed-only --no-ledger -T "$THREADS" "$OUT/$1.h5" 2>/dev/null |
      sed -n 's/.*decode \([0-9.]*\) tok\/s.*/\1/p'
  }
  med() { echo "$@" | tr ' ' '\n' | sed '/^$/d' | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
  for pair in "base mag-50" "base mag-24" "rtn4-g32 mag-24-q4-g32" "rtn4-g32 sgpt-24-q4-g32" \
    "rtn4-g32 mag-50-q4-g32"; do
    set -- $pair
    a=""; b=""
    i=0
    while [ $i -lt "$REPS" ]; do
      a="$a $(speed "$1")"; b="$b $(speed "$2")"
      i=$((i + 1))
    done
    ma=$(med $a) mb=$(med $b)
    printf '%s %s tok/s (runs:%s) vs %s %s tok/s (runs:%s): %s\n' "$2" "$mb" "$b" "$1" "$ma" "$a" \
      "$(awk -v x="$mb" -v y="$ma" 'BEGIN {printf "%.2fx", x / y}')"
  done
fi
