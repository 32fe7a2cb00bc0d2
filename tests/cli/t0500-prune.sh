#!/bin/sh
# lc-prune: usage errors, bad input, every method and pattern on a real
# (sqz-s7) or synthetic model, exact sparsity on stderr, sparse encodings in
# lc-info, --check, lineage, pipes, lc-eval on a pruned model.
. "$(dirname "$0")/lib.sh"

if have_shared && [ -d "$LC_SHARED/models/sqz-s7" ]; then
  expect_code 0 "import sqz-s7" lc-import -q "$LC_SHARED/models/sqz-s7" -o "$TMP/m.h5"
  COLS=256
else
  echo "# no sqz-s7: using the synthetic model"
  expect_code 0 "import the synthetic model" lc-import -q --synthetic 1 -o "$TMP/m.h5"
  COLS=64
fi
M=$TMP/m.h5
# a small calibration text of its own (works without LC_SHARED)
awk 'BEGIN { srand(7); for (i = 0; i < 6000; i++) { printf "%s%s", (i % 12 ? " " : "\n"), \
     substr("the of and to in was he that it his for with as on at by had not be but from", 1 + 3 * int(rand() * 20), 3) } }' \
  >"$TMP/calib.txt"
CAL="--calib $TMP/calib.txt --nsamples 4 --seqlen 128"

printf 'not a container\n' >"$TMP/junk.h5"
expect_code 0 "--help" lc-prune --help
check "--help names --nm" grep -q -- "--nm N:M" "$TMP/out"
expect_code 0 "--version" lc-prune --version
check "--version prints the version" grep -q "^lc-prune [0-9]" "$TMP/out"
expect_fail_clean 2 "no --method" lc-prune "$M"
expect_fail_clean 2 "unknown method" lc-prune -m random "$M"
expect_fail_clean 2 "sparsity 1" lc-prune -m magnitude --sparsity 1 "$M"
expect_fail_clean 2 "sparsity 1.5" lc-prune -m magnitude --sparsity 1.5 "$M"
expect_fail_clean 2 "negative sparsity" lc-prune -m magnitude --sparsity -0.1 "$M"
expect_fail_clean 2 "sparsity not a number" lc-prune -m magnitude --sparsity half "$M"
expect_fail_clean 2 "N:M with N = M" lc-prune -m magnitude --nm 4:4 "$M"
expect_fail_clean 2 "N:M with N > M" lc-prune -m magnitude --nm 5:4 "$M"
expect_fail_clean 2 "N:M not numbers" lc-prune -m magnitude --nm 2:x "$M"
expect_fail_clean 2 "N:M without colon" lc-prune -m magnitude --nm 24 "$M"
expect_fail_clean 2 "M not dividing the rows" lc-prune -m magnitude --nm 2:3 -o "$TMP/x.h5" "$M"
check "message names the row length" grep -q "row length $COLS" "$TMP/err"
check "no output file" test ! -e "$TMP/x.h5"
expect_fail_clean 2 "--sparsity contradicting --nm" lc-prune -m magnitude --nm 2:4 --sparsity 0.3 "$M"
expect_fail_clean 2 "global scope with wanda" lc-prune -m wanda --scope global "$M"
expect_fail_clean 2 "unknown scope" lc-prune -m magnitude --scope layer "$M"
expect_fail_clean 2 "bad --bits" lc-prune -m magnitude --bits 9 "$M"
expect_fail_clean 2 "group not dividing the rows" lc-prune -m magnitude --bits 4 --group 48 "$M"
expect_fail_clean 2 "nothing selected" lc-prune -m magnitude --only 'nothing.*' "$M"
expect_fail_clean 2 "wanda on the embeddings" lc-prune -m wanda --only tok_embeddings $CAL "$M"
expect_fail_clean 2 "unknown option" lc-prune -m magnitude --frobnicate "$M"
expect_fail_clean 2 "two inputs" lc-prune -m magnitude "$M" "$M"
expect_fail_clean 1 "junk input" lc-prune -m magnitude "$TMP/junk.h5"
expect_fail_clean 1 "junk on stdin" lc-prune -m magnitude - <"$TMP/junk.h5"
expect_fail_clean 1 "missing input" lc-prune -m magnitude "$TMP/nope.h5"
expect_fail_clean 1 "missing calibration text" lc-prune -m wanda --calib "$TMP/nope.txt" "$M"

