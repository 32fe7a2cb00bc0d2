#!/bin/sh
# lc-eval: usage errors, bad input, a real run on sqz-s7 with a ledger row,
# --json, --pass (byte-identical image), --base and --base-cache.
. "$(dirname "$0")/lib.sh"

HELD=$LC_SHARED/data/heldout/heldout.txt
printf 'this is not a model\n' >"$TMP/junk.txt"
printf 'too short\n' >"$TMP/short.txt"

expect_code 0 "lc-eval --help" lc-eval --help
check "--help names the options" grep -q -- "--base-cache" "$TMP/out"
expect_fail_clean 2 "no --text" lc-eval "$TMP/junk.txt"
expect_fail_clean 2 "bad --ctx" lc-eval --ctx x --text "$TMP/short.txt" "$TMP/junk.txt"
expect_fail_clean 2 "--ctx too small" lc-eval --ctx 1 --text "$TMP/short.txt" "$TMP/junk.txt"
expect_fail_clean 2 "bad --chunks" lc-eval --chunks 0 --text "$TMP/short.txt" "$TMP/junk.txt"
expect_fail_clean 2 "bad --score" lc-eval --score half --text "$TMP/short.txt" "$TMP/junk.txt"
expect_fail_clean 2 "bad --isa" lc-eval --isa sse9 --text "$TMP/short.txt" "$TMP/junk.txt"
expect_fail_clean 2 "two models" lc-eval --text "$TMP/short.txt" a b
expect_fail_clean 2 "--speed-only with --no-speed" lc-eval --speed-only --no-speed "$TMP/junk.txt"
expect_fail_clean 2 "--speed-only with --text" lc-eval --speed-only --text "$TMP/short.txt" "$TMP/junk.txt"
expect_fail_clean 2 "--base-cache without --base or file" lc-eval --text "$TMP/short.txt" --base-cache "$TMP/none" x
expect_fail_clean 1 "junk model" lc-eval --no-ledger --text "$TMP/short.txt" "$TMP/junk.txt"
expect_fail_clean 1 "junk on stdin" lc-eval --no-ledger --text "$TMP/short.txt" - <"$TMP/junk.txt"
expect_fail_clean 1 "missing model" lc-eval --no-ledger --text "$TMP/short.txt" "$TMP/nope.h5"
expect_fail_clean 1 "unknown profile" lc-eval --no-ledger --profile nope --text "$TMP/short.txt" "$TMP/junk.txt"

if ! have_shared; then
  skip "real-model lc-eval checks: LC_SHARED has no models"
  done_testing
  exit $?
fi

M=$TMP/s7.h5
DB=$TMP/ledger.db
expect_code 0 "import sqz-s7" lc-import -q "$LC_SHARED/models/sqz-s7" -o "$M"
expect_fail_clean 1 "text shorter than one chunk" lc-eval --no-ledger --no-speed --text "$TMP/short.txt" "$M"
expect_fail_clean 1 "missing text" lc-eval --no-ledger --no-speed --text "$TMP/nope.txt" "$M"
expect_fail_clean 1 "ledger path is a directory" lc-eval --no-speed --chunks 1 --db "$TMP" --text "$HELD" "$M"

