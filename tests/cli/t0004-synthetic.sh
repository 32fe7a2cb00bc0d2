#!/bin/sh
# The synthetic model (demo and tests on a bare machine): valid, deterministic, labelled.
. "$(dirname "$0")/lib.sh"
expect_code 0 "synthetic import" lc-import -q --synthetic 5 -o "$TMP/a.h5"
expect_code 0 "it passes --check" lc-info --check "$TMP/a.h5"
check "labelled SYNTHETIC in the lineage" grep -q "SYNTHETIC" "$TMP/out"
lc-import -q --synthetic 5 -o "$TMP/b.h5"
lc-import -q --synthetic 6 -o "$TMP/c.h5"
h5dump -d /tensors/layers.1.ffn_down/data "$TMP/a.h5" >"$TMP/a.txt" 2>&1
h5dump -d /tensors/layers.1.ffn_down/data "$TMP/b.h5" >"$TMP/b.txt" 2>&1
h5dump -d /tensors/layers.1.ffn_down/data "$TMP/c.h5" >"$TMP/c.txt" 2>&1
sed -i 1d "$TMP/a.txt" "$TMP/b.txt" "$TMP/c.txt"
check "same seed, same weights" cmp -s "$TMP/a.txt" "$TMP/b.txt"
check "other seed, other weights" test "$(cksum <"$TMP/a.txt")" != "$(cksum <"$TMP/c.txt")"
expect_fail_clean 2 "--synthetic with a SOURCE too" lc-import --synthetic 5 somefile
expect_fail_clean 2 "--synthetic needs a number" lc-import --synthetic x
# --dtype converts dense weights (exactly when widening) and says so
expect_code 0 "--dtype bf16" lc-import -q --synthetic 5 --dtype bf16 -o "$TMP/h.h5"
expect_code 0 "--dtype f16" lc-import -q --synthetic 5 --dtype f16 -o "$TMP/f.h5"
lc-info "$TMP/h.h5" >"$TMP/out"
check "weights are bf16" grep -q "layers.0.attn_q  *bf16" "$TMP/out"
check "the lineage says so" grep -q "converted to bf16" "$TMP/out"
expect_fail_clean 2 "--dtype q4 refused" lc-import --synthetic 5 --dtype q4
# --config: any Llama shape from a Hugging Face config.json (untied head, GQA, a vocabulary past the bytes)
cat >"$TMP/cfg.json" <<'JSON'
{"model_type": "llama", "hidden_size": 96, "num_hidden_layers": 3, "num_attention_heads": 6,
 "num_key_value_heads": 2, "intermediate_size": 160, "vocab_size": 300, "max_position_embeddings": 256,
 "rms_norm_eps": 1e-5, "rope_theta": 10000.0, "tie_word_embeddings": false}
JSON
expect_code 0 "--synthetic --config" lc-import -q --synthetic 3 --config "$TMP/cfg.json" --dtype f16 -o "$TMP/s.h5"
lc-info "$TMP/s.h5" >"$TMP/out"
check "its shape is the config's" grep -q "dim 96  layers 3  heads 6  kv_heads 2  head_dim 16  ffn_dim 160" "$TMP/out"
check "vocabulary of 300 pieces" grep -q "300 pieces" "$TMP/out"
check "untied: an output tensor [300, 96]" grep -q "^  output  *f16  *\[300, 96\]" "$TMP/out"
check "written in f16" grep -q "layers.2.ffn_down  *f16  *\[96, 160\]" "$TMP/out"
check "labelled SYNTHETIC" grep -q "SYNTHETIC" "$TMP/out"
expect_code 0 "it runs in the inference core" lc-gen -q -n 4 --seed 1 --prompt hi "$TMP/s.h5"
lc-import -q --synthetic 3 --config "$TMP/cfg.json" --dtype f16 -o "$TMP/s2.h5"
h5dump -d /tensors/output/data "$TMP/s.h5" | sed 1d >"$TMP/a.txt" 2>&1
h5dump -d /tensors/output/data "$TMP/s2.h5" | sed 1d >"$TMP/b.txt" 2>&1
check "same seed and config, same weights" cmp -s "$TMP/a.txt" "$TMP/b.txt"
expect_fail_clean 2 "--config without --synthetic" lc-import --config "$TMP/cfg.json" "$TMP/s.h5"
expect_fail_clean 1 "a missing config" lc-import --synthetic 1 --config "$TMP/none.json"
sed 's/"vocab_size": 300/"vocab_size": 100/' "$TMP/cfg.json" >"$TMP/small.json"
expect_fail_clean 1 "a vocabulary smaller than the bytes" lc-import --synthetic 1 --config "$TMP/small.json"
check "the message says why" grep -q "vocab_size >= 259" "$TMP/err"
sed 's/"hidden_size": 96,//' "$TMP/cfg.json" >"$TMP/nodim.json"
expect_fail_clean 1 "no hidden_size" lc-import --synthetic 1 --config "$TMP/nodim.json"
check "the message names the key" grep -q "hidden_size" "$TMP/err"
printf '{"model_type": "llama", ' >"$TMP/cut.json"
expect_fail_clean 1 "a truncated config" lc-import --synthetic 1 --config "$TMP/cut.json"
done_testing
