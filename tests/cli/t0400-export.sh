#!/bin/sh
# lc-export: GGUF / safetensors / llama2.c round trips through lc-import, type
# choices and fallbacks reported on stderr, refusals that exit 1 or 2 and
# leave no file behind.
. "$(dirname "$0")/lib.sh"

# a fixed part of `lc-info` output: the tensor table, no lineage
tensors() { lc-info "$1" | sed -n '/^tensors/,$p' | sed '/^lineage/,$d'; }
# the config of a container, canonical JSON on one line (never empty: a
# missing config fails the comparison instead of passing it)
cfgof() { lc-info --json "$1" >"$TMP/cfg.json" && json_get "$TMP/cfg.json" config || echo "no config in $1"; }

lc-import -q --synthetic 3 -o "$TMP/syn.h5"

# GGUF, types kept: same tensors and config after re-import; from stdin to stdout too
expect_code 0 "gguf export" lc-export --to gguf --name syn "$TMP/syn.h5" -o "$TMP/syn.gguf"
check "no stdout output with -o" test ! -s "$TMP/out"
check "summary on stderr" grep -q "wrote 20 tensors" "$TMP/err"
expect_code 0 "re-import the gguf" lc-import -q "$TMP/syn.gguf" -o "$TMP/back.h5"
check "gguf round trip: same config" test "$(cfgof "$TMP/syn.h5")" = "$(cfgof "$TMP/back.h5")"
lc-export -q --to gguf --name syn <"$TMP/syn.h5" >"$TMP/pipe.gguf"
check "stdin -> stdout gives the same file" cmp -s "$TMP/pipe.gguf" "$TMP/syn.gguf"
check "rope base always written" grep -q "llama.rope.freq_base" "$TMP/syn.gguf"

# K-quants on rows of 128 fall back, loudly, on rows of 256 (ffn_down) they
# are written; overrides; a pattern matching nothing warns
expect_code 0 "q4_k with fallback" lc-export --to gguf --type q4_k --override 'layers.*.attn_output=q6_k' \
  --override 'nosuch*=q8_0' "$TMP/syn.h5" -o "$TMP/k.gguf"
check "fallback reported" grep -q "not a multiple of the Q4_K block.*Q4_1 instead" "$TMP/err"
check "q6_k fallback reported" grep -q "attn_output: row length 128 is not a multiple of the Q6_K block.*Q8_0 instead" "$TMP/err"
check "rows of 256 take Q4_K: no fallback for ffn_down" sh -c "! grep -q 'ffn_down: row length' '$TMP/err'"
check "unused pattern warned" grep -q "nosuch\*' matched no matrix" "$TMP/err"
expect_code 0 "re-import q4_k export" lc-import -q "$TMP/k.gguf" -o "$TMP/k.h5"
# the last matching override wins (docs/OPTIONS.md), as in lc-quant
expect_code 0 "two overrides on one matrix" lc-export -q --to gguf --override 'layers.*=q8_0' \
  --override 'layers.0.*=f16' "$TMP/syn.h5" -o "$TMP/ov.gguf"
lc-import -q "$TMP/ov.gguf" -o "$TMP/ov.h5"
tensors "$TMP/ov.h5" >"$TMP/ov.txt"
check "override: the last match wins (layers.0 f16)" grep -q "layers.0.ffn_up  *f16" "$TMP/ov.txt"
check "override: the earlier rule elsewhere (layers.1 q8)" grep -q "layers.1.ffn_up  *q8-sym-g32" "$TMP/ov.txt"
tensors "$TMP/k.h5" >"$TMP/k.txt"
check "Q4_1 codes imported exactly" grep -q "layers.0.attn_q  *q4-min-g32" "$TMP/k.txt"
check "Q8_0 codes imported exactly" grep -q "layers.1.attn_output  *q8-sym-g32" "$TMP/k.txt"
check "Q4_K comes back dequantized to f32" grep -q "layers.1.ffn_down  *f32" "$TMP/k.txt"
check "norms stay f32" grep -q "layers.0.attn_norm  *f32" "$TMP/k.txt"

# quantized container -> gguf keeps the codes: export again, same tensor table
expect_code 0 "q4_0 export" lc-export -q --to gguf --name q --type q4_0 "$TMP/syn.h5" -o "$TMP/q.gguf"
lc-import -q "$TMP/q.gguf" -o "$TMP/q.h5"
expect_code 0 "re-export the quantized container" lc-export --to gguf --name q "$TMP/q.h5" -o "$TMP/q2.gguf"
check "exact codes: nothing re-quantized" sh -c "! grep -q 're-quantized' '$TMP/err'"
check "exact codes: identical file" cmp -s "$TMP/q.gguf" "$TMP/q2.gguf"

# safetensors directory
expect_code 0 "safetensors export" lc-export --to safetensors "$TMP/syn.h5" -o "$TMP/hf"
for f in config.json model.safetensors tokenizer.model tokenizer_config.json generation_config.json; do
  check "hf dir has $f" test -s "$TMP/hf/$f"
done
check "config has rope_theta top-level and nested" \
  sh -c "grep -q '^  \"rope_theta\"' '$TMP/hf/config.json' && grep -q '^    \"rope_theta\"' '$TMP/hf/config.json'"
