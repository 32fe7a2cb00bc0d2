#!/bin/sh
# lc-quant: every method on a small model, overrides, lineage, bad input.
. "$(dirname "$0")/lib.sh"
if have_shared && [ -d "$LC_SHARED/models/sqz-s7" ]; then
  lc-import -q "$LC_SHARED/models/sqz-s7" -o "$TMP/m.h5"; CAL=calib; NS=8; SL=128
else
  echo "# no shared models: synthetic model, calibration on a generated text"
  lc-import -q --synthetic 3 -o "$TMP/m.h5"
  i=0; while [ $i -lt 400 ]; do echo "the quick brown fox $i jumps over the lazy dog"; i=$((i+1)); done >"$TMP/cal.txt"
  CAL=$TMP/cal.txt; NS=4; SL=64
fi
for m in rtn gptq awq; do
  expect_code 0 "$m 4-bit g32" lc-quant -q --method $m --bits 4 --group 32 --calib "$CAL" --nsamples $NS --seqlen $SL \
    "$TMP/m.h5" -o "$TMP/$m.h5"
  expect_code 0 "$m output passes --check" lc-info --check "$TMP/$m.h5"
  check "$m: linears are q4-sym-g32" grep -q "layers.0.ffn_down  *q4-sym-g32" "$TMP/out"
  check "$m: norms untouched in encoding" grep -q "layers.0.attn_norm  *f32" "$TMP/out"
  check "$m: lineage row" grep -q "lc-quant 0.1.0" "$TMP/out"
done
grep -q "calibration" "$TMP/out" && ok "calibration recorded in the lineage note" || not_ok "calibration recorded in the lineage note"
# same inputs, seed, threads: same bits
lc-quant -q --method gptq --bits 4 --group 32 --calib "$CAL" --nsamples $NS --seqlen $SL --threads 2 "$TMP/m.h5" -o "$TMP/g1.h5"
lc-quant -q --method gptq --bits 4 --group 32 --calib "$CAL" --nsamples $NS --seqlen $SL --threads 2 "$TMP/m.h5" -o "$TMP/g2.h5"
h5dump -d /tensors/layers.1.ffn_up/codes "$TMP/g1.h5" | sed 1d >"$TMP/c1"
h5dump -d /tensors/layers.1.ffn_up/codes "$TMP/g2.h5" | sed 1d >"$TMP/c2"
check "gptq is deterministic" cmp -s "$TMP/c1" "$TMP/c2"
# the same run a second later gives the same bytes when SOURCE_DATE_EPOCH
# fixes the lineage time (object headers carry no modification times);
# same directory name depth and arguments, since the lineage records them
mkdir -p "$TMP/d1" "$TMP/d2"
(cd "$TMP/d1" && SOURCE_DATE_EPOCH=1700000000 lc-quant -q --bits 4 --group 32 ../m.h5 -o t.h5)
sleep 1.2
(cd "$TMP/d2" && SOURCE_DATE_EPOCH=1700000000 lc-quant -q --bits 4 --group 32 ../m.h5 -o t.h5)
check "same bytes a second later (SOURCE_DATE_EPOCH)" cmp -s "$TMP/d1/t.h5" "$TMP/d2/t.h5"
h5dump -d lineage "$TMP/d1/t.h5" >"$TMP/lin.txt" 2>&1
check "lineage time from SOURCE_DATE_EPOCH" grep -q "2023-11-14T22:13:20Z" "$TMP/lin.txt"
# overrides and keep; embeddings
expect_code 0 "override + keep + embed" lc-quant -q --bits 4 --group 32 --override 'layers.*.ffn_down=8' \
  --keep 'layers.0.attn_q' --embed-bits 8 "$TMP/m.h5" -o "$TMP/o.h5"
lc-info "$TMP/o.h5" >"$TMP/out"
check "override: ffn_down 8-bit" grep -q "layers.1.ffn_down  *q8-sym-g" "$TMP/out"
check "keep: attn_q untouched" grep -q "layers.0.attn_q  *f32" "$TMP/out"
check "embeddings 8-bit" grep -q "tok_embeddings  *q8-sym-g32" "$TMP/out"
check "lineage keeps --override's =BITS" grep -q -- "--override 'layers.\*.ffn_down=8'" "$TMP/out"
# the last matching override wins (docs/OPTIONS.md), in every tool
expect_code 0 "two overrides on one tensor" lc-quant -q --bits 4 --group 32 --override 'layers.*.ffn_u*=8' \
  --override 'layers.0.ffn_u*=3' "$TMP/m.h5" -o "$TMP/o2.h5"
lc-info "$TMP/o2.h5" >"$TMP/out"
check "override: the last match wins (layers.0 3-bit)" grep -q "layers.0.ffn_up  *q3-sym-g32" "$TMP/out"
check "override: earlier rule where the later does not match" grep -q "layers.1.ffn_up  *q8-sym-g32" "$TMP/out"
expect_code 0 "3-bit asym per row" lc-quant -q --bits 3 --group row --asym "$TMP/m.h5" -o "$TMP/r3.h5"
lc-info "$TMP/r3.h5" >"$TMP/out"
check "3-bit zero-point codes" grep -q "q3-zero-g" "$TMP/out"
# pipe
lc-quant -q --bits 8 --group 32 <"$TMP/m.h5" >"$TMP/p.h5"
expect_code 0 "works in a pipe" lc-info --check "$TMP/p.h5"
# bad requests
expect_fail_clean 2 "unknown method" lc-quant --method foo "$TMP/m.h5"
expect_fail_clean 2 "bits 9" lc-quant --bits 9 "$TMP/m.h5"
expect_fail_clean 2 "bits 1 override" lc-quant --override 'x=1' "$TMP/m.h5"
expect_fail_clean 1 "group not dividing the row" lc-quant --group 48 "$TMP/m.h5" -o "$TMP/bad.h5"
check "no output file left" test ! -e "$TMP/bad.h5"
head -c 2000 "$TMP/cal.txt" >"$TMP/short.txt" 2>/dev/null || printf 'too short' >"$TMP/short.txt"
expect_fail_clean 1 "calibration text shorter than requested" lc-quant --method gptq --group 32 --calib "$TMP/short.txt" \
  --nsamples 64 --seqlen 128 "$TMP/m.h5" -o "$TMP/bad.h5"
check "the message says how short" grep -q "windows of" "$TMP/err"
expect_fail_clean 1 "junk input" lc-quant "$TMP/short.txt"
done_testing
