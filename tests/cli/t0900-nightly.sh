#!/bin/sh
# pipelines/nightly.sh: plans, the DAG, resuming after kill -9, isolated
# failures, timeouts, the lock; lc-ledger regressions, merge and report (in
# headless Chromium).
. "$(dirname "$0")/lib.sh"
NIGHTLY=$TOP/pipelines/nightly.sh
DB=$TMP/ledger.db
cat "$TOP/README.md" "$TOP"/docs/*.md >"$TMP/text.txt"

# A stand-in compressor for jobs that take a while: lc-distill does not
# exist yet, and a test may put its own on PATH (the runner's bin/ has none).
mkdir -p "$TMP/fake"
cat >"$TMP/fake/lc-distill" <<'EOF'
#!/bin/sh
# test stand-in: lc-distill --sleep S IN -o OUT sleeps, then copies IN to OUT
s=0 in="" out=""
while [ $# -gt 0 ]; do
  case $1 in --sleep) s=$2; shift 2 ;; -o) out=$2; shift 2 ;; *) in=$1; shift ;; esac
done
sleep "$s" && cp "$in" "$out.tmp" && mv "$out.tmp" "$out"
EOF
chmod +x "$TMP/fake/lc-distill"
PATH=$TMP/fake:$PATH

# ---- plans with errors: exit 2, PLAN:LINE ------------------------------------------------
bad_plan() { # desc line-number text
  printf '%s\n' "$3" >"$TMP/bad.plan"
  expect_fail_clean 2 "plan error: $1" "$NIGHTLY" --db "$DB" -o "$TMP/badnight" "$TMP/bad.plan"
  check "plan error names bad.plan:$2" grep -q "bad.plan:$2: " "$TMP/err"
}
base_plan="model syn --synthetic 1
profiles edge-1c"
bad_plan "unknown directive" 3 "$base_plan
modle x y"
bad_plan "lc-eval inside a recipe" 3 "$base_plan
recipe r lc-quant --method rtn --bits 4 | lc-eval --text x"
bad_plan "unknown profile" 2 "model syn --synthetic 1
profiles edge-1c no-such-profile"
bad_plan "output named" 3 "$base_plan
recipe r lc-quant --method rtn --bits 4 -o x.h5"
bad_plan "unknown base" 4 "$base_plan
recipe a lc-quant --method rtn --bits 4
recipe b base=nothing lc-lowrank --ratio 0.2"
bad_plan "no profiles" 1 "model syn --synthetic 1"
bad_plan "runner's own eval option" 3 "$base_plan
eval --text x --db other.db"
bad_plan "duplicate recipe" 4 "$base_plan
recipe r lc-quant --method rtn --bits 4
recipe r lc-quant --method rtn --bits 8"
check "a bad plan creates no night" test ! -e "$TMP/badnight"

# ---- a night ---------------------------------------------------------------------------
# the test night: shared prefixes, a slow job, a failing one
night_plan "$TMP/t.plan" "recipe slow lc-distill --sleep 1"
N1=$TMP/n1
expect_code 3 "a night with a failing job exits 3" "$NIGHTLY" --db "$DB" --night n1 -o "$N1" "$TMP/t.plan"
q() { sqlite3 "$DB" "$1"; }
check "10 ok rows (5 variants x 2 profiles)" test "$(q "select count(*) from runs where night='n1' and status='ok'")" = 10
check "3 failed rows: the stage and its 2 evaluations" \
  test "$(q "select count(*) from runs where night='n1' and status='failed'")" = 3
check "the failed stage keeps its exit code and stderr" \
  test "$(q "select exit_code || ':' || (instr(stderr_tail, '--bits') > 0) from runs where job='syn/broken'")" = "2:1"
check "evaluations of a failed stage say why they did not run" \
  test "$(q "select count(*) from runs where job like 'syn/broken@%' and stderr_tail like '%not run%'")" = 2
check "the other jobs went on (rtn4 under both profiles)" \
  test "$(q "select count(*) from runs where job like 'syn/rtn4@%' and status='ok'")" = 2
check "a shared prefix runs once (syn/mag50 stage)" test "$(grep -c '^ok [0-9.]* syn/mag50$' "$N1/progress.log")" = 1
check "mag50-q4 builds on mag50's output" \
  test "$(lc-info --json "$N1/models/syn/mag50-q4.h5" | /usr/bin/python3 -c 'import json,sys; print(len(json.load(sys.stdin)["lineage"]))')" = 3
check "the base log-probs are computed once" test "$(ls "$N1/caches" | wc -l)" = 1
check "every row has a UUID, the night's id and its job" \
  test "$(q "select count(*) from runs where night='n1' and (length(uuid) != 36 or job = '')")" = 0
check "ok rows store the command and the speed repetitions" \
  test "$(q "select count(*) from runs where night='n1' and status='ok' and command like 'lc-eval %--job %' and decode_reps like '%,%,%'")" = 10
check "progress on stderr: done/total, failures, ETA" grep -q 'nightly: \[[0-9]*/19\] .* failed' "$TMP/err"
check "the report's path is printed" grep -q "nightly: report $N1/report.html" "$TMP/err"

