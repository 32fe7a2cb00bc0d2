#!/bin/bash
# pipelines/nightly.sh: run one night of compression jobs from a plan file.
#
#   pipelines/nightly.sh [options] PLAN
#
# A plan names models x recipes x profiles (docs/NIGHTLY.md, example
# pipelines/nightly/demo.plan).  The night is a DAG of jobs: each model is
# imported once; each recipe is a pipeline of lc- tools, and recipes that
# start with the same stages share them (each stage is one job, its output a
# container); the base log-probs are computed once per model, base and text
# (lc-eval --base-cache); every model is evaluated under every profile, and
# each evaluation is one ledger row carrying the night id and the job name.
#
# Options:
#   -o, --dir DIR      the night's directory (default results/nights/PLAN/NIGHT)
#       --night ID     the night id (default: today's UTC date; the directory
#                      remembers it, so a restart resumes the same night)
#       --db PATH      the ledger (default: the tools' own: $LC_LEDGER_DB, ...)
#   -j, --jobs N       jobs at once (default: the plan's "jobs", else 1)
#       --engine E     local (GNU make -j, default) or slurm (sbatch --array, one
#                      array per DAG level; each task writes its own ledger
#                      shard, merged at the end with lc-ledger merge)
#       --sbatch ARGS  extra sbatch options (slurm engine), e.g. "-p debug"
#       --no-report    do not write DIR/report.html at the end
#   -h, --help
# Exit status: 0 every job ok; 3 some jobs failed (each has a ledger row with
# status 'failed'); 2 usage or plan error (PLAN:LINE: message); 1 the runner
# itself failed (another night holds the directory, a tool is missing, ...).
set -u
ME=$(readlink -f "$0")
TOP=$(dirname "$(dirname "$ME")")
[ -x "$TOP/bin/lc-eval" ] && export PATH="$TOP/bin:$PATH"

die() { echo "nightly: $*" >&2; exit 1; }
usage_die() { echo "nightly: $*" >&2; echo "Try 'pipelines/nightly.sh --help' for more information." >&2; exit 2; }

# ---- one job (run by make, or by a Slurm array task) --------------------------------

# The ledger options of this job: the task's shard under Slurm, else --db.
db_opts() { if [ -n "${DB:-}" ]; then printf '%s\n' --db "$DB"; fi; }

digest() { # a container's digest, or a plain file's cksum
  case $1 in
    *.h5) lc-info --digest "$1" 2>/dev/null ;;
    *) cksum <"$1" | cut -d' ' -f1,2 | tr ' ' - ;;
  esac
}

# The stamp of a finished stage: the digests of its inputs and its output.
stamp_text() {
  local f
  for f in "${INPUTS[@]}" "$OUT"; do
    [ -f "$f" ] || return 1
    printf '%s %s\n' "$f" "$(digest "$f")" || return 1
  done
}

# Is this job done already?  A stage: its output exists and its stamp matches
# the digests of its inputs and output now.  An evaluation: the ledger holds
# an ok row of this night and job for the model's current digest.
already_done() {
  if [ "$KIND" = eval ]; then
    local d n
    d=$(digest "${INPUTS[0]}") || return 1
    [ -n "${DB:-}" ] && [ ! -f "$DB" ] && return 1
    n=$(lc-ledger $(db_opts) list --night "$NIGHT" --job "$NAME" --status ok --model "$d" --limit 1 \
      --format csv 2>/dev/null | wc -l)
    [ "$n" -ge 2 ]
  else
    [ -f "$OUT" ] && [ -f "$D/stamps/$ID" ] && [ "$(stamp_text)" = "$(cat "$D/stamps/$ID")" ]
  fi
}

