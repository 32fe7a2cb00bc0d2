#!/bin/sh
# Faults that must lose nothing: a full disk for every writing tool, kill -9
# and SIGTERM during a write, a reader that closes the pipe, a closed
# stdout, truncated streams.  Each: exit 1 (or the signal), a short message,
# nothing on stdout, no partial or temporary file left, never a crash.
# (The ledger's concurrent writers and the writer killed mid-transaction are
# in tests/unit/test_ledger.c.)
. "$(dirname "$0")/lib.sh"
if have_shared && [ -d "$LC_SHARED/models/sqz-s7" ]; then
  MODEL=$LC_SHARED/models/sqz-s7
else
  echo "# no shared models: a synthetic model"
  MODEL="--synthetic 3"
fi
# shellcheck disable=SC2086
lc-import -q $MODEL -o "$TMP/m.h5"
SIZE=$(stat -c %s "$TMP/m.h5")

# no_crash DESC: the last run ended without a signal and without a core
no_crash() {
  if [ "$rc" -ge 128 ] || grep -qiE "segmentation|core dumped|sanitizer|abort" "$TMP/err"; then
    echo "# exit $rc"; not_ok "$1 (crashed)"; return 1
  fi
  return 0
}

# ---- full disk -----------------------------------------------------------
# A tmpfs mounted in a private mount namespace (it vanishes with the
# namespace), smaller than the output: as root, or as a user in a user
# namespace of its own where the kernel allows that.  Without either, the
# checks are skipped and say so.
FULL=$TMP/full
mkdir -p "$FULL"
can_mount=0
for ns in "unshare --mount --propagation private" "unshare --user --map-root-user --mount --propagation private"; do
  # shellcheck disable=SC2086
  if $ns sh -c "mount -t tmpfs -o size=64k tmpfs '$FULL'" 2>/dev/null; then can_mount=1; NS=$ns; break; fi
done

# full_disk KIB DESC CMD...: run CMD with a KIB tmpfs on $FULL; it must exit
# 1 with a message naming the file and leave $FULL empty.
full_disk() {
  kib=$1 desc=$2; shift 2
  $NS sh -c '
    full=$1 kib=$2 tmp=$3; shift 3
    mount -t tmpfs -o size=${kib}k tmpfs "$full" || exit 99
    "$@" >"$tmp/out" 2>"$tmp/err"; echo $? >"$tmp/rc"
    ls -A "$full" >"$tmp/left"' sh "$FULL" "$kib" "$TMP" "$@"
  rc=$(cat "$TMP/rc")
  no_crash "full disk: $desc" || return 0
  if [ "$rc" != 1 ]; then echo "# exit $rc, expected 1"; not_ok "full disk: $desc"
  elif [ -s "$TMP/out" ]; then echo "# stdout not empty"; not_ok "full disk: $desc"
  elif ! grep -q "No space left on device" "$TMP/err"; then echo "# message does not say the disk is full"; not_ok "full disk: $desc"
  elif ! grep -q "$FULL" "$TMP/err"; then echo "# message does not name the file"; not_ok "full disk: $desc"
  elif [ -s "$TMP/left" ]; then echo "# left behind: $(cat "$TMP/left")"; not_ok "full disk: $desc"
  elif [ "$(wc -l <"$TMP/err")" -gt 3 ]; then echo "# more than a short message"; not_ok "full disk: $desc"
  else ok "full disk: $desc"; fi
}
# a tmpfs of half of what CMD writes when there is room (KiB)
half_of() { echo $(( ($(du -sk "$1" | cut -f1) + 1) / 2 )); }

