#!/bin/sh
# `make bench-scale`: cost at real sizes, on synthetic Llama shapes (a
# benchmark, not a test: it never fails on a slow figure).
#
#   pipelines/bench-scale.sh [OUT]        (default build/bench-scale)
#
# For each shape of SHAPES (default "30m 125m 500m 1b"), a model of random
# f16 weights made by `lc-import --synthetic 1 --config SHAPE.json` (an
# HF-style config written here; the model is labelled SYNTHETIC):
#   stages   wall time and peak RSS (/usr/bin/time) of import, RTN 4-bit g32
#            (8-bit embeddings), GPTQ 4-bit g128 on GPTQ_TOKENS calibration
#            tokens (default 4096 = 8 x 512; 0 skips it), export of the f16
#            and the 4-bit model to GGUF; in files, and in pipes:
#            `lc-import | lc-info -` and `lc-import | lc-quant | lc-export`,
#            each stage of a pipe timed on its own
#   speed    prefill and decode tok/s of the f16 and the 4-bit model at each
#            thread count of THREADS (default "1 2"), REPS repetitions
#            (default 3), and decode as a fraction of the streaming-read
#            bandwidth `lc-eval --bandwidth` measures with the same threads;
#            one ledger row each (LC_LEDGER_DB, default OUT/ledger.db; the
#            rows share one --night, bench-scale-TIME)
#   llama.cpp with LLAMA_BIN set (a llama.cpp build outside the checkout:
#            the directory holding llama-bench and llama-quantize):
#            llama-quantize f16 -> Q4_0 beside lc-quant's RTN, and
#            llama-bench pp512 / tg64 on the exported GGUF files - the same
#            weights - with the ratios lc / llama.cpp
# MEM_SHAPES (default empty; "3b 7b" for the memory targets) runs only the
# piped stages of a shape: import | RTN | export, each stage's peak RSS.
# Files go to OUT (1B: about 4 GB; 7B: the f16 GGUF alone is 13.5 GB).
# Tables on stdout, progress on stderr; OUT/stages.tsv and OUT/speed.tsv
# keep the figures.  The machine is shared: compare within one run.
set -u
TOP=$(cd "$(dirname "$0")/.." && pwd)
BIN=$TOP/bin
OUT=${1:-$TOP/build/bench-scale}
SHAPES=${SHAPES-30m 125m 500m 1b}
MEM_SHAPES=${MEM_SHAPES-}
THREADS=${THREADS:-1 2}
REPS=${REPS:-3}
GPTQ_TOKENS=${GPTQ_TOKENS:-4096}
LLAMA_BIN=${LLAMA_BIN:-}
NIGHT=bench-scale-$(date -u +%Y%m%dT%H%M%SZ)
mkdir -p "$OUT" || exit 1
DB=${LC_LEDGER_DB:-$OUT/ledger.db}
[ -x "$BIN/lc-eval" ] || { echo "bench-scale: build first (make)" >&2; exit 1; }
[ -x /usr/bin/time ] || { echo "bench-scale: needs /usr/bin/time (Debian package time)" >&2; exit 1; }
if [ -n "$LLAMA_BIN" ]; then
  for t in llama-bench llama-quantize; do
    [ -x "$LLAMA_BIN/$t" ] || { echo "bench-scale: LLAMA_BIN=$LLAMA_BIN has no $t" >&2; exit 1; }
  done
  export LD_LIBRARY_PATH="$LLAMA_BIN${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
fi

# config SHAPE FILE: an HF-style config.json of the shape
config() {
  case $1 in #            dim  layers heads kv  ffn    vocab  tied
    30m)  set -- 512  8  8  4  1536  8192 true ;;
    125m) set -- 768  12 12 4  2048  32000 true ;;
    500m) set -- 1280 24 20 4  3584  32000 true ;;
    1b)   set -- 2048 22 32 4  5632  8192 false ;;
    3b)   set -- 3072 26 24 8  8192  32000 false ;;
    7b)   set -- 4096 32 32 32 11008 32000 false ;;
    *) echo "bench-scale: unknown shape '$1' (30m 125m 500m 1b 3b 7b)" >&2; return 1 ;;
  esac
  printf '{"model_type": "llama", "hidden_size": %d, "num_hidden_layers": %d, "num_attention_heads": %d,
 "num_key_value_heads": %d, "intermediate_size": %d, "vocab_size": %d, "max_position_embeddings": 2048,
 "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": %s, "bos_token_id": 1,
 "eos_token_id": 2}\n' "$@" >"$CFG"
}

