#!/bin/sh
# Compressors compose: every ordered pair (and two triples) of {magnitude
# 50%, 2:4, RTN 4-bit g32, GPTQ 4-bit g128, AWQ 4-bit g128}, through pipes.
# Each result: the encoding is the composition, the sparsity is exact, bits
# per weight are the stored bytes; each impossible pair exits 1 with a
# message naming the tensor and both encodings, nothing on stdout, no file.
# (That the untouched codes and values stay as they were is checked at the
# tensor level in tests/unit/test_compose.c.)
. "$(dirname "$0")/lib.sh"
if have_shared && [ -d "$LC_SHARED/models/sqz-s7" ]; then
  lc-import -q "$LC_SHARED/models/sqz-s7" -o "$TMP/m.h5"; CAL=calib; NS=4; SL=128; G=128
else
  echo "# no shared models: synthetic model, calibration on a generated text"
  lc-import -q --synthetic 3 -o "$TMP/m.h5"
  i=0; while [ $i -lt 400 ]; do echo "the quick brown fox $i jumps over the lazy dog"; i=$((i+1)); done >"$TMP/cal.txt"
  CAL=$TMP/cal.txt; NS=4; SL=64; G=32 # its rows are 64 long
fi
CALIB="--calib $CAL --nsamples $NS --seqlen $SL"
stage() { # name -> the command of that stage (reads stdin, writes stdout)
  case $1 in
    mag50) echo "lc-prune -q --method magnitude --sparsity 0.5" ;;
    mag60) echo "lc-prune -q --method magnitude --sparsity 0.6" ;;
    nm24) echo "lc-prune -q --method magnitude --nm 2:4" ;;
    rtn4) echo "lc-quant -q --method rtn --bits 4 --group 32" ;;
    gptq4) echo "lc-quant -q --method gptq --bits 4 --group $G $CALIB" ;;
    awq4) echo "lc-quant -q --method awq --bits 4 --group $G $CALIB" ;;
  esac
}
structure() { case $1 in mag50|mag60) echo mask ;; nm24) echo 2:4 ;; *) echo "" ;; esac; }
values() { case $1 in rtn4) echo q4-sym-g32 ;; gptq4|awq4) echo q4-sym-g$G ;; *) echo "" ;; esac; }
sparsity() { case $1 in mag50|nm24) echo 0.5 ;; mag60) echo 0.6 ;; *) echo "" ;; esac; }

# expected STAGES...: the encoding of the linears after the stages, or
# "refused" (a second quantization; an unstructured mask then N:M)
expected() {
  st="" val="" prev=""
  for s in "$@"; do
    if [ -n "$(values "$s")" ]; then
      [ -n "$val" ] && { echo refused; return; }
      val=$(values "$s")
    else
      [ "$prev" = mask ] && [ "$(structure "$s")" = 2:4 ] && { echo refused; return; }
      st=$(structure "$s")
    fi
    [ -n "$(structure "$s")" ] && prev=$(structure "$s")
  done
  [ -z "$val" ] && val=f32
  if [ -n "$st" ]; then echo "$st+$val"; else echo "$val"; fi
}

# verify FILE ENCODING SPARSITY: every decoder linear has ENCODING and (if
# given) exactly SPARSITY, and bpw is the stored bytes everywhere
verify() {
  lc-info --json "$1" >"$TMP/info.json" 2>"$TMP/err" || { echo "# lc-info failed"; return 1; }
  /usr/bin/python3 - "$TMP/info.json" "$2" "$3" <<'EOF'
import json, sys, math
d = json.load(open(sys.argv[1])); enc, sp = sys.argv[2], sys.argv[3]
bad, tb, tw = [], 0, 0
for t in d["tensors"]:
    n = math.prod(t["shape"]); tb += t["bytes"]; tw += n
    if abs(t["bpw"] - round(8 * t["bytes"] / n, 4)) > 1e-9: bad.append("%s: bpw %s vs bytes" % (t["name"], t["bpw"]))
    lin = t["name"].startswith("layers.") and not t["name"].endswith("norm")
    if not lin: continue
    if t["encoding"] != enc: bad.append("%s: %s, want %s" % (t["name"], t["encoding"], enc))
    if sp:
        s = float(sp)
        # exact: round(s * count) positions pruned (2:4: every group of 4 keeps 2)
        if t["sparsity"] is None or round(t["sparsity"] * n) != round(s * n) or abs(t["sparsity"] * n - round(s * n)) > 1e-6:
            bad.append("%s: sparsity %s, want exactly %s" % (t["name"], t["sparsity"], sp))
if abs(d["total"]["bpw"] - round(8 * tb / tw, 4)) > 1e-9: bad.append("total bpw %s vs bytes" % d["total"]["bpw"])
for b in bad[:5]: print("# " + b)
sys.exit(1 if bad else 0)
EOF
}

