#!/bin/sh
# lc-ledger: list/show/compare/pareto/profiles in every format, protocol
# refusal, bad ledgers, usage errors.  Rows come from the unit-test binary
# (through lc_ledger_add) and from the sqlite3 shell (plain SQL).
. "$(dirname "$0")/lib.sh"
FIX=$TOP/build/tests/test_ledger
[ -x "$FIX" ] || make -s -C "$TOP" build/tests/test_ledger >&2
if [ ! -x "$FIX" ]; then skip "no $FIX"; done_testing; exit; fi
if ! need sqlite3 "ledger CLI tests"; then done_testing; exit; fi

DB=$TMP/r/ledger.db
export LC_LEDGER_DB="$DB"
unset LC_PROFILES
check "fixture written (creates the directory)" "$FIX" --fixture "$DB"
# 8: by hand, KLD unknown (NULL), a recipe that needs CSV quoting.
# 9: the same variant on another text.
sqlite3 "$DB" "INSERT INTO runs (time, model_name, recipe, profile, dataset, text_digest, tokenizer_digest,
  n_ctx, scoring, tokens_scored, ppl, bpw, decode_tok_s)
  VALUES ('2024-02-01T00:00:00Z', 'hand-q3', 'lc-quant --bits 3, \"odd\"', 'edge-1c', 'heldout.txt',
  '1f2e3d4c5b6a7980', '0a1b2c3d4e5f6071', 512, 'second-half', 10240, 23.5, 3.5, 900);
  INSERT INTO runs (model_name, profile, dataset, text_digest, tokenizer_digest, n_ctx, scoring, tokens_scored,
  ppl, kld_mean, bpw, base_digest)
  VALUES ('sqz-s7-gptq4', 'edge-1c', 'wiki.test.raw', '9999999999999999', '0a1b2c3d4e5f6071', 512, 'second-half',
  10240, 80.5, 0.04, 4.5, '00000000000000b5');" 2>"$TMP/err"
check "rows added with sqlite3" test "$(sqlite3 "$DB" 'select count(*) from runs')" = 9

# ---- list
expect_code 0 "list" lc-ledger list
check "list: header and 9 runs" test "$(wc -l <"$TMP/out")" = 10
check "list: newest first" sh -c "sed -n 2p '$TMP/out' | grep -q '^ *9 '"
check "list: unknown shown as -" grep -q "hand-q3 .* -  " "$TMP/out"
expect_code 0 "list --limit 2" lc-ledger list --limit 2
check "list --limit 2: two runs" test "$(wc -l <"$TMP/out")" = 3
expect_code 0 "list --profile laptop-2c" lc-ledger list --profile laptop-2c
check "list --profile: one run" test "$(wc -l <"$TMP/out")" = 2
check "list --profile: run 7" grep -q "^ *7 .*laptop-2c" "$TMP/out"
expect_code 0 "list --model NAME" lc-ledger list --model sqz-s7-gptq4
check "list --model: 4 runs" test "$(wc -l <"$TMP/out")" = 5
digest=$(sqlite3 "$DB" "select model_digest from runs where id = 2")
expect_code 0 "list --model DIGEST" lc-ledger list --model "$digest"
check "list --model DIGEST: run 2" test "$(wc -l <"$TMP/out")" = 2
expect_code 0 "list --dataset" lc-ledger list --dataset wiki.test.raw --limit 0
check "list --dataset: run 9" test "$(wc -l <"$TMP/out")" = 2
expect_code 0 "list: no match" lc-ledger list --profile nobody
check "list: no match prints the header only" test "$(wc -l <"$TMP/out")" = 1
expect_code 0 "list --format csv" lc-ledger list --format csv
check "csv: header" grep -q "^id,time,model_digest,model_name,recipe,profile,dataset,text_digest" "$TMP/out"
check "csv: 10 lines" test "$(wc -l <"$TMP/out")" = 10
check "csv: quoting" grep -q ',"lc-quant --bits 3, ""odd""",' "$TMP/out"
check "csv: NULL is empty, numbers exact" grep -q "^4,.*,21,0.21,0.02,0.01,0.2,0.98," "$TMP/out"
expect_code 0 "list --format json" lc-ledger list -f json
check "json: run 8 with null KLD" grep -q '"id": 8, .*"kld_mean": null' "$TMP/out"
if need python3 "JSON checked with Python"; then
  check "json: parses, 9 runs" python3 -c "import json,sys; assert len(json.load(open(sys.argv[1]))) == 9" "$TMP/out"
fi
expect_code 0 "LC_LEDGER_DB is the default" lc-ledger list
(cd "$TMP" && HOME=$TMP/h XDG_DATA_HOME= LC_LEDGER_DB= lc-ledger list >"$TMP/out" 2>"$TMP/err"); rc=$?
check "no LC_LEDGER_DB, outside a checkout: the data home's ledger, missing" test "$rc" = 1
check "message names it" grep -q "$TMP/h/.local/share/libcompress/ledger.db: no such ledger" "$TMP/err"
check "and made nothing" test ! -e "$TMP/h"
(cd "$TOP/docs/man" && LC_LEDGER_DB= lc-ledger list -f csv >/dev/null 2>"$TMP/err"); rc=$?
check "inside the checkout: its results/ledger.db, from any directory below the root" \
  sh -c "if [ -f '$TOP/results/ledger.db' ]; then [ $rc = 0 ]; else grep -q '^lc-ledger: $TOP/results/ledger.db: no such ledger' '$TMP/err'; fi"
