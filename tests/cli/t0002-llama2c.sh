#!/bin/sh
# llama2.c import: file and pipe modes agree; lineage; --check; truncation.
. "$(dirname "$0")/lib.sh"
M=$LC_SHARED/models/stories260K
if [ ! -f "$M/stories260K.bin" ]; then skip "no $M"; done_testing; exit; fi

expect_code 0 "import to a file" lc-import -q "$M/stories260K.bin" -o "$TMP/s.h5"
expect_code 0 "lc-info --check passes" lc-info --check "$TMP/s.h5"
check "47 tensors" grep -q "^tensors: 47" "$TMP/out"
check "GQA config" grep -q "heads 8  kv_heads 4  head_dim 8  ffn_dim 172" "$TMP/out"
check "lineage names lc-import" grep -q "lc-import 0.1.0" "$TMP/out"
sed '/^container:/d; /^  1\. /d; /args:/d' "$TMP/out" >"$TMP/file.txt"
lc-import -q "$M/stories260K.bin" >"$TMP/pipe.h5"
expect_code 0 "lc-info reads a piped container" lc-info --check - <"$TMP/pipe.h5"
sed '/^container:/d; /^  1\. /d; /args:/d' "$TMP/out" >"$TMP/pipe.txt"
check "pipe and file mode agree" cmp -s "$TMP/file.txt" "$TMP/pipe.txt"
expect_code 0 "--json" lc-info --json "$TMP/s.h5"
check "json has the tensor count" grep -q '"name": "layers.4.ffn_down"' "$TMP/out"

head -c 500000 "$M/stories260K.bin" >"$TMP/trunc.bin"
expect_fail_clean 1 "truncated checkpoint refused" lc-import "$TMP/trunc.bin" -o "$TMP/t.h5"
check "message names the file" grep -q "trunc.bin" "$TMP/err"
check "no partial output" test ! -e "$TMP/t.h5"
mkdir "$TMP/d" && cp "$M/stories260K.bin" "$TMP/d/m.bin"
expect_fail_clean 1 "missing tokenizer refused" lc-import "$TMP/d/m.bin" -o "$TMP/t.h5"
expect_code 0 "--tokenizer given" lc-import -q "$TMP/d/m.bin" --tokenizer "$M/tok512.bin" -o "$TMP/t.h5"
head -c 3000 "$M/tok512.bin" >"$TMP/tok.bin"
expect_fail_clean 1 "truncated tokenizer refused" lc-import "$TMP/d/m.bin" --tokenizer "$TMP/tok.bin" -o "$TMP/u.h5"
expect_fail_clean 1 "refuses to overwrite input with junk: container as source" lc-import "$TMP/s.h5" -o "$TMP/v.h5"
done_testing