# the first stages, once each
for a in mag50 nm24 rtn4 gptq4 awq4; do
  # shellcheck disable=SC2046
  $(stage $a) "$TMP/m.h5" >"$TMP/$a.h5" 2>"$TMP/err" || { cat "$TMP/err"; not_ok "stage $a"; }
done
for a in mag50 nm24 rtn4 gptq4 awq4; do
  for b in mag50 nm24 rtn4 gptq4 awq4; do
    want=$(expected $a $b)
    # through a pipe: the first stage's output (written to its stdout
    # above) streams into the second's stdin
    run sh -c "cat '$TMP/$a.h5' | $(stage $b) -o '$TMP/ab.h5'"
    if [ "$want" = refused ]; then
      if [ "$rc" = 1 ] && [ ! -e "$TMP/ab.h5" ] && [ ! -s "$TMP/out" ] && grep -q "tensor '" "$TMP/err"; then
        ok "$a | $b: refused (exit 1, no output)"
      else echo "# exit $rc"; not_ok "$a | $b: refused (exit 1, no output)"; fi
      check "$a | $b: the message names the input encoding" grep -qE "\((mask\+f32|2:4\+f32|q4-sym-g(32|128))\)" "$TMP/err"
      continue
    fi
    if [ "$rc" != 0 ]; then echo "# exit $rc"; not_ok "$a | $b -> $want"; continue; fi
    sp=$(sparsity $b); [ -z "$sp" ] && sp=$(sparsity $a)
    if verify "$TMP/ab.h5" "$want" "$sp"; then ok "$a | $b -> $want"; else not_ok "$a | $b -> $want"; fi
    rm -f "$TMP/ab.h5"
  done
done
# two triples
for t in "nm24 gptq4 mag50" "rtn4 mag50 mag60"; do
  set -- $t
  want=$(expected "$@")
  run sh -c "$(stage $1) '$TMP/m.h5' | $(stage $2) | $(stage $3) -o '$TMP/abc.h5'"
  sp=$(sparsity $3)
  if [ "$rc" = 0 ] && verify "$TMP/abc.h5" "$want" "$sp"; then ok "$1 | $2 | $3 -> $want"; else echo "# exit $rc"; not_ok "$1 | $2 | $3 -> $want"; fi
done
# --requantize: allowed, and said in the lineage
expect_code 0 "rtn4 | rtn 8-bit with --requantize" lc-quant -q --method rtn --bits 8 --group 32 --requantize "$TMP/rtn4.h5" -o "$TMP/rq.h5"
lc-info "$TMP/rq.h5" >"$TMP/out"
check "--requantize: q8 now" grep -q "layers.0.attn_q  *q8-sym-g32" "$TMP/out"
check "--requantize: the lineage says the tensors were dequantized first" grep -q "requantize: 42 already quantized tensors dequantized first" "$TMP/out"
# less sparsity than the input has
expect_fail_clean 1 "mag60 after mag50 is fine, mag50 after mag60 is refused" \
  sh -c "$(stage mag60) '$TMP/m.h5' | $(stage mag50)"
check "... and the message says why" grep -q "already has sparsity 0.6" "$TMP/err"
# quantization groups that an N:M pattern does not fit (a group must hold whole groups of M)
expect_fail_clean 1 "2:4 then 8-bit codes in groups of 2 is refused" lc-quant -q --method rtn --bits 8 --group 2 "$TMP/nm24.h5"
check "... naming both encodings" grep -q "(2:4+f32) cannot take 8-bit codes in groups of 2" "$TMP/err"
# GGUF: a sparse tensor on a sym grid is written dense with the same codes
# (pruned weights as the code of 0): the round trip scores the same
i=0; while [ $i -lt 200 ]; do echo "Once upon a time a little fox named $i ran to the river."; i=$((i+1)); done >"$TMP/t.txt"
lc-quant -q --method rtn --bits 4 --group 32 "$TMP/nm24.h5" -o "$TMP/nq.h5"
expect_code 0 "2:4+q4 -> GGUF" lc-export --to gguf "$TMP/nq.h5" -o "$TMP/nq.gguf"
check "... says the codes were kept" grep -q "written dense as Q4_0 with the same codes" "$TMP/err"
lc-import -q "$TMP/nq.gguf" -o "$TMP/nqg.h5"
lc-eval -q --text "$TMP/t.txt" --ctx 64 --chunks 4 --db "$TMP/l.db" "$TMP/nq.h5" | grep '^perplexity' >"$TMP/p1"
lc-eval -q --text "$TMP/t.txt" --ctx 64 --chunks 4 --db "$TMP/l.db" "$TMP/nqg.h5" | grep '^perplexity' >"$TMP/p2"
check "the GGUF round trip gives the same perplexity" cmp -s "$TMP/p1" "$TMP/p2"
done_testing