# One line per finished job in progress.log (status seconds name); the
# summary on stderr and in progress.txt (which the Slurm submitter follows).
progress() { # status seconds
  local line
  line=$({
    flock 8
    printf '%s %s %s\n' "$1" "$2" "$NAME" >>"$D/progress.log"
    total=$(wc -l <"$D/jobs.list")
    awk -v total="$total" -v par="$(cat "$D/parallel")" -v st="$1" -v s="$2" -v name="$NAME" '
      { n++; if ($1 == "failed") f++; if ($1 != "skipped") { t += $2; m++ } }
      END {
        eta = "";
        if (m > 0 && n < total) {
          sec = t / m * (total - n) / par;
          eta = sec < 90 ? sprintf(" · ETA %d s", sec) : sprintf(" · ETA %d min", sec / 60 + 0.5);
        }
        printf "nightly: [%d/%d] %s %s (%.1f s) · %d failed%s\n", n, total, st, name, s, f, eta
      }' "$D/progress.log" | tee -a "$D/progress.txt"
  } 8>>"$D/progress.lock")
  echo "$line" >&2
}

record_failure() { # exit-code-or-empty, stderr file
  local ec=()
  [ -n "$1" ] && ec=(--exit-code "$1")
  local prof=()
  [ -n "$PROFILE" ] && prof=(--profile "$PROFILE")
  lc-ledger $(db_opts) add-failure --night "$NIGHT" --job "$NAME" "${ec[@]}" "${prof[@]}" --name "$LABEL" \
    --stderr "$2" --command "$CMD" 2>>"$D/runner.err" || echo "nightly: $NAME: could not record the failure" >&2
}

run_job() { # DIR ID
  D=$1 ID=$2
  # shellcheck source=/dev/null
  . "$D/jobs/$ID.sh"
  NIGHT=$(cat "$D/night")
  TIMEOUT=$(cat "$D/timeout")
  export NIGHT DB OUT
  local t0 t1 rc f log=$D/logs/$ID
  t0=$(date +%s.%N)
  for f in "${INPUTS[@]}"; do
    if [ ! -f "$f" ]; then
      echo "nightly: not run: its input $f is missing (the job that makes it failed)" >"$log.err"
      record_failure "" "$log.err"
      progress failed 0
      return 0
    fi
  done
  if already_done; then
    progress skipped 0
    return 0
  fi
  mkdir -p "$(dirname "$OUT")"
  # An evaluation measures speed: it runs alone.  Locally it takes the night's
  # speed lock exclusively, every other job shares it; under Slurm the
  # evaluations' arrays ask for whole nodes (--exclusive) instead.
  local mode=-s
  [ "$KIND" = eval ] && mode=-x
  if [ -n "${LC_NIGHT_NOLOCK:-}" ]; then
    timeout -k 30 "$TIMEOUT" bash -c "$CMD" >"$log.out" 2>"$log.err"
  else
    flock $mode "$D/speed.lock" timeout -k 30 "$TIMEOUT" bash -c "$CMD" >"$log.out" 2>"$log.err"
  fi
  rc=$?
  t1=$(date +%s.%N)
  local secs
  secs=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.1f", b - a }')
  if [ $rc -eq 0 ] && [ "$KIND" != eval ] && [ ! -f "$OUT" ]; then
    echo "nightly: the job exited 0 but wrote no $OUT" >>"$log.err"
    rc=1
  fi
  if [ $rc -ne 0 ]; then
    [ $rc -eq 124 ] && echo "nightly: timed out after $TIMEOUT s" >>"$log.err"
    [ "$KIND" != eval ] && rm -f "$OUT" "$D/stamps/$ID"
    record_failure "$rc" "$log.err"
    progress failed "$secs"
    return 0
  fi
  if [ "$KIND" != eval ]; then
    stamp_text >"$D/stamps/$ID.tmp" && mv "$D/stamps/$ID.tmp" "$D/stamps/$ID"
  fi
  progress ok "$secs"
  return 0
}

if [ "${1:-}" = --run-job ]; then
  DB=${LC_NIGHT_DB:-$(cat "$2/db")}
  run_job "$2" "$3"
  exit 0
fi
if [ "${1:-}" = --slurm-task ]; then
  id=$(sed -n "$((SLURM_ARRAY_TASK_ID + 1))p" "$2/waves/$3")
  [ -n "$id" ] || die "slurm task $SLURM_ARRAY_TASK_ID: no job in wave $3"
  DB=$2/shards/$id.db
  LC_NIGHT_NOLOCK=1 run_job "$2" "$id"
  exit 0
fi

# ---- options ------------------------------------------------------------------------

