#!/bin/sh
# pipelines/nightly.sh --engine slurm on a real Slurm: munge, slurmctld and
# slurmd started on localhost in a temporary directory (root only: slurmd
# starts jobs as their users), a small plan submitted as job arrays, the
# shards merged, every row checked against the same plan run locally; all
# daemons stopped at the end.  Bounded: the cluster must come up within 30 s
# and the night finish within 300 s.
. "$(dirname "$0")/lib.sh"
NIGHTLY=$TOP/pipelines/nightly.sh
if [ "$(id -u)" != 0 ]; then
  skip "Slurm test: needs root (slurmd runs jobs as their users)"; done_testing; exit
fi
for t in munged mungekey slurmctld slurmd sbatch squeue scontrol sinfo; do
  command -v $t >/dev/null 2>&1 || { skip "Slurm test: no $t (Debian slurm-wlm, munge)"; done_testing; exit; }
done
. "$TOP/tests/cli/slurm-local.sh"
trap 'slurm_stop; [ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"' EXIT
t0=$(date +%s)
if ! slurm_start "$TMP/slurm" 2>"$TMP/slurm.err"; then
  echo "# the Slurm node did not come up in 30 s:"; sed 's/^/#   /' "$TMP/slurm.err"
  skip "Slurm test: the local cluster did not start here (slurmctld/slurmd logs above)"
  done_testing; exit
fi
up=$(($(date +%s) - t0))
check "munged started" test -S "$S/munge/sock"
ok "a local Slurm cluster (munge, slurmctld, slurmd) is up in ${up} s"

night_plan "$TMP/s.plan"
t0=$(date +%s)
expect_code 3 "the night on Slurm (one failing job)" timeout 300 "$NIGHTLY" --engine slurm --db "$TMP/slurm.db" \
  --night s1 -o "$TMP/ns" --no-report "$TMP/s.plan"
echo "# the Slurm night took $(($(date +%s) - t0)) s"
check "submitted as job arrays" grep -q "as Slurm array" "$TMP/err"
check "each task wrote its own shard" test "$(ls "$TMP/ns/shards" | grep -c '\.db$')" -ge 10
check "the shards were merged" grep -q "runs\{0,1\} added" "$TMP/err"
expect_code 3 "the same plan locally" "$NIGHTLY" --db "$TMP/local.db" --night s1 -o "$TMP/nl" --no-report "$TMP/s.plan"
rows() { sqlite3 "$1" "select job, status, exit_code, ppl, kld_mean, top1, bpw, stored_bytes, tokens_scored
                       from runs where night = 's1' order by job"; }
rows "$TMP/slurm.db" >"$TMP/slurm.rows"
rows "$TMP/local.db" >"$TMP/local.rows"
check "Slurm and local give the same rows, bit-identical accuracy ($(wc -l <"$TMP/slurm.rows") rows)" \
  cmp -s "$TMP/slurm.rows" "$TMP/local.rows"
check "every row is there: 8 ok, 3 failed" \
  test "$(sqlite3 "$TMP/slurm.db" "select sum(status='ok') || '/' || sum(status='failed') from runs where night='s1'")" = "8/3"
n=$(sqlite3 "$TMP/slurm.db" "select count(*) from runs")
expect_code 0 "merging the shards again" lc-ledger --db "$TMP/slurm.db" merge "$TMP"/ns/shards/*.db
check "a second merge adds nothing" test "$(sqlite3 "$TMP/slurm.db" "select count(*) from runs")" = "$n"
pids=$(slurm_pids)
slurm_stop
# a killed daemon may linger as a zombie until init reaps it: that is gone
living() { [ -r "/proc/$1/status" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$1/status" 2>/dev/null; }
alive=""
for p in $pids; do
  k=0
  while living "$p" && [ $k -lt 50 ]; do sleep 0.1; k=$((k + 1)); done
  living "$p" && alive="$alive $p"
done
pids=$(echo $pids)
check "the daemons are stopped (slurmctld, slurmd, munged: ${pids:-no pid files})" test -z "$alive" -a -n "$pids"
done_testing
