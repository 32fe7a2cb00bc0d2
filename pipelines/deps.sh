#!/bin/sh
# Install the Debian packages libcompress needs (idempotent).
# As root: apt-get install.  Otherwise: sudo -n if it works, else print the command.
set -u
PKGS="gcc make pkg-config libhdf5-dev hdf5-tools libopenblas-dev liblapacke-dev libgsl-dev
libsqlite3-dev sqlite3 libjansson-dev libxxhash-dev python3 clang libclang-rt-14-dev"
missing=""
for p in $PKGS; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing="$missing $p"
done
[ -z "$missing" ] && exit 0
echo "deps: missing Debian packages:$missing" >&2
if [ "$(id -u)" = 0 ]; then SUDO=""
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"
else
  echo "deps: run as root:  apt-get install -y$missing" >&2
  exit 1
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get install -y -q $missing >&2 || { $SUDO apt-get update -q >&2 && $SUDO apt-get install -y -q $missing >&2; } || {
  echo "deps: apt-get install failed" >&2; exit 1; }