DIR="" NIGHT_OPT="" DB_OPT="${LC_LEDGER_DB:-}" JOBS_OPT="" ENGINE=local SBATCH_ARGS="" REPORT=1 PLAN=""
while [ $# -gt 0 ]; do
  case $1 in
    -o|--dir) [ $# -ge 2 ] || usage_die "$1 needs a directory"; DIR=$2; shift 2 ;;
    --night) [ $# -ge 2 ] || usage_die "--night needs an id"; NIGHT_OPT=$2; shift 2 ;;
    --db) [ $# -ge 2 ] || usage_die "--db needs a path"; DB_OPT=$2; shift 2 ;;
    -j|--jobs) [ $# -ge 2 ] || usage_die "$1 needs a number"; JOBS_OPT=$2; shift 2 ;;
    --engine) [ $# -ge 2 ] || usage_die "--engine needs local or slurm"; ENGINE=$2; shift 2 ;;
    --sbatch) [ $# -ge 2 ] || usage_die "--sbatch needs options"; SBATCH_ARGS=$2; shift 2 ;;
    --no-report) REPORT=0; shift ;;
    -h|--help) sed -n '2,/^set -u/p' "$ME" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
    -*) usage_die "unknown option '$1'" ;;
    *) [ -z "$PLAN" ] || usage_die "one PLAN only"; PLAN=$1; shift ;;
  esac
done
[ -n "$PLAN" ] || usage_die "no PLAN given"
[ -f "$PLAN" ] || usage_die "$PLAN: no such plan file"
case $ENGINE in local|slurm) ;; *) usage_die "--engine: '$ENGINE' is not local or slurm" ;; esac
case $JOBS_OPT in ''|[1-9]|[1-9][0-9]) ;; *) usage_die "--jobs: '$JOBS_OPT' is not 1..99" ;; esac
[ -z "$NIGHT_OPT" ] || [[ $NIGHT_OPT =~ ^[A-Za-z0-9._:-]{1,63}$ ]] ||
  usage_die "--night: '$NIGHT_OPT' is not 1-63 characters of A-Z a-z 0-9 . _ : -"
for t in lc-import lc-eval lc-ledger lc-info; do
  command -v $t >/dev/null || die "$t is not on PATH (run make first)"
done

# ---- the plan -----------------------------------------------------------------------