expect_code 0 "re-import the hf dir" lc-import -q "$TMP/hf" -o "$TMP/hfback.h5"
check "hf round trip: same config" test "$(cfgof "$TMP/syn.h5")" = "$(cfgof "$TMP/hfback.h5")"
check "hf round trip: same tensors" test "$(tensors "$TMP/syn.h5")" = "$(tensors "$TMP/hfback.h5")"
expect_fail_clean 1 "non-empty dir refused" lc-export --to safetensors "$TMP/syn.h5" -o "$TMP/hf"
expect_code 0 "--force replaces" lc-export -q --force --to safetensors --dtype bf16 "$TMP/syn.h5" -o "$TMP/hf"
lc-import -q "$TMP/hf" -o "$TMP/hfbf.h5"
check "--dtype bf16" grep -q '"dtype": "bfloat16"' "$TMP/hf/config.json"
lc-info "$TMP/hfbf.h5" >"$TMP/info.txt"
check "--dtype bf16: tensors bf16" grep -q "layers.0.attn_q  *bf16" "$TMP/info.txt"
check "no temporary directory left" sh -c "! ls -d '$TMP'/hf.tmp-* 2>/dev/null"

# llama2.c
expect_code 0 "llama2c export" lc-export --to llama2c "$TMP/syn.h5" -o "$TMP/syn.bin" --tokenizer-out "$TMP/tok.bin"
expect_code 0 "re-import llama2c" lc-import -q "$TMP/syn.bin" --tokenizer "$TMP/tok.bin" -o "$TMP/l2c.h5"
check "llama2c round trip: same tensors" test "$(tensors "$TMP/syn.h5")" = "$(tensors "$TMP/l2c.h5")"

# usage errors: exit 2, nothing written
expect_fail_clean 2 "no --to" lc-export "$TMP/syn.h5" -o "$TMP/x.gguf"
expect_fail_clean 2 "unknown --to" lc-export --to onnx "$TMP/syn.h5" -o "$TMP/x.gguf"
expect_fail_clean 2 "unknown --type" lc-export --to gguf --type q5_k "$TMP/syn.h5" -o "$TMP/x.gguf"
expect_fail_clean 2 "bad --override" lc-export --to gguf --override 'layers.*' "$TMP/syn.h5" -o "$TMP/x.gguf"
expect_fail_clean 2 "--type with safetensors" lc-export --to safetensors --type q4_0 "$TMP/syn.h5" -o "$TMP/x"
expect_fail_clean 2 "safetensors needs -o" lc-export --to safetensors "$TMP/syn.h5"
expect_fail_clean 2 "two inputs" lc-export --to gguf a b
check "no output file after usage errors" test ! -e "$TMP/x.gguf" -a ! -e "$TMP/x"

# runtime errors: exit 1, nothing on stdout, no partial file
printf 'junk\n' >"$TMP/junk"
expect_fail_clean 1 "junk input" lc-export --to gguf "$TMP/junk" -o "$TMP/x.gguf"
expect_fail_clean 1 "missing input" lc-export --to gguf "$TMP/nope.h5" -o "$TMP/x.gguf"
expect_fail_clean 1 "unwritable output" lc-export --to gguf "$TMP/syn.h5" -o "$TMP/nodir/x.gguf"
expect_fail_clean 1 "junk on stdin to stdout" lc-export --to gguf <"$TMP/junk"
check "no output file after runtime errors" test ! -e "$TMP/x.gguf"
check "no temporary file left" sh -c "! ls '$TMP'/*.tmp-* 2>/dev/null"

# shared models: GGUF import -> export gives llama.cpp's tensor data back
if have_shared; then
  M=$LC_SHARED/models
  for t in f16 bf16 q8_0; do
    lc-import -q "$M/gguf/sqz-s7.$t.gguf" -o "$TMP/s7$t.h5"
    expect_code 0 "sqz-s7 $t: re-export" lc-export --to gguf "$TMP/s7$t.h5" -o "$TMP/s7$t.gguf"
    check "sqz-s7 $t: same size as llama.cpp's file" \
      test "$(wc -c <"$TMP/s7$t.gguf")" -le "$(($(wc -c <"$M/gguf/sqz-s7.$t.gguf") + 4096))"
    lc-import -q "$TMP/s7$t.gguf" -o "$TMP/s7$t.2.h5"
    check "sqz-s7 $t: same tensors after a second round" test "$(tensors "$TMP/s7$t.h5")" = "$(tensors "$TMP/s7$t.2.h5")"
  done
  lc-import -q "$M/sqz-s7" -o "$TMP/s7.h5"
  expect_code 0 "sqz-s7 -> safetensors" lc-export --to safetensors "$TMP/s7.h5" -o "$TMP/s7hf"
  check "sqz-s7 config keeps rope_parameters" grep -q '"rope_type": "default"' "$TMP/s7hf/config.json"
  expect_code 0 "sqz-s7 safetensors re-import" lc-import -q "$TMP/s7hf" -o "$TMP/s7b.h5"
  check "sqz-s7 safetensors: same config" test "$(cfgof "$TMP/s7.h5")" = "$(cfgof "$TMP/s7b.h5")"
  lc-import -q "$M/stories260K/stories260K.bin" -o "$TMP/st.h5"
  expect_code 0 "stories260K -> llama2c" lc-export --to llama2c "$TMP/st.h5" -o "$TMP/st.bin" --tokenizer-out "$TMP/st.tok"
  check "tok512.bin reproduced byte for byte" cmp -s "$TMP/st.tok" "$M/stories260K/tok512.bin"
  check "checkpoint has the original size" test "$(wc -c <"$TMP/st.bin")" = "$(wc -c <"$M/stories260K/stories260K.bin")"
fi
done_testing