# restarting a finished night runs nothing again
expect_code 3 "restart of a finished night" "$NIGHTLY" --db "$DB" --night n1 -o "$N1" "$TMP/t.plan"
check "restart: only the failed jobs run again" \
  test "$(grep -c "^skipped " "$N1/progress.log")" = 16
check "restart: no duplicate ok rows" test "$(q "select count(*) from runs where night='n1' and status='ok'")" = 10

# ---- kill -9 mid-night, then restart ---------------------------------------------------------
N2=$TMP/n2
sed 's/--sleep 1/--sleep 5/' "$TMP/t.plan" >"$TMP/k.plan"
setsid "$NIGHTLY" --db "$DB" --night k1 -o "$N2" --no-report "$TMP/k.plan" >"$TMP/k1.out" 2>&1 &
k=0
lines() { if [ -f "$1" ]; then wc -l <"$1"; else echo 0; fi; }
while [ "$(lines "$N2/progress.log")" -lt 5 ] && [ $k -lt 600 ]; do sleep 0.1; k=$((k + 1)); done
# the lock holds while the night runs
expect_fail_clean 1 "a second night in the same directory is refused" "$NIGHTLY" --db "$DB" -o "$N2" "$TMP/k.plan"
check "the lock message says why" grep -q "another night is running" "$TMP/err"
# the whole session: the runner, make, the jobs (timeout gives each its own group)
sid=$(ps -o sid= -p $! | tr -d ' ')
pkill -KILL -s "${sid:-$!}"
wait 2>/dev/null
before=$(wc -l <"$N2/progress.log")
check "killed mid-night (after $before of 19 jobs)" test "$before" -lt 19
# killed processes close their files (and the lock) as they die: a moment
flock -w 30 "$N2/.lock" true
expect_code 3 "restart after kill -9" "$NIGHTLY" --db "$DB" --night k1 -o "$N2" --no-report "$TMP/k.plan"
skipped=$(grep -c '^skipped ' "$N2/progress.log")
check "restart skips what was done ($skipped skipped of $before finished before the kill)" \
  test "$skipped" -ge $((before - 3)) -a "$skipped" -ge 1
check "after the restart every job@profile has exactly one ok row" \
  test "$(q "select count(*) || '/' || count(distinct job) from runs where night='k1' and status='ok'")" = "10/10"

# ---- timeouts ------------------------------------------------------------------------
cat >"$TMP/slow.plan" <<EOF
model syn --synthetic 1
profiles edge-1c
eval --text $TMP/text.txt --ctx 64 --chunks 2 --speed-reps 2
timeout 1
recipe slow lc-distill --sleep 20
EOF
expect_code 3 "a job over its timeout fails" "$NIGHTLY" --db "$TMP/slow.db" --night t1 -o "$TMP/n3" --no-report "$TMP/slow.plan"
check "the timed-out job: exit 124, 'timed out' in its row" \
  test "$(sqlite3 "$TMP/slow.db" "select exit_code || ':' || (stderr_tail like '%timed out after 1 s%') from runs where job='syn/slow'")" = "124:1"
check "nothing left of the timed-out job's output" test ! -e "$TMP/n3/models/syn/slow.h5"

# ---- regressions ---------------------------------------------------------------------
expect_code 3 "a second night" "$NIGHTLY" --db "$DB" --night n2 -o "$TMP/n4" --no-report "$TMP/t.plan"
run lc-ledger --db "$DB" regressions --night n2 --previous n1 --all --format csv
check "regressions: every ok job compared" test "$(grep -c ',ppl,' "$TMP/out")" = 10
check "the same plan twice: bit-identical accuracy, nothing flagged" \
  test "$(grep ',ppl,\|,kld_mean,\|,top1,' "$TMP/out" | grep -vc ',0.00 se,-,')" = 0
# a night whose perplexity and decode speed got worse
q "create temp table t as select * from runs where night='n2' and status='ok' and job='syn/rtn4@edge-1c';
   update t set id = null, uuid = '', night = 'n3', ppl = ppl * 1.5, decode_reps = '50,51,49', decode_tok_s = 50;
   insert into runs select * from t;
   update runs set decode_reps = '100,101,99', decode_tok_s = 100 where night = 'n2' and job = 'syn/rtn4@edge-1c';"