NAME_RE='^[A-Za-z0-9][A-Za-z0-9._-]{0,47}$'
declare -a MODELS=() RECIPES=() PROFILES=()
declare -A MODEL_SRC=() RECIPE_PIPE=() RECIPE_TEXT=() RECIPE_BASE=() RECIPE_LINE=()
EVAL_OPTS="" PLAN_JOBS=1 PLAN_TIMEOUT=7200
plan_error() { echo "nightly: $PLAN:$lineno: $*" >&2; exit 2; }
known_profiles=$(lc-ledger profiles --format csv 2>/dev/null | tail -n +2 | cut -d, -f1)
lineno=0
while IFS= read -r line || [ -n "$line" ]; do
  lineno=$((lineno + 1))
  line=${line%%#*}
  line=$(printf '%s' "$line" | sed 's/^[[:space:]]*//; s/[[:space:]]*$//; s/[[:space:]][[:space:]]*/ /g')
  [ -z "$line" ] && continue
  word=${line%% *}
  rest=""
  [ "$word" != "$line" ] && rest=${line#* }
  case $word in
    model)
      name=${rest%% *}
      [ "$name" != "$rest" ] && [ -n "$name" ] || plan_error "model needs NAME and an lc-import source"
      [[ $name =~ $NAME_RE ]] || plan_error "model name '$name': use 1-48 characters of A-Z a-z 0-9 . _ -"
      [ -z "${MODEL_SRC[$name]+x}" ] || plan_error "model '$name' defined twice"
      MODEL_SRC[$name]=${rest#* }
      MODELS+=("$name") ;;
    profiles|profile)
      [ -n "$rest" ] || plan_error "$word needs one or more profile names"
      for p in $rest; do
        printf '%s\n' "$known_profiles" | grep -qxF -- "$p" ||
          plan_error "unknown profile '$p' (lc-ledger profiles lists them)"
        case " ${PROFILES[*]} " in *" $p "*) plan_error "profile '$p' named twice" ;; esac
        PROFILES+=("$p")
      done ;;
    eval)
      for bad in --profile -p --db --night --job --base --base-cache --name --pass --no-ledger -j --json; do
        case " $rest " in *" $bad "*|*" $bad="*) plan_error "eval: $bad is set by the runner" ;; esac
      done
      EVAL_OPTS=$rest ;;
    jobs)
      [[ $rest =~ ^[1-9][0-9]?$ ]] || plan_error "jobs: '$rest' is not 1..99"
      PLAN_JOBS=$rest ;;
    timeout)
      [[ $rest =~ ^[1-9][0-9]{0,6}$ ]] || plan_error "timeout: '$rest' is not a number of seconds"
      PLAN_TIMEOUT=$rest ;;
    recipe)
      name=${rest%% *}
      [ "$name" != "$rest" ] && [ -n "$name" ] || plan_error "recipe needs NAME and a pipeline"
      [[ $name =~ $NAME_RE ]] || plan_error "recipe name '$name': use 1-48 characters of A-Z a-z 0-9 . _ -"
      [ "$name" != dense ] || plan_error "recipe name 'dense' is the imported model itself"
      [ -z "${RECIPE_LINE[$name]+x}" ] || plan_error "recipe '$name' defined twice"
      body=${rest#* }
      text="" base=dense
      while :; do
        kv=${body%% *}
        case $kv in
          text=*) text=${kv#text=}; [ -n "$text" ] || plan_error "text= needs a text set" ;;
          base=*) base=${kv#base=}; [ -n "$base" ] || plan_error "base= needs a recipe name or dense" ;;
          *=*) plan_error "unknown recipe key '${kv%%=*}' (text, base)" ;;
          *) break ;;
        esac
        [ "$kv" = "$body" ] && plan_error "recipe '$name' has no pipeline"
        body=${body#* }
      done
      IFS='|' read -r -a stages <<<"$body"
      k=0
      for st in "${stages[@]}"; do
        k=$((k + 1))
        st=$(printf '%s' "$st" | sed 's/^ *//; s/ *$//')
        [ -n "$st" ] || plan_error "recipe '$name': stage $k is empty"
        case ${st%% *} in
          lc-quant|lc-prune|lc-lowrank|lc-distill) ;;
          lc-import|lc-eval) plan_error "recipe '$name': ${st%% *} is added by the runner, not part of a recipe" ;;
          *) plan_error "recipe '$name': stage $k '${st%% *}' is not a compressing lc- tool (lc-quant, lc-prune, lc-lowrank, lc-distill)" ;;
        esac
        case " $st " in
          *" -o "*|*" --output "*|*" --output="*) plan_error "recipe '$name': stage $k names an output; the runner does" ;;
        esac
        case $st in
          *[\;\&\<\>\`]*|*'$('*) plan_error "recipe '$name': stage $k: one command per stage (no ; & < > \` \$( )" ;;
        esac
      done
      RECIPE_PIPE[$name]=$body RECIPE_TEXT[$name]=$text RECIPE_BASE[$name]=$base RECIPE_LINE[$name]=$lineno
      RECIPES+=("$name") ;;
    *) plan_error "unknown directive '$word' (model, profiles, recipe, eval, jobs, timeout)" ;;
  esac
done <"$PLAN"
lineno=$(wc -l <"$PLAN")
[ ${#MODELS[@]} -gt 0 ] || plan_error "no model line"
[ ${#PROFILES[@]} -gt 0 ] || plan_error "no profiles line"
for r in "${RECIPES[@]}"; do
  b=${RECIPE_BASE[$r]}
  if [ "$b" != dense ] && [ -z "${RECIPE_LINE[$b]+x}" ]; then
    lineno=${RECIPE_LINE[$r]}
    plan_error "recipe '$r': base=$b is neither dense nor a recipe of this plan"
  fi
done

# ---- the night's directory ------------------------------------------------------------

PLAN_NAME=$(basename "$PLAN"); PLAN_NAME=${PLAN_NAME%.*}
NIGHT=${NIGHT_OPT:-$(date -u +%Y-%m-%d)}
[ -n "$DIR" ] || DIR=results/nights/$PLAN_NAME/$NIGHT
mkdir -p "$DIR" || die "cannot create $DIR"
DIR=$(readlink -f "$DIR")
exec 9>>"$DIR/.lock"
flock -n 9 || die "$DIR: another night is running there (its lock is held); wait for it or choose another --dir"
if [ -f "$DIR/night" ]; then
  old=$(cat "$DIR/night")
  [ -z "$NIGHT_OPT" ] || [ "$NIGHT_OPT" = "$old" ] || die "$DIR holds night '$old', not '$NIGHT_OPT'"
  NIGHT=$old
  echo "nightly: resuming night $NIGHT in $DIR" >&2
else
  echo "$NIGHT" >"$DIR/night"
  echo "nightly: night $NIGHT in $DIR" >&2
fi
DB=""
if [ -n "$DB_OPT" ]; then
  mkdir -p "$(dirname "$DB_OPT")"
  DB=$(readlink -f "$DB_OPT")
fi
printf '%s' "$DB" >"$DIR/db"
PAR=${JOBS_OPT:-$PLAN_JOBS}
echo "$PAR" >"$DIR/parallel"
echo "$PLAN_TIMEOUT" >"$DIR/timeout"
rm -rf "$DIR/jobs" "$DIR/waves"
mkdir -p "$DIR/jobs" "$DIR/logs" "$DIR/stamps" "$DIR/models" "$DIR/caches" "$DIR/shards" "$DIR/waves"
: >"$DIR/progress.log"
: >"$DIR/progress.txt"
cp "$PLAN" "$DIR/plan"

# ---- the DAG --------------------------------------------------------------------------

declare -a JID=() JNAME=() JDEPTH=() JDEPS=() JKIND=()
declare -A NODE=() DEPTH_OF=() NODEFILE=()
qj() { printf '%q' "$1"; }
add_job() { # kind name out profile label depth deps cmd inputs...
  local id
  id=$(printf 'j%03d' ${#JID[@]})
  local kind=$1 name=$2 out=$3 prof=$4 label=$5 depth=$6 deps=$7 cmd=$8
  shift 8
  {
    echo "KIND=$(qj "$kind") NAME=$(qj "$name") OUT=$(qj "$out") PROFILE=$(qj "$prof") LABEL=$(qj "$label")"
    printf 'INPUTS=('; for f in "$@"; do printf ' %q' "$f"; done; printf ' )\n'
    echo "CMD=$(qj "$cmd")"
  } >"$DIR/jobs/$id.sh"
  JID+=("$id") JNAME+=("$name") JDEPTH+=("$depth") JDEPS+=("$deps") JKIND+=("$kind")
  DEPTH_OF[$id]=$depth
  LAST=$id
}
norm() { printf '%s' "$1" | sed 's/^ *//; s/ *$//; s/  */ /g'; }
evalcmd() { # profile job label cache text model
  local t=""
  [ -n "$5" ] && t=" --text $(qj "$5")"
  echo "lc-eval -q --profile $(qj "$1") \${DB:+--db \"\$DB\"} --night \"\$NIGHT\" --job $(qj "$2") --name $(qj "$3")" \
    "--base-cache $(qj "$4") $EVAL_OPTS$t $(qj "$6")"
}

# the recipe that a full pipeline is, by its normalised stages
declare -A FULL=()
for r in "${RECIPES[@]}"; do
  key=""
  IFS='|' read -r -a stages <<<"${RECIPE_PIPE[$r]}"
  for st in "${stages[@]}"; do key="$key|$(norm "$st")"; done
  [ -n "${FULL[$key]+x}" ] || FULL[$key]=$r
done

for m in "${MODELS[@]}"; do
  mdir=$DIR/models/$m
  add_job import "$m/dense" "$mdir/dense.h5" "" "$m/dense" 0 "" "lc-import -q ${MODEL_SRC[$m]} -o \"\$OUT\""
  NODE[$m:dense]=$LAST
  declare -A FILE_OF=([dense]="$mdir/dense.h5")
  for r in "${RECIPES[@]}"; do
    key="" prev=${NODE[$m:dense]} prevfile=$mdir/dense.h5 k=0
    IFS='|' read -r -a stages <<<"${RECIPE_PIPE[$r]}"
    for st in "${stages[@]}"; do
      k=$((k + 1))
      st=$(norm "$st")
      key="$key|$st"
      if [ -z "${NODE[$m:$key]+x}" ]; then
        nm=${FULL[$key]:-$r~$k}
        out=$mdir/$nm.h5
        add_job stage "$m/$nm" "$out" "" "$m/$nm" $((DEPTH_OF[$prev] + 1)) "$prev" \
          "$st $(qj "$prevfile") -o \"\$OUT\"" "$prevfile"
        NODE[$m:$key]=$LAST
        NODEFILE[$LAST]=$out
      fi
      prev=${NODE[$m:$key]}
      prevfile=${NODEFILE[$prev]}
    done
    NODE[$m:r:$r]=$prev
    FILE_OF[$r]=$prevfile
  done
  # base log-probs: once per (model, base, text)
  declare -A CACHE=()
  cache_for() { # base text -> sets CJ (job) and CF (file)
    local b=$1 t=$2 key="$1:$2"
    if [ -z "${CACHE[$key]+x}" ]; then
      local bj bf=${FILE_OF[$b]}
      if [ "$b" = dense ]; then bj=${NODE[$m:dense]}; else bj=${NODE[$m:r:$b]}; fi
      local cf="$DIR/caches/$m-$b${t:+-$t}.lpc" tt=""
      [ -n "$t" ] && tt=" --text $(qj "$t")"
      add_job cache "$m/base-logprobs:$b${t:+:$t}" "$cf" "${PROFILES[0]}" "$m/$b" $((DEPTH_OF[$bj] + 1)) "$bj" \
        "lc-eval -q --profile $(qj "${PROFILES[0]}") --no-speed --no-ledger --base $(qj "$bf") --base-cache \"\$OUT\" $EVAL_OPTS$tt $(qj "$bf") >/dev/null" \
        "$bf"
      CACHE[$key]="$LAST $cf"
    fi
    CJ=${CACHE[$key]%% *} CF=${CACHE[$key]#* }
  }
  for p in "${PROFILES[@]}"; do
    cache_for dense ""
    mj=${NODE[$m:dense]}
    d=$((DEPTH_OF[$CJ] > DEPTH_OF[$mj] ? DEPTH_OF[$CJ] : DEPTH_OF[$mj]))
    add_job eval "$m/dense@$p" "" "$p" "$m/dense" $((d + 1)) "$mj $CJ" \
      "$(evalcmd "$p" "$m/dense@$p" "$m/dense" "$CF" "" "$mdir/dense.h5")" "$mdir/dense.h5" "$CF"
    for r in "${RECIPES[@]}"; do
      cache_for "${RECIPE_BASE[$r]}" "${RECIPE_TEXT[$r]}"
      mj=${NODE[$m:r:$r]}
      d=$((DEPTH_OF[$CJ] > DEPTH_OF[$mj] ? DEPTH_OF[$CJ] : DEPTH_OF[$mj]))
      add_job eval "$m/$r@$p" "" "$p" "$m/$r" $((d + 1)) "$mj $CJ" \
        "$(evalcmd "$p" "$m/$r@$p" "$m/$r" "$CF" "${RECIPE_TEXT[$r]}" "${FILE_OF[$r]}")" "${FILE_OF[$r]}" "$CF"
    done
  done
  unset FILE_OF CACHE
done
printf '%s\n' "${JNAME[@]}" >"$DIR/jobs.list"
N=${#JID[@]}
echo "nightly: $N jobs (${#MODELS[@]} model(s) x $((${#RECIPES[@]} + 1)) recipe(s) incl. dense x ${#PROFILES[@]} profile(s), shared stages once), $ENGINE engine, $PAR at once" >&2

# ---- run ----------------------------------------------------------------------------------

t_start=$(date +%s)
if [ "$ENGINE" = local ]; then
  # GNU make runs the DAG: prerequisites give the order, -j the parallelism.
  {
    echo "R := $(printf '%q' "$ME") --run-job $(printf '%q' "$DIR")"
    echo "all: ${JID[*]}"
    echo ".PHONY: all ${JID[*]}"
    for i in "${!JID[@]}"; do
      echo "${JID[$i]}: ${JDEPS[$i]}"
      printf '\t@$(R) %s\n' "${JID[$i]}"
    done
  } >"$DIR/Makefile"
  make -s -k -j "$PAR" -f "$DIR/Makefile" all || echo "nightly: make reported an error (see above)" >&2
else
  command -v sbatch >/dev/null || die "the slurm engine needs sbatch on PATH (Debian slurm-client)"
  maxd=0
  for d in "${JDEPTH[@]}"; do [ "$d" -gt "$maxd" ] && maxd=$d; done
  # one array per DAG level and kind: the evaluations' arrays get whole
  # nodes (they measure speed), the others share them
  prev="" ids=""
  for w in $(seq 0 "$maxd"); do
    this=""
    for kind in stage eval; do
      wave=$w-$kind
      : >"$DIR/waves/$wave"
      for i in "${!JID[@]}"; do
        [ "${JDEPTH[$i]}" = "$w" ] || continue
        { [ "$kind" = eval ] && [ "${JKIND[$i]}" = eval ]; } || { [ "$kind" = stage ] && [ "${JKIND[$i]}" != eval ]; } ||
          continue
        echo "${JID[$i]}" >>"$DIR/waves/$wave"
      done
      n=$(wc -l <"$DIR/waves/$wave")
      [ "$n" -gt 0 ] || continue
      dep=() excl=()
      [ -n "$prev" ] && dep=(--dependency="afterany:$prev")
      [ "$kind" = eval ] && excl=(--exclusive)
      # shellcheck disable=SC2086
      id=$(sbatch --parsable --job-name="lc-night-$wave" --array="0-$((n - 1))%$PAR" "${dep[@]}" "${excl[@]}" \
        --output="$DIR/logs/slurm-%A_%a.out" $SBATCH_ARGS \
        --wrap "exec $(printf '%q' "$ME") --slurm-task $(printf '%q' "$DIR") $wave") || die "sbatch failed (wave $wave)"
      id=${id%%;*}
      this=${this:+$this:}$id
      ids=${ids:+$ids,}$id
      echo "nightly: level $w, ${kind}s: $n job(s) as Slurm array $id" >&2
    done
    prev=${this:-$prev}
  done
  tail -n +1 -F "$DIR/progress.txt" 2>/dev/null >&2 &
  tailpid=$!
  # until no task of the night is queued or running (sbatch --wait polls
  # at growing intervals, up to a minute late); squeue failing 10 times in a
  # row means the controller is gone
  bad=0
  while :; do
    if q=$(squeue -h -o %i -j "$ids" 2>/dev/null); then
      bad=0
      [ -z "$q" ] && break
    else
      bad=$((bad + 1))
      [ $bad -ge 10 ] && { echo "nightly: squeue keeps failing: the Slurm controller is gone?" >&2; break; }
    fi
    sleep 1
  done
  sleep 0.5
  kill $tailpid 2>/dev/null; wait $tailpid 2>/dev/null
  shards=("$DIR"/shards/*.db)
  if [ -e "${shards[0]}" ]; then
    lc-ledger ${DB:+--db "$DB"} merge "${shards[@]}" || die "merging the shards failed"
  fi
fi

done_n=$(wc -l <"$DIR/progress.log")
failed=$(grep -c '^failed ' "$DIR/progress.log")
skipped=$(grep -c '^skipped ' "$DIR/progress.log")
echo "nightly: night $NIGHT: $done_n/$N jobs finished in $(( $(date +%s) - t_start )) s: $((done_n - failed - skipped)) ran, $skipped already done, $failed failed" >&2
if [ "$done_n" -lt "$N" ]; then
  echo "nightly: $((N - done_n)) job(s) never finished (see $DIR/runner.err and $DIR/logs)" >&2
fi
if [ "$REPORT" = 1 ]; then
  lc-ledger ${DB:+--db "$DB"} regressions --night "$NIGHT" >&2 || true
  if lc-ledger ${DB:+--db "$DB"} report --night "$NIGHT" -o "$DIR/report.html" 2>>"$DIR/runner.err"; then
    echo "nightly: report $DIR/report.html" >&2
  else
    echo "nightly: the report failed: $(tail -1 "$DIR/runner.err")" >&2
  fi
fi
[ "$failed" -eq 0 ] && [ "$done_n" -eq "$N" ] && exit 0
exit 3
