#!/bin/sh
# make check-fresh: the README's two commands, exactly as written there and
# for the first time, on a fresh Debian 12 root.
#
# The root is what debootstrap makes (minbase with build-essential, git,
# ca-certificates and pkg-config).  It is made once and kept as a tarball in
# LC_FRESH_CACHE (default /var/cache/libcompress-fresh, outside the
# checkout); every run unpacks it anew, clones this checkout's HEAD into
# it, bind-mounts the shared test assets read-only beside the clone when
# they exist (LC_SHARED), and runs the commands there as root, in a mount
# namespace of its own (nothing stays mounted).  Then it checks that
# pipelines/deps.sh succeeds without root once everything is present.
# Every part's time goes to stderr.
#
# Needs root (debootstrap, chroot, mounts) and the Debian mirror
# (LC_FRESH_MIRROR, default deb.debian.org).
set -eu
cd "$(dirname "$0")/.."
SRC=$PWD
CACHE=${LC_FRESH_CACHE:-/var/cache/libcompress-fresh}
MIRROR=${LC_FRESH_MIRROR:-http://deb.debian.org/debian}
SHARED=${LC_SHARED:-$SRC/../shared}
INCLUDE=build-essential,git,ca-certificates,pkg-config
BASE=$CACHE/bookworm-minbase-$(echo "$INCLUDE" | tr , -).tar

say() { echo "check-fresh: $*" >&2; }
[ "$(id -u)" = 0 ] || { say "needs root (debootstrap, chroot and mounts)"; exit 1; }
command -v debootstrap >/dev/null || { say "debootstrap is missing (make deps, or pipelines/deps.sh fresh)"; exit 1; }
git -C "$SRC" rev-parse --verify -q HEAD >/dev/null || { say "$SRC is not a git checkout with a commit"; exit 1; }

# The two commands, from the README's quick start: indented lines "make ..."
cmds=$(sed -n '/^## Quick start/,/^## /p' README.md | sed -n 's/^    \(make [a-z-]*\).*/\1/p')
[ "$(echo "$cmds" | wc -l)" = 2 ] || { say "README's quick start does not give two make commands: $cmds"; exit 1; }

now() { date +%s; }
total0=$(now)
report=""
part() { report="$report$(printf '  %-28s %8s' "$1" "$2")
"; }

mkdir -p "$CACHE"
t0=$(now)
if [ ! -f "$BASE" ]; then
  say "making the base root (debootstrap $MIRROR, once; cached in $BASE)"
  b=$CACHE/build.$$
  rm -rf "$b"
  if ! debootstrap --variant=minbase --include="$INCLUDE" bookworm "$b" "$MIRROR" >"$CACHE/debootstrap.log" 2>&1; then
    tail -20 "$CACHE/debootstrap.log" >&2
    umount "$b/proc" 2>/dev/null || true
    rm -rf "$b"
    say "debootstrap failed (log: $CACHE/debootstrap.log)"
    exit 1
  fi
  umount "$b/proc" "$b/sys" 2>/dev/null || true
  tar -C "$b" --exclude=./proc/* --exclude=./sys/* --exclude=./dev/* -cf "$BASE.tmp" . && mv "$BASE.tmp" "$BASE"
  rm -rf "$b"
  part "debootstrap (cached after)" "$(($(now) - t0)) s"
else
  part "debootstrap" "cached"
fi

ROOT=$(mktemp -d /var/tmp/lc-fresh.XXXXXX)
cleanup() { rm -rf "$ROOT"; }
trap cleanup EXIT
trap 'exit 1' INT TERM HUP
t0=$(now)
tar -C "$ROOT" -xf "$BASE"
part "unpack the root" "$(($(now) - t0)) s"

t0=$(now)
mkdir -p "$ROOT/work"
git clone -q --no-hardlinks "$SRC" "$ROOT/work/libcompress"
say "cloned $(git -C "$SRC" rev-parse --short HEAD) into $ROOT/work/libcompress"
part "clone" "$(($(now) - t0)) s"
mkdir -p "$ROOT/work/shared"
cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true

# Run "$@" inside the root, in a private mount namespace.
inroot() {
  unshare --mount --propagation private sh -eu -c '
    root=$1; shared=$2; shift 2
    # the root a mount point of its own, so that inside it "/" can be made
    # private again (the fault tests mount a tmpfs in a namespace)
    mount --bind "$root" "$root"
    mount -t proc proc "$root/proc"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs -o size=4g tmpfs "$root/tmp"
    [ -d "$shared/models" ] && mount --bind -o ro "$shared" "$root/work/shared"
    exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"' sh "$ROOT" "$SHARED" "$@"
}
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