if [ $can_mount = 1 ]; then
  echo "# full disk: a tmpfs in a private mount namespace ($NS)"
  lc-quant -q --method rtn --bits 4 --group 32 "$TMP/m.h5" -o "$TMP/q.h5"
  lc-prune -q --method magnitude --sparsity 0.5 "$TMP/m.h5" -o "$TMP/p.h5"
  lc-export -q --to gguf "$TMP/m.h5" -o "$TMP/m.gguf"
  lc-export -q --to llama2c "$TMP/m.h5" -o "$TMP/m.bin"
  lc-export -q --to safetensors "$TMP/m.h5" -o "$TMP/st"
  # shellcheck disable=SC2086
  full_disk "$(half_of "$TMP/m.h5")" "lc-import" lc-import -q $MODEL -o "$FULL/x.h5"
  full_disk "$(half_of "$TMP/q.h5")" "lc-quant rtn" lc-quant -q --method rtn --bits 4 --group 32 "$TMP/m.h5" -o "$FULL/x.h5"
  full_disk "$(half_of "$TMP/p.h5")" "lc-prune magnitude" lc-prune -q --method magnitude --sparsity 0.5 "$TMP/m.h5" -o "$FULL/x.h5"
  full_disk "$(half_of "$TMP/m.gguf")" "lc-export gguf" lc-export -q --to gguf "$TMP/m.h5" -o "$FULL/x.gguf"
  full_disk "$(half_of "$TMP/m.bin")" "lc-export llama2c" lc-export -q --to llama2c "$TMP/m.h5" -o "$FULL/x.bin"
  full_disk "$(half_of "$TMP/st")" "lc-export safetensors" lc-export -q --to safetensors "$TMP/m.h5" -o "$FULL/st"
  # The ledger: 8 KiB is too little for SQLite's first transaction.  The
  # ledger is a shared store, not an atomic output: what SQLite leaves must
  # be a sound database that holds no run.
  i=0; while [ $i -lt 300 ]; do echo "Once upon a time there was a little dog named $i who liked the park."; i=$((i+1)); done >"$TMP/text"
  $NS sh -c '
    full=$1 tmp=$2
    mount -t tmpfs -o size=8k tmpfs "$full" || exit 99
    lc-eval -q --text "$tmp/text" --ctx 64 --chunks 2 --db "$full/ledger.db" "$tmp/m.h5" >"$tmp/out" 2>"$tmp/err"
    echo $? >"$tmp/rc"
    rm -rf "$tmp/ledger-left"; mkdir "$tmp/ledger-left"; cp -a "$full"/. "$tmp/ledger-left"/' sh "$FULL" "$TMP"
  # read where there is room again
  if [ -e "$TMP/ledger-left/ledger.db" ]; then sqlite3 "$TMP/ledger-left/ledger.db" "PRAGMA integrity_check" >"$TMP/left" 2>&1
  else echo ok >"$TMP/left"; fi
  rc=$(cat "$TMP/rc")
  if no_crash "full disk: lc-eval ledger row"; then
    if [ "$rc" = 1 ] && [ ! -s "$TMP/out" ] && grep -q "$FULL/ledger.db:.*\(full\|I/O\)" "$TMP/err"; then
      ok "full disk: lc-eval ledger row: exit 1, the ledger named, no report on stdout"
      check "full disk: what SQLite left passes integrity_check" [ "$(cat "$TMP/left")" = ok ]
    else echo "# exit $rc"; cat "$TMP/err"; not_ok "full disk: lc-eval ledger row"; fi
  fi
else
  skip "full disk (7 checks): cannot mount a tmpfs here (needs root or user namespaces)"
fi

# ---- killed during a write ---------------------------------------------------
# How long a whole quantize takes, then kill -9 at 10 random moments of it.
ms() { date +%s%3N; }
t0=$(ms); lc-quant -q --method rtn --bits 4 --group 32 "$TMP/m.h5" -o "$TMP/k0.h5"; T=$(( $(ms) - t0 ))
rnd() { od -An -N2 -tu2 /dev/urandom | tr -d ' '; }
K=$TMP/kill
mkdir -p "$K"
moments=""
bad=0
i=0
while [ $i -lt 10 ]; do
  at=$(( $(rnd) % (T + 1) ))
  moments="$moments $at"
  lc-quant -q --method rtn --bits 4 --group 32 "$TMP/m.h5" -o "$K/q.h5" 2>/dev/null &
  pid=$!
  sleep "$(awk "BEGIN{print $at/1000}")"
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
  if [ -e "$K/q.h5" ] && ! lc-info --check "$K/q.h5" >/dev/null 2>"$TMP/err"; then
    echo "# after kill -9 at $at ms the output is not a valid container"; bad=$((bad + 1))
  fi
  i=$((i + 1))