check "missing default not created" test ! -e "$TMP/results"

# ---- show
expect_code 0 "show 4" lc-ledger show 4
check "show: fields" grep -q "^model_name  *sqz-s7-gptq4$" "$TMP/out"
check "show: stored profile" grep -q "^profile definition  *edge-1c: threads 1, mem 512M, isa avx2, ctx 512" "$TMP/out"
expect_code 0 "show 8 (hand-written row)" lc-ledger show 8
check "show: NULL as -" grep -q "^kld_mean  *-$" "$TMP/out"
expect_code 0 "show --format csv" lc-ledger show 8 --format csv
check "show csv" grep -q "^ppl,23.5$" "$TMP/out"
check "show csv: empty for NULL" grep -q "^kld_mean,$" "$TMP/out"
expect_code 0 "show --format json" lc-ledger show 8 --format json
check "show json" grep -q '"ppl": 23.5, .*"kld_mean": null,.*"profile_definition": {"name": "edge-1c"' "$TMP/out"
expect_fail_clean 1 "show: unknown id" lc-ledger show 99
check "show: message names the id" grep -q "no run 99" "$TMP/err"

# ---- compare
expect_code 0 "compare 3 4" lc-ledger compare 3 4
check "compare: ppl delta and ratio" grep -q "^ppl  *22.0000  *21.0000  *-1.0000  *0.9545$" "$TMP/out"
check "compare: bpw equal" grep -q "^bpw  *4.500  *4.500  *+0.000  *1.0000$" "$TMP/out"
expect_code 0 "compare --format csv" lc-ledger compare 3 4 --format csv
check "compare csv: header" grep -q "^field,a,b,delta,ratio$" "$TMP/out"
check "compare csv: ppl" grep -q "^ppl,22,21,-1,0.95454545454545" "$TMP/out"
check "compare csv: text fields" grep -q "^model_name,sqz-s7-rtn4,sqz-s7-gptq4,,$" "$TMP/out"
expect_code 0 "compare --format json" lc-ledger compare 3 4 -f json
check "compare json" grep -q '{"name": "kld_mean", "a": 0.05, "b": 0.02, "delta": -0.03' "$TMP/out"
if need python3 "JSON checked with Python"; then
  check "compare json parses" python3 -c "import json,sys; d=json.load(open(sys.argv[1])); assert d['a']==3 and d['b']==4" "$TMP/out"
fi
expect_code 0 "compare runs with different base models" lc-ledger compare 4 8
check "compare: note on stderr" grep -q "different base models" "$TMP/err"
check "compare: no KLD delta across bases" grep -q "^kld_mean  *0.020000  *-$" "$TMP/out"
expect_fail_clean 1 "compare refuses other n_ctx" lc-ledger compare 4 6
check "refusal names n_ctx" grep -q "not comparable: n_ctx differs ('512' vs '1024')" "$TMP/err"
expect_fail_clean 1 "compare refuses another text" lc-ledger compare 4 9 --format json
check "refusal names text_digest" grep -q "text_digest differs" "$TMP/err"
expect_fail_clean 1 "compare: unknown id" lc-ledger compare 4 77
expect_fail_clean 2 "compare: one id" lc-ledger compare 4
expect_fail_clean 2 "compare: not an id" lc-ledger compare 4 four

# ---- pareto
expect_code 0 "pareto" lc-ledger pareto --profile edge-1c --x bpw --y kld_mean
check "pareto: three protocols" test "$(grep -c '^# protocol' "$TMP/out")" = 3
check "pareto: runs without KLD counted" grep -q "2 without both metrics" "$TMP/out"
check "pareto: front of protocol 1 is 4, 2" test "$(sed -n '/^# protocol 1/,/^$/p' "$TMP/out" | awk '$1 ~ /^[0-9]+$/ {printf "%s ", $1}')" = "4 2 "
check "pareto: dominated rtn4 absent" test "$(grep -c rtn4 "$TMP/out")" = 0
expect_code 0 "pareto --format csv" lc-ledger pareto -p edge-1c -f csv
check "pareto csv: header" grep -q "^group,id,bpw,kld_mean,profile,model_name,recipe," "$TMP/out"
check "pareto csv: rows" test "$(cut -d, -f1-4 "$TMP/out" | tr '\n' ' ')" = "group,id,bpw,kld_mean 1,4,4.5,0.02 1,2,8.5,0.0004 2,6,4.5,0.03 3,9,4.5,0.04 "
expect_code 0 "pareto --format json" lc-ledger pareto -p edge-1c -f json --dataset heldout.txt
check "pareto json: axes" grep -q '"x": {"metric": "bpw", "better": "min"}' "$TMP/out"
if need python3 "JSON checked with Python"; then
  check "pareto json: fronts" python3 -c "
