#!/bin/sh
# lc-gen: llama2.c's greedy output reproduced byte for byte; seeded sampling
# repeatable; usage errors exit 2; bad input exits 1 with nothing on stdout.
. "$(dirname "$0")/lib.sh"

expect_fail_clean 2 "unknown option" lc-gen --no-such-option
expect_fail_clean 2 "bad --temp" lc-gen --temp hot --model x.h5
expect_fail_clean 2 "negative --tokens" lc-gen -n -3 --model x.h5
expect_fail_clean 2 "--top-p out of range" lc-gen --top-p 1.5 --model x.h5
expect_fail_clean 2 "bad --isa" lc-gen --isa sse9 --model x.h5
expect_fail_clean 2 "two models" lc-gen --model a.h5 b.h5
expect_fail_clean 1 "missing model" lc-gen --model "$TMP/nope.h5" -n 5
printf 'not a container\n' >"$TMP/junk"
expect_fail_clean 1 "junk model" lc-gen --model "$TMP/junk" -n 5
expect_fail_clean 1 "junk on stdin" lc-gen -n 5 <"$TMP/junk"

M=$LC_SHARED/models/stories260K
if [ ! -f "$M/stories260K.bin" ]; then skip "no $M"; done_testing; exit; fi
lc-import -q "$M/stories260K.bin" -o "$TMP/s.h5" || { echo "# cannot import $M"; exit 1; }

expect_code 0 "greedy 200 tokens from BOS" lc-gen --model "$TMP/s.h5" --temp 0 -n 200 --prompt ""
check "equals llama2.c's output byte for byte" cmp -s "$TMP/out" "$M/expected_greedy_t0_n200.txt"
check "speeds on stderr" grep -q "tok/s" "$TMP/err"
expect_code 0 "greedy at 1 thread, AVX2" lc-gen --model "$TMP/s.h5" --temp 0 -n 200 --threads 1 --isa avx2
check "same text at 1 thread, AVX2" cmp -s "$TMP/out" "$M/expected_greedy_t0_n200.txt"
expect_code 0 "greedy from stdin, scalar" lc-gen --temp 0 -n 200 --isa scalar - <"$TMP/s.h5"
check "same text from stdin, scalar" cmp -s "$TMP/out" "$M/expected_greedy_t0_n200.txt"

expect_code 0 "sampled, seed 5" lc-gen --model "$TMP/s.h5" --prompt "Once upon a time" --temp 1 --top-p 0.9 --seed 5 -n 80
cp "$TMP/out" "$TMP/a.txt"
check "prompt echoed first" grep -q "^Once upon a time" "$TMP/a.txt"
expect_code 0 "sampled again, seed 5" lc-gen --model "$TMP/s.h5" --prompt "Once upon a time" --temp 1 --top-p 0.9 --seed 5 -n 80
check "same seed, same text" cmp -s "$TMP/out" "$TMP/a.txt"
expect_code 0 "sampled, seed 6" lc-gen --model "$TMP/s.h5" --prompt "Once upon a time" --temp 1 --top-p 0.9 --seed 6 -n 80
check "another seed, another text" test -n "$(cmp "$TMP/out" "$TMP/a.txt" 2>&1)"
expect_code 0 "-n 0 prints the prompt only" lc-gen --model "$TMP/s.h5" --prompt "Once upon a time" -n 0
check "prompt only" test "$(cat "$TMP/out")" = "Once upon a time"
done_testing