done
echo "# kill -9 at$moments ms of a $T ms quantize"
check "kill -9 at 10 moments: the output is absent or valid every time" [ $bad = 0 ]
lc-quant -q --method rtn --bits 4 --group 32 "$TMP/m.h5" -o "$K/q.h5"
check "the next run leaves no temporary file" [ -z "$(ls -A "$K" | grep -v '^q\.h5$')" ]
expect_code 0 "and its output is valid" lc-info --check "$K/q.h5"
# the next run announces what it removed (not quiet)
lc-quant -q --method rtn --bits 4 --group 32 "$TMP/m.h5" -o "$K/r.h5" 2>/dev/null &
pid=$!; sleep "$(awk "BEGIN{print $T/2000}")"; kill -9 $pid 2>/dev/null; wait $pid 2>/dev/null
if ls "$K" | grep -q '^r\.h5\.tmp-'; then
  run lc-quant --method rtn --bits 4 --group 32 "$TMP/m.h5" -o "$K/r.h5"
  check "a stale temporary file is removed and named" grep -q "removed '.*r\.h5\.tmp-.*', left by process $pid" "$TMP/err"
else
  skip "stale-file message: the kill came after the output was complete"
fi
# another host's temporary file (a shared filesystem) is left alone
touch "$K/s.h5.tmp-otherhost-1"
lc-quant -q --method rtn --bits 4 --group 32 "$TMP/m.h5" -o "$K/s.h5"
check "another host's temporary file is left alone" [ -e "$K/s.h5.tmp-otherhost-1" ]
rm -f "$K/s.h5.tmp-otherhost-1"

# SIGTERM and SIGINT clean up at once, without a next run
for sig in TERM INT; do
  lc-quant -q --method rtn --bits 4 --group 32 "$TMP/m.h5" -o "$K/t.h5" 2>/dev/null &
  pid=$!
  sleep "$(awk "BEGIN{print $T/3000}")"
  kill -$sig $pid 2>/dev/null
  wait $pid 2>/dev/null
  check "SIG$sig: no temporary file left" [ -z "$(ls -A "$K" | grep 't\.h5\.tmp-')" ]
  rm -f "$K/t.h5"
done

# ---- the reader goes away; stdout closed ---------------------------------------
for tool in "lc-import -q $TMP/m.h5" "lc-quant -q --method rtn --bits 4 --group 32 $TMP/m.h5" "lc-export -q --to gguf $TMP/m.h5"; do
  # shellcheck disable=SC2086
  { $tool 2>"$TMP/err"; echo $? >"$TMP/rc"; } | head -c 100 >/dev/null
  rc=$(cat "$TMP/rc")
  name=${tool%% *}
  if no_crash "$name | head -c 100"; then
    if [ "$rc" = 1 ] && [ "$(wc -l <"$TMP/err")" -le 1 ]; then ok "$name | head -c 100: exit 1, one line"
    else echo "# exit $rc"; cat "$TMP/err"; not_ok "$name | head -c 100: exit 1, one line"; fi
  fi
done
run sh -c "lc-quant -q --method rtn --bits 4 --group 32 '$TMP/m.h5' >&-"
check "stdout closed: exit 1" [ "$rc" = 1 ]
check "stdout closed: says so" grep -q "stdout" "$TMP/err"

# ---- truncated streams ----------------------------------------------------------
for n in 0 1 7 8 100 2048 4096 $((SIZE / 3)) $((SIZE / 2)) $((SIZE - 1)); do
  head -c $n "$TMP/m.h5" >"$TMP/cut"
  run sh -c "lc-info - <'$TMP/cut'"
  if ! no_crash "truncated at $n"; then continue; fi
  if [ "$rc" != 1 ] || [ -s "$TMP/out" ]; then echo "# exit $rc"; not_ok "truncated stream at $n bytes: exit 1, nothing on stdout"
  elif [ $n -ge 100 ] && ! grep -q "truncated input: $n bytes came, the container is $SIZE bytes" "$TMP/err"; then
    cat "$TMP/err"; not_ok "truncated stream at $n bytes: says it is truncated and how much came"
  else ok "truncated stream at $n bytes"; fi
done
head -c $((SIZE / 2)) "$TMP/m.h5" >"$TMP/cut.h5"
expect_fail_clean 1 "truncated file" lc-quant -q --method rtn --bits 4 --group 32 "$TMP/cut.h5" -o "$TMP/never.h5"
check "truncated file: named as such" grep -q "truncated file: it holds $((SIZE / 2)) bytes" "$TMP/err"
check "truncated file: no output" [ ! -e "$TMP/never.h5" ]
done_testing