# every method, unstructured and N:M; exact sparsity reported per tensor
for meth in magnitude wanda sparsegpt; do
  expect_code 0 "$meth 50%" lc-prune -m "$meth" $CAL -o "$TMP/$meth.h5" "$M"
  check "$meth: every tensor reported at exactly 0.5" test "$(grep -c 'sparsity 0.500000 (' "$TMP/err")" -ge 7
  check "$meth: no other sparsity" sh -c "! grep 'sparsity 0\.' '$TMP/err' | grep -qv 'sparsity 0.500000'"
  expect_code 0 "$meth 50%: lc-info --check" lc-info --check "$TMP/$meth.h5"
  check "$meth 50%: mask encoding" grep -q "layers.0.attn_q  *mask+" "$TMP/out"
  check "$meth 50%: embeddings untouched" grep -q "tok_embeddings  *f32" "$TMP/out"
  check "$meth 50%: lineage note" grep -q "note: $meth unstructured 0.5.*achieved sparsity 0.500000" "$TMP/out"
  expect_code 0 "$meth 2:4" lc-prune -m "$meth" --nm 2:4 $CAL -o "$TMP/$meth-24.h5" "$M"
  expect_code 0 "$meth 2:4: lc-info --check" lc-info --check "$TMP/$meth-24.h5"
  check "$meth 2:4: N:M encoding at 17 bits per weight" grep -q "layers.0.ffn_down  *2:4+f32 .* 17.000" "$TMP/out"
  expect_code 0 "$meth 4:8 + 4-bit" lc-prune -m "$meth" --nm 4:8 --bits 4 --group 32 $CAL -o "$TMP/$meth-48q.h5" "$M"
  expect_code 0 "$meth 4:8 + 4-bit: lc-info --check" lc-info --check "$TMP/$meth-48q.h5"
  check "$meth 4:8 + 4-bit: encoding and bits" grep -q "layers.1.ffn_up  *4:8+q4-sym-g32 .* 4.000" "$TMP/out"
done
lc-info "$TMP/sparsegpt-48q.h5" >"$TMP/info.txt"
check "lineage records the calibration text and tokens" grep -q "calibration calib.txt xxh64:[0-9a-f]*, 4 x 128 = 512 tokens" \
  "$TMP/info.txt"
expect_code 0 "magnitude 30% per row" lc-prune -m magnitude --scope row --sparsity 0.3 -o "$TMP/r.h5" "$M"
expect_code 0 "magnitude 25% global" lc-prune -m magnitude --scope global --sparsity 0.25 -o "$TMP/g.h5" "$M"
check "global: the total is exact" grep -q "achieved sparsity 0.250000" "$TMP/err"
expect_code 0 "global: lc-info --check" lc-info --check "$TMP/g.h5"
expect_code 0 "--only and --keep" lc-prune -m magnitude --only 'layers.*' --only tok_embeddings \
  --keep '*.ffn_down' --keep '*norm' -o "$TMP/o.h5" "$M"
lc-info "$TMP/o.h5" >"$TMP/out"
check "--only: embeddings pruned" grep -q "tok_embeddings  *mask+" "$TMP/out"
check "--keep: ffn_down untouched" grep -q "layers.0.ffn_down  *f32" "$TMP/out"
expect_code 0 "sparsegpt with joint 4-bit (asym)" lc-prune -m sparsegpt --sparsity 0.5 --bits 4 --group 32 --asym \
  $CAL -o "$TMP/sq.h5" "$M"
expect_code 0 "joint 4-bit: lc-info --check" lc-info --check "$TMP/sq.h5"
check "mask + 4-bit asym encoding" grep -q "layers.0.attn_v  *mask+q4-zero-g32" "$TMP/out"

# pipes: same bytes of tensors as the file mode
lc-prune -q -m magnitude --nm 2:4 <"$M" >"$TMP/p.h5"
check "pipe mode writes a container" test -s "$TMP/p.h5"
h5dump -d /tensors/layers.1.attn_k/values "$TMP/p.h5" | sed 1d >"$TMP/a.txt" 2>&1
h5dump -d /tensors/layers.1.attn_k/values "$TMP/magnitude-24.h5" | sed 1d >"$TMP/b.txt" 2>&1
check "pipe and file mode agree" cmp -s "$TMP/a.txt" "$TMP/b.txt"
expect_code 0 "deterministic: same arguments, same tensors" lc-prune -q -m sparsegpt $CAL -o "$TMP/sparsegpt2.h5" "$M"
h5dump -d /tensors/layers.1.ffn_down/values "$TMP/sparsegpt.h5" | sed 1d >"$TMP/a.txt" 2>&1
h5dump -d /tensors/layers.1.ffn_down/values "$TMP/sparsegpt2.h5" | sed 1d >"$TMP/b.txt" 2>&1
check "sparsegpt twice gives the same values" cmp -s "$TMP/a.txt" "$TMP/b.txt"
expect_code 0 "a pruned model is pruned again (decoded to f32)" lc-prune -m magnitude --sparsity 0.7 -o "$TMP/rr.h5" \
  "$TMP/magnitude.h5"

if [ -x "$BIN/lc-eval" ]; then
  expect_code 0 "lc-eval runs on a pruned model" lc-eval --no-ledger --no-speed --ctx 128 --chunks 2 \
    --text "$TMP/calib.txt" "$TMP/wanda-24.h5"
  expect_code 0 "lc-eval runs on a 4-bit N:M model" lc-eval --no-ledger --no-speed --ctx 128 --chunks 2 \
    --text "$TMP/calib.txt" "$TMP/sparsegpt-48q.h5"
else
  skip "lc-eval on pruned models: no lc-eval built"
fi
done_testing
