#!/bin/sh
# Every tool: --help (exit 0, usage on stdout), --version, bad usage (exit 2),
# bad input (exit 1, nothing on stdout, one short message).
. "$(dirname "$0")/lib.sh"

for tool in "$BIN"/lc-*; do
  t=$(basename "$tool")
  expect_code 0 "$t --help" "$tool" --help
  check "$t --help prints usage" grep -q "^usage: $t" "$TMP/out"
  expect_code 0 "$t --version" "$tool" --version
  check "$t --version names the tool" grep -q "^$t [0-9]" "$TMP/out"
  expect_fail_clean 2 "$t rejects an unknown option" "$tool" --no-such-option
done

printf 'this is not a model\n' >"$TMP/junk.txt"
: >"$TMP/empty"
expect_fail_clean 1 "lc-info: junk file" lc-info "$TMP/junk.txt"
expect_fail_clean 1 "lc-info: empty stdin" lc-info - <"$TMP/empty"
expect_fail_clean 1 "lc-info: junk on stdin" lc-info <"$TMP/junk.txt"
expect_fail_clean 1 "lc-info: missing file" lc-info "$TMP/nope.h5"
expect_fail_clean 1 "lc-info: a directory" lc-info "$TMP"
expect_fail_clean 2 "lc-info: two files" lc-info a b
expect_fail_clean 1 "lc-import: missing source" lc-import "$TMP/nope" -o "$TMP/x.h5"
expect_fail_clean 1 "lc-import: junk source" lc-import "$TMP/junk.txt" -o "$TMP/x.h5"
check "lc-import: no output file left behind" test ! -e "$TMP/x.h5"
expect_fail_clean 2 "lc-import: no source" lc-import
expect_fail_clean 2 "lc-import: bad --format" lc-import --format zip "$TMP/junk.txt"
done_testing
