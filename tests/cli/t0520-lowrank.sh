#!/bin/sh
# lc-lowrank: factored linears in the container (read back independently
# with h5py), through pipes; the refusals of the composition rules; export
# materialises the product.
. "$(dirname "$0")/lib.sh"
lc-import -q --synthetic 3 -o "$TMP/m.h5"
i=0; while [ $i -lt 400 ]; do echo "the quick brown fox $i jumps over the lazy dog"; i=$((i+1)); done >"$TMP/cal.txt"
CALIB="--calib $TMP/cal.txt --nsamples 4 --seqlen 64"

expect_code 0 "svd rank 16" lc-lowrank -q --method svd --rank 16 "$TMP/m.h5" -o "$TMP/svd.h5"
lc-info "$TMP/svd.h5" >"$TMP/info" 2>&1
check "lc-info: linears are lr16" sh -c "grep -q 'layers.0.attn_q *lr16 ' '$TMP/info' && grep -q 'layers.1.ffn_down *lr16 ' '$TMP/info'"
check "lc-info: the embedding stays f32" grep -q 'tok_embeddings *f32 ' "$TMP/info"
check "lc-info: format 2" grep -q 'libcompress format 2' "$TMP/info"
check "lineage names the method and the ranks" sh -c "lc-info '$TMP/svd.h5' | grep -q 'note: svd, rank 16: 14 linears factored.*ranks: attn_q 16'"

expect_code 0 "whiten --ratio 0.25 through a pipe" sh -c "lc-lowrank -q --ratio 0.25 $CALIB <'$TMP/m.h5' | lc-info - >'$TMP/info2'"
check "pipe: rank from the ratio (128x128: 48)" grep -q 'layers.0.attn_q *lr48 ' "$TMP/info2"
expect_code 0 "asvd --energy 0.9" lc-lowrank -q --method asvd --energy 0.9 $CALIB "$TMP/m.h5" -o "$TMP/asvd.h5"
expect_code 0 "svd --factor-bits 8" lc-lowrank -q --method svd --rank 32 --factor-bits 8 "$TMP/m.h5" -o "$TMP/q8.h5"
check "lc-info: quantized factors" sh -c "lc-info '$TMP/q8.h5' | grep -q 'layers.0.attn_q *lr32\[q8-sym-g32\] '"

# the file as docs/FORMAT.md specifies it, read with h5py: A B (+ base) is what the tools decode
if command -v /usr/bin/python3 >/dev/null && /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
  lc-export -q --to safetensors "$TMP/svd.h5" -o "$TMP/st" 2>"$TMP/err"
  check "h5py: A B equals the exported dense weights" /usr/bin/python3 - "$TMP/svd.h5" "$TMP/st" <<'PY'
import h5py, json, struct, sys, numpy as np
f = h5py.File(sys.argv[1], "r")
assert f.attrs["format_version"] == 2
raw = open(sys.argv[2] + "/model.safetensors", "rb").read()
n = struct.unpack("<Q", raw[:8])[0]; hdr = json.loads(raw[8:8 + n])
def st(name):
    h = hdr[name]; a, b = h["data_offsets"]
    return np.frombuffer(raw[8 + n + a:8 + n + b], np.float32).reshape(h["shape"])
g = f["tensors"]["layers.0.attn_q"]
assert g.attrs["encoding"] == b"lowrank" and int(g.attrs["lowrank_rank"]) == 16
A = g["lowrank_a"]["data"][()]; B = g["lowrank_b"]["data"][()]
assert A.shape == (128, 16) and B.shape == (16, 128)
W = st("model.layers.0.self_attn.q_proj.weight")
# the HF export permutes q rows for rotate-half; compare row sets via the norms of the rows
P = A.astype(np.float64) @ B.astype(np.float64)
assert np.allclose(np.sort(np.linalg.norm(P, axis=1)), np.sort(np.linalg.norm(W, axis=1)), rtol=1e-5, atol=1e-6)
V = st("model.layers.0.self_attn.v_proj.weight"); g = f["tensors"]["layers.0.attn_v"]
P = g["lowrank_a"]["data"][()].astype(np.float64) @ g["lowrank_b"]["data"][()].astype(np.float64)
assert np.abs(P - V).max() <= 1e-5 * np.abs(V).max(), np.abs(P - V).max()
PY
else
  skip "h5py reading of a low-rank file: no /usr/bin/python3 with h5py"