# (both nights' repetitions are set: measured ones on a loaded machine may
# spread too widely for any test to call a change)
run lc-ledger --db "$DB" regressions --night n3
check "a worse perplexity is a regression" grep -q 'syn/rtn4@edge-1c .*ppl .*REGRESSION' "$TMP/out"
check "a slower decode is a regression" grep -q 'syn/rtn4@edge-1c .*decode_tok_s .*REGRESSION' "$TMP/out"
check "regressions compare with the night before (n2)" grep -q "night n3 against n2" "$TMP/out"
expect_fail_clean 1 "regressions of an unknown night" lc-ledger --db "$DB" regressions --night nope
expect_fail_clean 2 "regressions needs --night" lc-ledger --db "$DB" regressions

# ---- merge -----------------------------------------------------------------------------
run lc-ledger --db "$TMP/merged.db" merge "$DB"
total=$(q "select count(*) from runs")
check "merge into a new ledger adds every run" test "$(sqlite3 "$TMP/merged.db" "select count(*) from runs")" = "$total"
check "merge says what it added" grep -q "$total runs added, 0 already present" "$TMP/err"
run lc-ledger --db "$TMP/merged.db" merge "$DB"
check "merging twice adds nothing" grep -q "0 runs added, $total already present" "$TMP/err"
check "same rows after merging twice" test "$(sqlite3 "$TMP/merged.db" "select count(*) from runs")" = "$total"
check "merged rows keep uuid, night and figures" \
  test "$(sqlite3 "$TMP/merged.db" "select group_concat(uuid || ppl, ',') from (select uuid, ppl from runs order by uuid)")" = \
       "$(q "select group_concat(uuid || ppl, ',') from (select uuid, ppl from runs order by uuid)")"
u=$(q "select uuid from runs where night='n1' and status='ok' limit 1")
sqlite3 "$TMP/merged.db" "update runs set n_ctx = 999 where uuid = '$u'"
expect_fail_clean 1 "a UUID whose protocol clashes is refused" lc-ledger --db "$TMP/merged.db" merge "$DB"
check "the refusal names the run and the field" grep -q "$u.*n_ctx" "$TMP/err"
expect_fail_clean 1 "a ledger is not merged into itself" lc-ledger --db "$DB" merge "$DB"
expect_fail_clean 1 "a missing shard" lc-ledger --db "$TMP/merged.db" merge "$TMP/nothing.db"

# ---- the report, in a real browser ---------------------------------------------------------
expect_code 0 "report" lc-ledger --db "$DB" report --night n1 -o "$TMP/report.html"
check "the report is one HTML page with inline SVG plots" test "$(grep -c '<svg' "$TMP/report.html")" = 4
expect_fail_clean 2 "report needs --night" lc-ledger --db "$DB" report -o "$TMP/x.html"
CHROMIUM=$(command -v chromium || command -v chromium-browser || true)
if [ -z "$CHROMIUM" ]; then
  skip "the report in a browser: no chromium (Debian chromium)"
elif ! /usr/bin/python3 -c 'import PIL' 2>/dev/null; then
  skip "the report's screenshot: no python3-pil"
else
  chrome() { timeout 120 "$CHROMIUM" --headless --no-sandbox --disable-gpu --hide-scrollbars \
    --user-data-dir="$TMP/chrome" "$@" 2>>"$TMP/chrome.err"; }
  chrome --dump-dom "file://$TMP/report.html" >"$TMP/dom.html"
  runs=$(q "select count(*) from runs where night='n1'")
  # a job's failed row is superseded when it ran again (the restart above)
  failed=$(q "select count(*) from runs r where night='n1' and status='failed' and not exists
              (select 1 from runs s where s.night = r.night and s.job = r.job and s.profile = r.profile and s.id > r.id)")
  run /usr/bin/python3 "$TOP/tests/cli/report-check.py" dom "$TMP/dom.html" edge-1c,laptop-2c "$runs" "$failed"
  check "Chromium's DOM: every profile has both plots and a frontier; tables have the night's rows ($(cat "$TMP/out"))" \
    test "$rc" = 0
  chrome --window-size=1280,2000 --screenshot="$TMP/shot.png" "file://$TMP/report.html" >/dev/null
  run /usr/bin/python3 "$TOP/tests/cli/report-check.py" png "$TMP/shot.png"
  check "the screenshot is not blank ($(cat "$TMP/out"))" test "$rc" = 0
fi
done_testing