import json,sys; d=json.load(open(sys.argv[1]))
assert [[r['id'] for r in g['front']] for g in d['groups']] == [[4, 2], [6]], d" "$TMP/out"
fi
expect_code 0 "pareto: speed is maximised" lc-ledger pareto -p edge-1c --x decode_tok_s --y ppl -f csv
check "pareto: speed front" test "$(cut -d, -f1-2 "$TMP/out" | tr '\n' ' ')" = "group,id 1,8 1,4 1,2 1,1 2,6 "
expect_code 0 "pareto: --y-dir max" lc-ledger pareto -p edge-1c --x bpw --y ppl --y-dir max -f csv
check "pareto: direction flipped" grep -q "^1,5,32,25," "$TMP/out"
expect_code 0 "pareto: profile without runs" lc-ledger pareto -p server-2c
check "pareto: empty" grep -q "0 runs in 0 protocols" "$TMP/out"
expect_fail_clean 2 "pareto needs --profile" lc-ledger pareto
expect_fail_clean 2 "pareto: unknown metric" lc-ledger pareto -p edge-1c --x nosuch
expect_fail_clean 2 "pareto: text is not a metric" lc-ledger pareto -p edge-1c --x recipe
expect_fail_clean 2 "pareto: bad direction" lc-ledger pareto -p edge-1c --x-dir sideways

# ---- profiles
expect_code 0 "profiles" lc-ledger profiles
for p in edge-1c scalar-1c laptop-2c server-2c; do check "profiles: $p" grep -q "^$p " "$TMP/out"; done
check "profiles: laptop-2c values" grep -q "^laptop-2c  *2  *8G  *avx512  *2048  *built-in$" "$TMP/out"
expect_code 0 "profiles --profiles FILE" lc-ledger profiles --profiles "$TOP/datasets/profiles.txt" -f csv
check "profiles csv: file entry" grep -q "^micro-1c,1,268435456,scalar,256,.*datasets/profiles.txt$" "$TMP/out"
check "profiles csv: built-ins too" grep -q "^server-2c,2,25769803776,avx512,4096,built-in$" "$TMP/out"
printf 'edge-1c threads=1 mem=1G isa=scalar ctx=128\n' >"$TMP/p.txt"
LC_PROFILES=$TMP/p.txt expect_code 0 "profiles: LC_PROFILES overrides a built-in" lc-ledger profiles -f json
check "profiles json: override" grep -q '{"name": "edge-1c", "threads": 1, "mem_budget": 1073741824, "isa": "scalar", "n_ctx": 128, "source": "'"$TMP"'/p.txt"}' "$TMP/out"
printf 'ok threads=1 mem=1G isa=avx2 ctx=512\nbad threads=1 mem=lots isa=avx2 ctx=512\n' >"$TMP/bad.txt"
expect_fail_clean 1 "profiles: bad file" lc-ledger profiles --profiles "$TMP/bad.txt"
check "profiles: line-numbered error" grep -q "bad.txt:2: bad size 'lots'" "$TMP/err"

# ---- bad ledgers and usage
expect_fail_clean 1 "missing ledger" lc-ledger list --db "$TMP/nope/ledger.db"
check "missing ledger not created" test ! -e "$TMP/nope"
expect_fail_clean 1 "a directory" lc-ledger list --db "$TMP"
printf 'not a database at all, but long enough to look like a header to sqlite........\n' >"$TMP/junk.db"
expect_fail_clean 1 "not SQLite" lc-ledger list --db "$TMP/junk.db"
check "message names the file" grep -q "junk.db" "$TMP/err"
sqlite3 "$TMP/other.db" "create table t (x)"
expect_fail_clean 1 "another program's database" lc-ledger list --db "$TMP/other.db"
cp "$DB" "$TMP/future.db" && sqlite3 "$TMP/future.db" "PRAGMA user_version = 9"
expect_fail_clean 1 "newer schema refused" lc-ledger show 1 --db "$TMP/future.db"
check "newer schema: clear message" grep -q "schema version 9 is newer than this libcompress understands (3)" "$TMP/err"
expect_fail_clean 2 "no command" lc-ledger
expect_fail_clean 2 "unknown command" lc-ledger frobnicate
check "unknown command named" grep -q "unknown command 'frobnicate'" "$TMP/err"
expect_fail_clean 2 "bad --format" lc-ledger list --format xml
expect_fail_clean 2 "bad --limit" lc-ledger list --limit ten
expect_fail_clean 2 "option for another command" lc-ledger list --x bpw
expect_fail_clean 2 "extra argument" lc-ledger list 3
expect_fail_clean 2 "show without id" lc-ledger show
if [ -w /dev/full ]; then
  lc-ledger list >/dev/full 2>"$TMP/err"; rc=$?
  check "write error is exit 1" test "$rc" = 1
fi
done_testing