# jget KEY FILE: first numeric value of "KEY" in a JSON file
jget() { sed -n "s/.*\"$1\": \([-0-9.eE+]*\).*/\1/p" "$2" | head -n 1; }

# timed SHAPE STAGE MODE CMD...: run CMD under /usr/bin/time, append a row
# to stages.tsv; exit on failure
timed() {
  sh=$1 st=$2 mo=$3
  shift 3
  echo "bench-scale: $sh $st ($mo)" >&2
  /usr/bin/time -f '%e %M' -o "$OUT/.time" "$@" || { echo "bench-scale: $sh $st failed" >&2; exit 1; }
  read -r secs kib <"$OUT/.time"
  printf '%s\t%s\t%s\t%s\t%s\n' "$sh" "$st" "$mo" "$secs" "$kib" >>"$OUT/stages.tsv"
}

# piped SHAPE LABEL STAGE1 -- STAGE2 [-- STAGE3]: each stage of the pipe
# under its own /usr/bin/time (rows STAGEn-name, mode pipe)
piped() {
  sh=$1 lab=$2
  shift 2
  echo "bench-scale: $sh pipe $lab" >&2
  i=0 cmd=""
  for a in "$@"; do
    if [ "$a" = "--" ]; then
      i=$((i + 1))
      cmd="$cmd | /usr/bin/time -f '%e %M' -o '$OUT/.pipe$i'"
    else
      [ -n "$cmd" ] || cmd="/usr/bin/time -f '%e %M' -o '$OUT/.pipe0'"
      cmd="$cmd '$a'"
    fi
  done
  rm -f "$OUT"/.pipe*
  # /usr/bin/time starts its file with "Command exited with non-zero status"
  # when its command fails (sh has no pipefail)
  sh -c "$cmd >/dev/null" || { echo "bench-scale: $sh pipe $lab failed" >&2; exit 1; }
  n=0
  while [ $n -le $i ]; do
    if ! read -r secs kib <"$OUT/.pipe$n" || [ "$secs" = Command ]; then
      echo "bench-scale: $sh pipe $lab: stage $n failed" >&2
      exit 1
    fi
    printf '%s\t%s\t%s\t%s\t%s\n' "$sh" "$lab:$n" pipe "$secs" "$kib" >>"$OUT/stages.tsv"
    n=$((n + 1))
  done
}

