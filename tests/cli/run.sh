#!/bin/sh
# Run CLI test scripts; fail if any fails.
fail=0
for t in "$@"; do
  echo "== $t"
  sh "$t" || { echo "FAIL: $t"; fail=1; }
done
exit $fail