fi

# export to GGUF materialises the product; reading it back gives the same model
expect_code 0 "export to gguf" lc-export --to gguf "$TMP/svd.h5" -o "$TMP/svd.gguf"
check "export says it materialised the product" grep -q 'materialised as F32' "$TMP/err"
lc-import -q "$TMP/svd.gguf" -o "$TMP/back.h5"
lc-eval -q --text "$TMP/cal.txt" --ctx 64 --chunks 4 --base "$TMP/svd.h5" --no-speed --no-ledger -j "$TMP/back.h5" >"$TMP/ev.json" 2>"$TMP/err"
check "gguf round trip: KLD against the low-rank model below 1e-6" /usr/bin/python3 -c '
import json,sys; d=json.load(open(sys.argv[1])); k=d["base"]["kld_mean"]; sys.exit(0 if k < 1e-6 else 1)' "$TMP/ev.json"
lc-eval -q --text "$TMP/cal.txt" --ctx 64 --chunks 4 --base "$TMP/m.h5" --no-ledger -j "$TMP/svd.h5" >"$TMP/ev2.json" 2>"$TMP/err"
check "lc-eval runs the low-rank model natively (decode speed measured)" /usr/bin/python3 -c '
import json,sys; d=json.load(open(sys.argv[1])); sys.exit(0 if d["speed"]["decode_tok_s"] > 0 and d["base"]["kld_mean"] > 0 else 1)' "$TMP/ev2.json"

# refusals: exit 1, nothing on stdout, no output file
expect_fail_clean 1 "a rank above min(m, n)" lc-lowrank --method svd --rank 1000 "$TMP/m.h5" -o "$TMP/bad.h5"
check "it names the tensor" grep -q "tensor 'layers.0.attn_q': rank 1000 above min" "$TMP/err"
expect_fail_clean 1 "a ratio that leaves no rank" lc-lowrank --method svd --ratio 0.999 "$TMP/m.h5" -o "$TMP/bad.h5"
expect_fail_clean 2 "a ratio outside (0, 1)" lc-lowrank --method svd --ratio 1.5 "$TMP/m.h5"
expect_fail_clean 2 "no rank rule" lc-lowrank --method svd "$TMP/m.h5"
expect_fail_clean 2 "two rank rules" lc-lowrank --method svd --rank 4 --ratio 0.5 "$TMP/m.h5"
expect_fail_clean 2 "an unknown method" lc-lowrank --method pca --rank 4 "$TMP/m.h5"
lc-quant -q --method rtn --bits 4 --group 32 "$TMP/m.h5" -o "$TMP/q4.h5"
expect_fail_clean 1 "a quantized input is refused" lc-lowrank --method svd --rank 8 "$TMP/q4.h5" -o "$TMP/bad.h5"
check "it names the tensor and its encoding" grep -q "tensor 'layers.0.attn_q' is q4-sym-g32: factoring it would drop its quantization" "$TMP/err"
expect_fail_clean 1 "a factored input is refused" lc-lowrank --method svd --rank 8 "$TMP/svd.h5" -o "$TMP/bad.h5"
expect_code 0 "lc-lowrank | lc-quant: the factors are quantized" sh -c "lc-lowrank -q --method svd --rank 16 '$TMP/m.h5' | lc-quant --method rtn --bits 8 --group 32 >'$TMP/lrq.h5'"
check "lc-info: lr16[q8-sym-g16,q8-sym-g32] (A's rows are the rank, 16)" sh -c "lc-info '$TMP/lrq.h5' | grep -q 'layers.0.attn_q *lr16\[q8-sym-g16,q8-sym-g32\] '"
check "the note says the factors were quantized" grep -q "42 low-rank tensors: their factors quantized\|14 low-rank tensors: their factors quantized" "$TMP/err"
expect_fail_clean 1 "lc-quant refuses 4-bit factors of rank 16 (q4x32 packing)" lc-quant --method rtn --bits 4 "$TMP/svd.h5" -o "$TMP/bad.h5"
check "it names the tensor, its encoding and the factor" grep -q "tensor 'layers.0.attn_q' (lr16), factor A" "$TMP/err"
expect_fail_clean 1 "lc-quant refuses quantized factors without --requantize" lc-quant --method rtn --bits 8 "$TMP/lrq.h5" -o "$TMP/bad.h5"
expect_fail_clean 1 "lc-quant refuses AWQ on a low-rank tensor" lc-quant --method awq $CALIB "$TMP/svd.h5" -o "$TMP/bad.h5"
expect_fail_clean 1 "lc-prune refuses a low-rank tensor" lc-prune --method magnitude --sparsity 0.5 "$TMP/svd.h5" -o "$TMP/bad.h5"
check "no output file after the refusals" test ! -e "$TMP/bad.h5"
expect_code 0 "--keep leaves tensors as they are" lc-lowrank -q --method svd --rank 8 --keep 'layers.1.*' "$TMP/m.h5" -o "$TMP/keep.h5"
check "kept: layers.1 stays f32, layers.0 is lr8" sh -c "lc-info '$TMP/keep.h5' | grep -q 'layers.1.attn_q *f32 ' && lc-info '$TMP/keep.h5' | grep -q 'layers.0.attn_q *lr8 '"
if command -v /usr/bin/python3 >/dev/null && /usr/bin/python3 -c 'import h5py' 2>/dev/null; then
  cp "$TMP/m.h5" "$TMP/nan.h5"
  /usr/bin/python3 -c 'import h5py,sys,numpy as np