# a real run writes one ledger row with the protocol
expect_code 0 "eval 4 chunks" lc-eval --chunks 4 --speed-reps 1 --db "$DB" --text "$HELD" "$M"
check "report has the perplexity" grep -q "^perplexity: " "$TMP/out"
check "report has the speed" grep -q "^speed: .*prefill .*decode" "$TMP/out"
check "on stderr, when not a terminal, only the ledger it wrote" test "$(cat "$TMP/err")" = "lc-eval: ledger $DB: row 1"
row=$(sqlite3 "$DB" "select n_ctx, scoring, chunks, tokens_scored, length(text_digest), length(tokenizer_digest),
  length(model_digest), recipe, profile, ppl > 1, prefill_tok_s > 0, decode_tok_s > 0, bpw, stored_bytes, n_weights
  from runs" 2>&1)
check "ledger row with the protocol ($row)" test "$row" = \
  "512|second-half|4|1020|16|16|16|lc-import $LC_SHARED/models/sqz-s7|laptop-2c|1|1|1|32.0|27276288|6819072"

# --score all, --ctx, --json
expect_code 0 "eval --json --score all --ctx 256" lc-eval --json --no-speed --no-ledger --score all --ctx 256 \
  --chunks 2 --text "$HELD" "$M"
if need python3 "JSON checked with Python"; then
  check "--json parses" python3 -c 'import json,sys; d=json.load(open(sys.argv[1]))
assert d["protocol"] == {"n_ctx": 256, "scoring": "all", "chunks": 2, "tokens_scored": 510}, d["protocol"]
assert d["perplexity"]["ppl"] > 1' "$TMP/out"
fi

# --pass: the image comes out unchanged, the report goes to stderr
expect_code 0 "--pass from stdin" sh -c "lc-eval --pass --no-speed --no-ledger --chunks 2 --text '$HELD' <'$M'"
check "--pass: identical bytes" cmp -s "$TMP/out" "$M"
check "--pass: report on stderr" grep -q "^perplexity: " "$TMP/err"
cp "$TMP/out" "$TMP/pass.h5"
lc-info "$M" | sed 1d >"$TMP/info1"
expect_code 0 "lc-info reads the passed image" lc-info "$TMP/pass.h5"
sed 1d "$TMP/out" >"$TMP/info2"
check "--pass: same tensors and lineage" cmp -s "$TMP/info1" "$TMP/info2"
expect_code 0 "--pass from a file" sh -c "lc-eval --pass --no-speed --no-ledger --chunks 1 --text '$HELD' '$M' >'$TMP/pass2.h5'"
check "--pass from a file: identical bytes" cmp -s "$TMP/pass2.h5" "$M"
expect_fail_clean 1 "--pass with a failing eval writes nothing" lc-eval --pass --no-ledger --no-speed \
  --text "$TMP/short.txt" "$M"

# the model against itself: KLD 0, top-1 100%, directly and through the cache
expect_code 0 "--base self" lc-eval --json --no-speed --no-ledger --chunks 2 --base "$M" --text "$HELD" "$M"
if need python3 "JSON checked with Python"; then
  check "--base self: KLD 0, top-1 1" python3 -c 'import json,sys; b=json.load(open(sys.argv[1]))["base"]
assert b["kld_mean"] == 0 and b["top1"] == 1 and b["rms_dp"] == 0 and b["ln_ppl_ratio"] == 0, b' "$TMP/out"
fi
C=$TMP/base.cache
expect_code 0 "--base-cache written" lc-eval --no-speed --db "$DB" --chunks 2 --base "$M" --base-cache "$C" \
  --text "$HELD" "$M"
check "cache file exists" test -s "$C"
check "cache written: report says so" grep -q "cache written" "$TMP/out"
expect_code 0 "--base-cache reused" lc-eval --json --no-speed --db "$DB" --chunks 2 --base-cache "$C" --text "$HELD" "$M"
if need python3 "JSON checked with Python"; then
  check "cached self: KLD ~0, top-1 1" python3 -c 'import json,sys; b=json.load(open(sys.argv[1]))["base"]
assert b["mode"] == "cache" and abs(b["kld_mean"]) < 1e-7 and b["top1"] == 1 and b["rms_dp"] == 0, b' "$TMP/out"
fi
expect_fail_clean 1 "--base-cache mismatch (chunks)" lc-eval --no-speed --no-ledger --chunks 3 --base "$M" \
  --base-cache "$C" --text "$HELD" "$M"
check "mismatch is named" grep -q "chunk count is 2, this run needs 3" "$TMP/err"
n=$(sqlite3 "$DB" "select count(*) from runs where base_digest != '' and kld_mean is not null and top1 = 1")
check "ledger rows with the base ($n)" test "$n" = 2

expect_code 0 "--speed-only" lc-eval --speed-only --speed-reps 1 --threads 1 --no-ledger "$M"
check "--speed-only: no perplexity" sh -c "! grep -q '^perplexity' '$TMP/out' && grep -q '^speed:' '$TMP/out'"
done_testing
