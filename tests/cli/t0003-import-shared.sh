#!/bin/sh
# Import every shared model (HF dirs and every GGUF); --check passes; pipe and
# file modes agree; the documented HDF5 layout is there; Q4_0/Q8_0 codes exact.
. "$(dirname "$0")/lib.sh"
if ! have_shared; then skip "no $LC_SHARED/models"; done_testing; exit; fi
M=$LC_SHARED/models

strip() { sed '/^container:/d; /^  1\. /d; /args:/d' "$TMP/out"; }
for src in "$M/sqz-s7" "$M/sqz-m29" "$M"/gguf/*.gguf; do
  n=$(basename "$src")
  expect_code 0 "import $n to a file" lc-import -q "$src" -o "$TMP/$n.h5"
  expect_code 0 "lc-info --check $n" lc-info --check "$TMP/$n.h5"
  strip >"$TMP/file.txt"
  lc-import -q "$src" >"$TMP/pipe.h5"
  expect_code 0 "lc-info --check $n from a pipe" lc-info --check - <"$TMP/pipe.h5"
  strip >"$TMP/pipe.txt"
  check "$n: pipe and file mode agree" cmp -s "$TMP/file.txt" "$TMP/pipe.txt"
done

# the layout h5dump shows is the one docs/FORMAT.md documents
if need h5dump "container layout as h5dump shows it"; then
  h5dump -H "$TMP/sqz-m29.h5" >"$TMP/dump.txt" 2>&1
  for want in 'ATTRIBUTE "format"' 'GROUP "config"' 'ATTRIBUTE "rope_theta"' 'GROUP "tokenizer"' \
              'DATASET "offsets"' 'GROUP "tensors"' 'GROUP "layers.7.ffn_down"' 'DATASET "lineage"' \
              'ATTRIBUTE "encoding"'; do
    check "h5dump shows $want" grep -q "$want" "$TMP/dump.txt"
  done
  h5dump -H "$TMP/sqz-s7.q4_0.gguf.h5" >"$TMP/dumpq.txt" 2>&1
  check "h5dump shows quantized codes and scales" grep -q 'DATASET "scales"' "$TMP/dumpq.txt"
fi

# sqz-m29 is bf16 and stays bf16
lc-info "$TMP/sqz-m29.h5" >"$TMP/out"
check "bf16 kept as bf16" grep -q "layers.0.attn_q  *bf16" "$TMP/out"
lc-info "$TMP/sqz-s7.q4_0.gguf.h5" >"$TMP/out"
check "Q4_0 imported as 4-bit sym g32" grep -q "layers.0.attn_q  *q4-sym-g32" "$TMP/out"
check "Q6_K embedding dequantized and noted" grep -q "dequantized" "$TMP/out"
lc-info "$TMP/sqz-s7.q8_0.gguf.h5" >"$TMP/out"
check "Q8_0 imported as 8-bit sym g32" grep -q "layers.0.attn_q  *q8-sym-g32" "$TMP/out"
lc-info "$TMP/sqz-s7.q4_1.gguf.h5" >"$TMP/out"
check "Q4_1 imported as 4-bit min g32" grep -q "layers.0.attn_q  *q4-min-g32" "$TMP/out"

# the same model from HF (f32) and GGUF F16 agree on the config
lc-info --json "$TMP/sqz-s7.h5" >"$TMP/a.json"
lc-info --json "$TMP/sqz-s7.f16.gguf.h5" >"$TMP/b.json"
if need /usr/bin/python3 "configs compared through JSON"; then
  check "HF and GGUF configs agree" test "$(json_get "$TMP/a.json" config)" = "$(json_get "$TMP/b.json" config)"
  check "the config has the model's dim" grep -q '"dim": 256' "$TMP/a.json"
fi

# corrupt inputs: one line, exit 1, nothing on stdout, no output file
head -c 100000 "$M/gguf/sqz-s7.q4_0.gguf" >"$TMP/trunc.gguf"
expect_fail_clean 1 "truncated GGUF" lc-import "$TMP/trunc.gguf" -o "$TMP/t.h5"
check "no partial file" test ! -e "$TMP/t.h5"
mkdir "$TMP/hf" && cp "$M/sqz-s7/config.json" "$M/sqz-s7/tokenizer.model" "$TMP/hf/"
head -c 1000000 "$M/sqz-s7/model.safetensors" >"$TMP/hf/model.safetensors"
expect_fail_clean 1 "truncated safetensors" lc-import "$TMP/hf" -o "$TMP/t.h5"
head -c 100000 "$TMP/sqz-s7.h5" >"$TMP/trunc.h5"
expect_fail_clean 1 "truncated container" lc-info --check "$TMP/trunc.h5"
done_testing
