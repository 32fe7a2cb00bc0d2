#!/bin/sh
# tests/summary.sh LOG [STATUS]: the closing lines of make check, from the
# counts and skip reasons the unit tests, CLI tests and fuzz smoke appended
# to LOG.  STATUS non-zero (a suite that failed outside its counted checks,
# such as a crash or a build error) makes the run fail even with no failed
# check counted.
set -u
log=$1 status=${2:-0}
[ -f "$log" ] || { echo "summary: no test log '$log'"; echo "0 passed, 1 failed, 0 skipped"; exit 1; }
pass=$(awk '$1 == "pass" {n += $2} END {print n + 0}' "$log")
fail=$(awk '$1 == "fail" {n += $2} END {print n + 0}' "$log")
nskip=$(grep -c '^skip ' "$log")
if [ "$status" != 0 ] && [ "$fail" = 0 ]; then
  echo "summary: a suite failed outside its counted checks (see above)"
  fail=1
fi
if [ "$nskip" -gt 0 ]; then
  echo "skipped:"
  sed -n 's/^skip /  /p' "$log"
fi
echo "$pass passed, $fail failed, $nskip skipped"
[ "$fail" = 0 ]