f=h5py.File(sys.argv[1],"r+"); d=f["tensors"]["layers.0.ffn_up"]["data"]; a=d[()]; a[3,5]=np.nan; d[...]=a' "$TMP/nan.h5"
  expect_fail_clean 1 "NaN weights are refused" lc-lowrank -q --method svd --rank 8 "$TMP/nan.h5" -o "$TMP/bad.h5"
  check "it names the tensor" grep -q "layers.0.ffn_up: the weights hold NaN" "$TMP/err"
else
  skip "NaN weights: no /usr/bin/python3 with h5py"
fi

# allocation: the same bytes as uniform rank 16, spread by the spectra
expect_code 0 "--budget (svd)" lc-lowrank -q --method svd --budget $((16 * 4 * (4 * 256 + 4 * 192 + 6 * 384))) "$TMP/m.h5" -o "$TMP/bud.h5"
check "allocated ranks differ across tensors and fit the budget" /usr/bin/python3 - "$TMP/bud.h5" "$TMP/svd.h5" <<'PY'
import h5py, sys
def fac_bytes(p):
    f = h5py.File(p, "r"); t = f["tensors"]; tot = 0; ranks = set()
    for k in t:
        if "lowrank_rank" in t[k].attrs:
            ranks.add(int(t[k].attrs["lowrank_rank"]))
            tot += t[k]["lowrank_a"]["data"].size * 4 + t[k]["lowrank_b"]["data"].size * 4
    return tot, ranks
b, r = fac_bytes(sys.argv[1]); u, _ = fac_bytes(sys.argv[2])
print("# budget run", b, "bytes, ranks", sorted(r), "; uniform", u)
sys.exit(0 if b <= u and len(r) > 1 else 1)
PY
expect_code 0 "--target-bpw (whiten)" lc-lowrank -q --target-bpw 8 $CALIB "$TMP/m.h5" -o "$TMP/bpw.h5"
check "lineage: ranks allocated for 8 bits per weight" sh -c "lc-info '$TMP/bpw.h5' | grep -q 'ranks allocated for 8 bits per weight'"
expect_fail_clean 1 "a budget below what rank 1 takes" lc-lowrank --method svd --budget 100 "$TMP/m.h5" -o "$TMP/bad.h5"
check "it says so" grep -q "below what rank 1 takes" "$TMP/err"
lc-import -q --synthetic 3 --dtype bf16 -o "$TMP/m16.h5"
expect_code 0 "a bf16 model" lc-lowrank -q --method svd --rank 16 "$TMP/m16.h5" -o "$TMP/lr16.h5"
check "its factors are bf16 (as precise as its weights)" sh -c "lc-info '$TMP/lr16.h5' | grep -q 'layers.0.attn_q *lr16\[bf16\] '"

