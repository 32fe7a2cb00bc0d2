# A fresh Debian 12 root, for tests/fresh.sh (make check-fresh) and
# tests/deb.sh (make check-deb).  Sourced, with SRC (the checkout) and
# WHO (the name in messages) set.
#
# The root is what debootstrap makes (minbase with build-essential, git,
# ca-certificates and pkg-config).  It is made once and kept as a tarball in
# LC_FRESH_CACHE (default /var/cache/libcompress-fresh, outside the
# checkout); fresh_root unpacks it anew into ROOT, removed at exit.  inroot
# runs a command there as root, in a mount namespace of its own (nothing
# stays mounted), with the shared test assets (LC_SHARED) bind-mounted
# read-only at /work/shared when they exist.
#
# Needs root (debootstrap, chroot, mounts) and the Debian mirror
# (LC_FRESH_MIRROR, default deb.debian.org).
CACHE=${LC_FRESH_CACHE:-/var/cache/libcompress-fresh}
MIRROR=${LC_FRESH_MIRROR:-http://deb.debian.org/debian}
SHARED=${LC_SHARED:-$SRC/../shared}
INCLUDE=build-essential,git,ca-certificates,pkg-config
BASE=$CACHE/bookworm-minbase-$(echo "$INCLUDE" | tr , -).tar

say() { echo "$WHO: $*" >&2; }
[ "$(id -u)" = 0 ] || { say "needs root (debootstrap, chroot and mounts)"; exit 1; }
command -v debootstrap >/dev/null || { say "debootstrap is missing (make deps, or pipelines/deps.sh fresh)"; exit 1; }

now() { date +%s; }
total0=$(now)
report=""
part() { report="$report$(printf '  %-34s %8s' "$1" "$2")
"; }

# fresh_root: ROOT, a new copy of the cached base root (made the first time)
fresh_root() {
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
  trap 'rm -rf "$ROOT"' EXIT
  trap 'exit 1' INT TERM HUP
  t0=$(now)
  tar -C "$ROOT" -xf "$BASE"
  mkdir -p "$ROOT/work/shared"
  cp /etc/resolv.conf "$ROOT/etc/resolv.conf" 2>/dev/null || true
  part "unpack the root" "$(($(now) - t0)) s"
}

# inroot CMD...: run CMD inside the root, in a private mount namespace
inroot() {
  unshare --mount --propagation private sh -eu -c '
    root=$1; shared=$2; shift 2
    # the root a mount point of its own, so that inside it "/" can be made
    # private again (the fault tests mount a tmpfs in a namespace)
    mount --bind "$root" "$root"
    mount -t proc proc "$root/proc"
    # a machine has /sys, and systemd mounts the cgroup file system in it:
    # slurmd (the Slurm test) reads the CPU topology and needs the cgroups
    mount --rbind /sys "$root/sys"
    mount --rbind /dev "$root/dev"
    mount -t tmpfs -o size=4g tmpfs "$root/tmp"
    [ -d "$shared/models" ] && mount --bind -o ro "$shared" "$root/work/shared"
    exec chroot "$root" /usr/bin/env -i HOME=/root LANG=C.UTF-8 TERM=dumb \
      PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin "$@"' sh "$ROOT" "$SHARED" "$@"
}
