# Shell test library for CLI tests (sourced by tests/cli/tNNNN-*.sh).
# In the spirit of git's test-lib: each check runs the command under test
# directly (never in a pipe, which would hide its exit status).
set -u
TOP=$(cd "$(dirname "$0")/../.." && pwd)
BIN=$TOP/bin
PATH=$BIN:$PATH
: "${LC_SHARED:=$TOP/../shared}"
TMP=$(mktemp -d "${TMPDIR:-/tmp}/lc-cli.XXXXXX")
trap '[ -n "${KEEP_TMP:-}" ] || rm -rf "$TMP"' EXIT
export LC_LEDGER_DB="$TMP/ledger.db"
n_fail=0
n_ok=0
n_skip=0
T_NAME=$(basename "$0" .sh)

ok() { n_ok=$((n_ok + 1)); echo "ok - $*"; }
not_ok() { n_fail=$((n_fail + 1)); echo "not ok - $*"; sed 's/^/#   /' "$TMP/err" 2>/dev/null | head -20; }

have_shared() { [ -d "$LC_SHARED/models" ]; }

# skip REASON: a group of checks did not run (counted; the reason is listed
# at the end of make check)
skip() {
  n_skip=$((n_skip + 1)); echo "skip - $*"
  [ -n "${LC_TEST_LOG:-}" ] && echo "skip $T_NAME: $*" >>"$LC_TEST_LOG"
  return 0
}

# need CMD WHAT: true when CMD is on PATH, else skip WHAT (and false)
need() {
  command -v "$1" >/dev/null 2>&1 && return 0
  skip "$2: no $1"; return 1
}

# run CMD...: stdout -> $TMP/out, stderr -> $TMP/err, status -> $rc
run() { "$@" >"$TMP/out" 2>"$TMP/err"; rc=$?; }

# expect_code CODE DESC CMD...: exit status must be CODE
expect_code() {
  want=$1 desc=$2; shift 2
  run "$@"
  if [ "$rc" = "$want" ]; then ok "$desc"; else echo "# exit $rc, expected $want: $*"; not_ok "$desc"; fi
}

# expect_fail_clean CODE DESC CMD...: exit CODE, nothing on stdout, a message on stderr
expect_fail_clean() {
  want=$1 desc=$2; shift 2
  run "$@"
  if [ "$rc" != "$want" ]; then echo "# exit $rc, expected $want: $*"; not_ok "$desc"
  elif [ -s "$TMP/out" ]; then echo "# stdout not empty: $*"; not_ok "$desc"
  elif [ ! -s "$TMP/err" ]; then echo "# no message on stderr: $*"; not_ok "$desc"
  elif [ "$(wc -l <"$TMP/err")" -gt 3 ]; then echo "# more than a short message on stderr"; not_ok "$desc"
  else ok "$desc"; fi
}

# json_get FILE KEY: the value of a top-level key of a JSON file, canonical
# (sorted keys, one line), for comparing parts of two documents
json_get() {
  /usr/bin/python3 -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))[sys.argv[2]], sort_keys=True))' "$1" "$2"
}

# check DESC CMD...: CMD (a test expression or function) must succeed
check() {
  desc=$1; shift
  if "$@"; then ok "$desc"; else echo "# failed: $*"; not_ok "$desc"; fi
}

# night_plan FILE [RECIPE-LINE...]: the small plan the nightly tests run (a
# synthetic model, two profiles, shared prefixes, a failing recipe), with
# more recipe lines appended
night_plan() {
  f=$1; shift
  cat "$TOP/README.md" "$TOP"/docs/*.md >"$TMP/night-text.txt"
  {
    echo "model syn --synthetic 1"
    echo "profiles edge-1c laptop-2c"
    echo "eval --text $TMP/night-text.txt --ctx 64 --chunks 4 --speed-reps 3"
    echo "jobs 2"
    echo "recipe rtn4 lc-quant --method rtn --bits 4 --group 32"
    echo "recipe mag50 lc-prune --method magnitude --sparsity 0.5"
    echo "recipe mag50-q4 lc-prune --method magnitude --sparsity 0.5 | lc-quant --method rtn --bits 4 --group 32"
    echo "recipe broken lc-quant --method rtn --bits 99"
    for r in "$@"; do echo "$r"; done
  } >"$f"
}

done_testing() {
  echo "# $n_ok passed, $n_fail failed, $n_skip skipped"
  [ -n "${LC_TEST_LOG:-}" ] && printf 'pass %d\nfail %d\n' "$n_ok" "$n_fail" >>"$LC_TEST_LOG"
  [ "$n_fail" = 0 ]
}
