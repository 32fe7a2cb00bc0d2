# A Slurm cluster of one node on localhost, in a directory of its own: munge,
# slurmctld and slurmd, every file and socket under DIR, ports checked free.
# Sourced by tests/cli/t0910-slurm.sh; also usable by hand (as root):
#   . tests/cli/slurm-local.sh; slurm_start /tmp/sl && sbatch --wrap hostname; slurm_stop
# Needs root (slurmd starts jobs as their users) and Debian slurm-wlm, munge.
# slurm_start exports SLURM_CONF; it returns 1 (with the logs' tails on
# stderr) when the node is not idle within 30 s.

slurm_start() {
  S=$1
  mkdir -p "$S/munge" "$S/state" "$S/spool" "$S/log" || return 1
  chmod 700 "$S/munge"
  mungekey -c -k "$S/munge/munge.key" -b 1024 -f >/dev/null 2>&1 || return 1
  chmod 600 "$S/munge/munge.key"
  munged --key-file="$S/munge/munge.key" --socket="$S/munge/sock" --pid-file="$S/munge/pid" \
    --log-file="$S/munge/log" --seed-file="$S/munge/seed" -f || return 1
  # free ports: random in 20000-59999, checked against the listening sockets
  port=""
  for try in 1 2 3 4 5 6 7 8 9 10; do
    p=$((20000 + $(od -An -N2 -tu2 /dev/urandom) % 40000))
    hex=$(printf '%04X' "$p")
    hex1=$(printf '%04X' $((p + 1)))
    if ! grep -qiE ":($hex|$hex1) " /proc/net/tcp /proc/net/tcp6 2>/dev/null; then
      port=$p
      break
    fi
  done
  [ -n "$port" ] || return 1
  host=$(hostname -s)
  {
    echo "ClusterName=lctest"
    echo "SlurmctldHost=$host(127.0.0.1)"
    echo "SlurmctldPort=$port"
    echo "SlurmdPort=$((port + 1))"
    echo "SlurmUser=root"
    echo "SlurmdUser=root"
    echo "AuthType=auth/munge"
    echo "AuthInfo=socket=$S/munge/sock"
    echo "CredType=cred/munge"
    echo "StateSaveLocation=$S/state"
    echo "SlurmdSpoolDir=$S/spool"
    echo "SlurmctldPidFile=$S/ctld.pid"
    echo "SlurmdPidFile=$S/d.pid"
    echo "SlurmctldLogFile=$S/log/ctld.log"
    echo "SlurmdLogFile=$S/log/d.log"
    echo "ProctrackType=proctrack/linuxproc"
    echo "TaskPlugin=task/none"
    echo "SelectType=select/cons_tres"
    echo "SelectTypeParameters=CR_Core"
    echo "MpiDefault=none"
    echo "ReturnToService=2"
    echo "SchedulerType=sched/backfill"
    echo "SchedulerParameters=sched_interval=1"
    echo "JobAcctGatherType=jobacct_gather/none"
    echo "AccountingStorageType=accounting_storage/none"
    echo "NodeName=$host NodeAddr=127.0.0.1 CPUs=$(nproc) RealMemory=1000 State=UNKNOWN"
    echo "PartitionName=lctest Nodes=ALL Default=YES MaxTime=INFINITE State=UP"
  } >"$S/slurm.conf"
  export SLURM_CONF="$S/slurm.conf"
  if ! slurmctld -f "$SLURM_CONF" 2>"$S/log/start.err" || ! slurmd -f "$SLURM_CONF" 2>>"$S/log/start.err"; then
    cat "$S/log/start.err" >&2
    tail -5 "$S/log/ctld.log" "$S/log/d.log" >&2 2>/dev/null
    return 1
  fi
  k=0
  until sinfo -h -o %t 2>/dev/null | grep -q idle || [ $k -ge 300 ]; do
    sleep 0.1
    k=$((k + 1))
  done
  sinfo -h -o %t 2>/dev/null | grep -q idle && return 0
  tail -5 "$S/log/ctld.log" "$S/log/d.log" >&2
  return 1
}

# The daemons' pids (after slurm_start), to check that they are gone.
slurm_pids() { cat "$S/ctld.pid" "$S/d.pid" "$S/munge/pid" 2>/dev/null; }

slurm_stop() {
  [ -n "${S:-}" ] || return 0
  [ -n "${SLURM_CONF:-}" ] && scontrol shutdown >/dev/null 2>&1
  for f in "$S/ctld.pid" "$S/d.pid" "$S/munge/pid"; do
    [ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
  done
  sleep 1
  for f in "$S/ctld.pid" "$S/d.pid" "$S/munge/pid"; do
    [ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
  done
  return 0
}