# llama_ts CSV NPROMPT NGEN: avg_ts of that test in llama-bench's CSV
llama_ts() {
  awk -F, -v np="$2" -v ng="$3" 'NR == 1 { for (i = 1; i <= NF; i++) { gsub(/"/, "", $i); c[$i] = i }; next }
    { gsub(/"/, ""); if ($c["n_prompt"] == np && $c["n_gen"] == ng) print $c["avg_ts"] }' "$1"
}

: >"$OUT/stages.tsv"
: >"$OUT/speed.tsv"
for t in $THREADS; do
  "$BIN/lc-eval" --bandwidth --json --threads "$t" >"$OUT/bw-$t.json" || exit 1
done

for s in $SHAPES; do
  CFG=$OUT/$s.json
  config "$s" || exit 1
  m=$OUT/$s
  rm -f "$m.h5" "$m-q4.h5" "$m-gptq.h5" "$m-f16.gguf" "$m-q4.gguf" "$m-q4_0.gguf"
  timed "$s" import file "$BIN/lc-import" -q --synthetic 1 --config "$CFG" --dtype f16 -o "$m.h5"
  timed "$s" rtn file "$BIN/lc-quant" -q --method rtn --bits 4 --group 32 --embed-bits 8 "$m.h5" -o "$m-q4.h5"
  if [ "$GPTQ_TOKENS" -gt 0 ]; then
    timed "$s" gptq file "$BIN/lc-quant" -q --method gptq --bits 4 --group 128 --calib-tokens "$GPTQ_TOKENS" \
      --seqlen 512 "$m.h5" -o "$m-gptq.h5"
    rm -f "$m-gptq.h5"
  fi
  timed "$s" export-f16 file "$BIN/lc-export" -q --to gguf --type f16 "$m.h5" -o "$m-f16.gguf"
  timed "$s" export-q4 file "$BIN/lc-export" -q --to gguf "$m-q4.h5" -o "$m-q4.gguf"
  piped "$s" import-info "$BIN/lc-import" -q --synthetic 1 --config "$CFG" --dtype f16 -- "$BIN/lc-info" -
  piped "$s" import-rtn-export "$BIN/lc-import" -q --synthetic 1 --config "$CFG" --dtype f16 -- \
    "$BIN/lc-quant" -q --method rtn --bits 4 --group 32 --embed-bits 8 -- "$BIN/lc-export" -q --to gguf
  if [ -n "$LLAMA_BIN" ]; then
    timed "$s" llama-quantize file "$LLAMA_BIN/llama-quantize" "$m-f16.gguf" "$m-q4_0.gguf" Q4_0 \
      >/dev/null 2>&1
    rm -f "$m-q4_0.gguf"
  fi
  for v in f16 q4; do
    f=$m.h5
    [ $v = q4 ] && f=$m-q4.h5
    for t in $THREADS; do
      echo "bench-scale: $s $v speed, $t thread(s)" >&2
      j=$OUT/speed-$s-$v-$t.json
      "$BIN/lc-eval" -q --speed-only --json --threads "$t" --speed-reps "$REPS" --db "$DB" --night "$NIGHT" \
        --job "$s-$v-t$t" --name "synthetic-$s-$v" "$f" >"$j" || exit 1
      lpp="" ltg=""
      if [ -n "$LLAMA_BIN" ]; then
        "$LLAMA_BIN/llama-bench" -m "$m-$v.gguf" -p 512 -n 64 -r "$REPS" -t "$t" -o csv >"$OUT/llama.csv" \
          2>/dev/null || { echo "bench-scale: llama-bench failed on $m-$v.gguf" >&2; exit 1; }
        lpp=$(llama_ts "$OUT/llama.csv" 512 0) ltg=$(llama_ts "$OUT/llama.csv" 0 64)
      fi
      printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$s" "$v" "$t" "$(jget prefill_tok_s "$j")" \
        "$(jget decode_tok_s "$j")" "$(jget bytes_per_token "$j")" "$(jget bandwidth_bytes_s "$OUT/bw-$t.json")" \
        "$(jget peak_rss "$j")" "${lpp:--}" "${ltg:--}" >>"$OUT/speed.tsv"
    done
  done
  rm -f "$m-f16.gguf" "$m-q4.gguf"
done

for s in $MEM_SHAPES; do
  CFG=$OUT/$s.json
  config "$s" || exit 1
  piped "$s" import-rtn-export "$BIN/lc-import" -q --synthetic 1 --config "$CFG" --dtype bf16 -- \
    "$BIN/lc-quant" -q --method rtn --bits 4 --group 32 --embed-bits 8 -- "$BIN/lc-export" -q --to gguf
done

echo "bench-scale: $(grep -m1 'model name' /proc/cpuinfo | sed 's/.*: //'), $(nproc) CPUs, $(date -u +%Y-%m-%d)"
for t in $THREADS; do
  printf 'bandwidth, %s thread(s): %.2f GB/s\n' "$t" \
    "$(awk -v b="$(jget bandwidth_bytes_s "$OUT/bw-$t.json")" 'BEGIN { print b / 1e9 }')"
done
echo
printf '%-6s %-22s %-5s %9s %10s\n' shape stage mode seconds "peak MiB"
awk -F'\t' '{ printf "%-6s %-22s %-5s %9.2f %10.1f\n", $1, $2, $3, $4, $5 / 1024 }' "$OUT/stages.tsv"
echo "(pipe stages: NAME:i is the i-th command of the pipe, from 0)"
echo
printf '%-6s %-4s %3s %9s %8s %9s %7s %9s %9s %7s %7s\n' shape enc thr prefill decode "MiB/tok" "of BW" \
  "llama pp" "llama tg" "pp x" "tg x"
awk -F'\t' '{ pp = $9 == "-" ? "-" : sprintf("%.2f", $4 / $9); tg = $10 == "-" ? "-" : sprintf("%.2f", $5 / $10)
  lp = $9 == "-" ? "-" : sprintf("%.1f", $9); lt = $10 == "-" ? "-" : sprintf("%.1f", $10)
  printf "%-6s %-4s %3d %9.1f %8.1f %9.1f %6.1f%% %9s %9s %7s %7s\n", $1, $2, $3, $4, $5, $6 / 1048576,
    100 * $5 * $6 / $7, lp, lt, pp, tg }' "$OUT/speed.tsv"
echo
echo "prefill: 512 tokens; decode: 128 steps (lc-eval --speed-only), median of $REPS; llama.cpp: llama-bench"
echo "pp512 / tg64 on the same weights exported to GGUF; of BW = decode x bytes/token / bandwidth"
echo "ledger rows: $DB, night $NIGHT"
