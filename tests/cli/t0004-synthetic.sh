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
done_testing