# compensation: a quantized model keeps its codes and gains the term of its error
expect_code 0 "lc-quant | lc-lowrank --compensate" sh -c "lc-quant -q --method rtn --bits 3 --group 32 '$TMP/m.h5' | lc-lowrank -q --compensate 8 --factor-bits 8 --reference '$TMP/m.h5' $CALIB >'$TMP/comp.h5'"
check "lc-info: q3-sym-g32+lr8[q8-sym-row]" sh -c "lc-info '$TMP/comp.h5' | grep -q 'layers.0.attn_q *q3-sym-g32+lr8\[q8-sym-g8,q8-sym-g32\] \|layers.0.attn_q *q3-sym-g32+lr8\['"
lc-quant -q --method rtn --bits 3 --group 32 "$TMP/m.h5" -o "$TMP/q3.h5"
lc-lowrank -q --compensate 8 --reference "$TMP/m.h5" $CALIB "$TMP/q3.h5" -o "$TMP/q3c.h5"
lc-eval -q --text "$TMP/cal.txt" --ctx 64 --chunks 4 --base "$TMP/m.h5" --no-speed --no-ledger -j "$TMP/q3.h5" >"$TMP/e1.json" 2>/dev/null
lc-eval -q --text "$TMP/cal.txt" --ctx 64 --chunks 4 --base "$TMP/m.h5" --no-speed --no-ledger -j "$TMP/q3c.h5" >"$TMP/e2.json" 2>/dev/null
check "compensation lowers the KLD" /usr/bin/python3 -c '
import json,sys; a=json.load(open(sys.argv[1]))["base"]["kld_mean"]; b=json.load(open(sys.argv[2]))["base"]["kld_mean"]
print("# KLD", a, "->", b); sys.exit(0 if b < a else 1)' "$TMP/e1.json" "$TMP/e2.json"
lc-import -q --synthetic 4 -o "$TMP/other.h5"
expect_fail_clean 1 "--reference that is not an ancestor" lc-lowrank --compensate 8 --reference "$TMP/other.h5" $CALIB "$TMP/q3.h5" -o "$TMP/bad.h5"
check "it says so" grep -q "is not an ancestor" "$TMP/err"
lc-quant -q --method rtn --keep '*' "$TMP/m.h5" -o "$TMP/dense-child.h5" # a dense descendant of m
expect_fail_clean 1 "--compensate on a dense input" lc-lowrank --compensate 8 --reference "$TMP/m.h5" $CALIB "$TMP/dense-child.h5" -o "$TMP/bad.h5"
check "it names the tensor" grep -q "tensor 'layers.0.attn_q' is dense (f32): --compensate" "$TMP/err"
expect_fail_clean 2 "--compensate without --reference" lc-lowrank --compensate 8 "$TMP/q3.h5"
expect_fail_clean 2 "--compensate with --rank" lc-lowrank --compensate 8 --rank 4 --reference "$TMP/m.h5" "$TMP/q3.h5"
expect_fail_clean 1 "lc-quant refuses a term over a base" lc-quant --method rtn --requantize "$TMP/q3c.h5" -o "$TMP/bad.h5"
check "it names the tensor and its encoding" grep -q "tensor 'layers.0.attn_q' has a low-rank term over a base (q3-sym-g32+lr8)" "$TMP/err"
expect_fail_clean 1 "--compensate rank above min" lc-lowrank --compensate 1000 --reference "$TMP/m.h5" "$TMP/q3.h5" -o "$TMP/bad.h5"
check "no output file after the refusals" test ! -e "$TMP/bad.h5"
done_testing
