#!/bin/sh
# make check-fresh: the README's two commands, exactly as written there and
# for the first time, on a fresh Debian 12 root (tests/fresh-root.sh): this
# checkout's HEAD is cloned into it and the commands run there as root.
# Then it checks that pipelines/deps.sh succeeds without root once
# everything is present.  Every part's time goes to stderr.
set -eu
cd "$(dirname "$0")/.."
SRC=$PWD
WHO=check-fresh
. ./tests/fresh-root.sh
git -C "$SRC" rev-parse --verify -q HEAD >/dev/null || { say "$SRC is not a git checkout with a commit"; exit 1; }

# The two commands, from the README's quick start: indented lines "make ..."
cmds=$(sed -n '/^## Quick start/,/^## /p' README.md | sed -n 's/^    \(make [a-z-]*\).*/\1/p')
[ "$(echo "$cmds" | wc -l)" = 2 ] || { say "README's quick start does not give two make commands: $cmds"; exit 1; }

fresh_root

t0=$(now)
mkdir -p "$ROOT/work"
git clone -q --no-hardlinks "$SRC" "$ROOT/work/libcompress"
say "cloned $(git -C "$SRC" rev-parse --short HEAD) into $ROOT/work/libcompress"
part "clone" "$(($(now) - t0)) s"
[ -d "$SHARED/models" ] && say "shared test assets: $SHARED (read-only)" || say "no shared test assets: real-model tests will be skipped"

status=0
echo "$cmds" | while read -r cmd; do
  t0=$(now)
  say "running '$cmd' in the fresh root"
  if ! inroot sh -c "cd /work/libcompress && $cmd" >"$ROOT/work/$(echo "$cmd" | tr ' ' -).log" 2>&1; then
    log=$ROOT/work/$(echo "$cmd" | tr ' ' -).log
    grep -E -A12 '^(not ok|FAIL)' "$log" | head -80 >&2 || true
    tail -20 "$log" >&2
    cp "$log" "$CACHE/last-failed-$(echo "$cmd" | tr ' ' -).log" 2>/dev/null || true
    say "'$cmd' FAILED on the fresh root (its log: $CACHE/last-failed-$(echo "$cmd" | tr ' ' -).log)"
    echo "$cmd" >"$ROOT/work/failed"
  fi
  echo "$cmd $(($(now) - t0)) s" >>"$ROOT/work/times"
  [ -f "$ROOT/work/failed" ] && break || true
done
while read -r a b t; do part "$a $b" "$t"; done <"$ROOT/work/times"
if [ -f "$ROOT/work/failed" ]; then
  status=1
else
  tail -1 "$ROOT/work/make-check.log" | sed 's/^/  make check: /' >&2
  # everything is present now: deps.sh must pass without root
  t0=$(now)
  if inroot setpriv --reuid=65534 --regid=65534 --clear-groups /work/libcompress/pipelines/deps.sh check; then
    say "pipelines/deps.sh check passes without root once the packages are there"
  else
    say "pipelines/deps.sh check FAILED without root on a complete machine"
    status=1
  fi
fi
part "total" "$(($(now) - total0)) s"
say "times:"
printf '%s' "$report" >&2
[ $status = 0 ] && say "ok: the README's two commands pass on a fresh Debian 12 root" || say "FAILED"
exit $status
