#!/bin/sh
# Install the Debian packages a make target needs (idempotent).
#   pipelines/deps.sh [SET...]      SET: build (default), demo, check, fuzz, asan, tsan, bench,
#                                   grid (pipelines/*-grid.sh), nightly (pipelines/nightly.sh),
#                                   fresh, deb (make deb)
# Nothing is installed when every package is present, so it works without
# root then.  Otherwise: as root, apt-get install; else sudo -n if that
# works; else it prints the command and exits 1.
set -u
# the library and the tools
BUILD="gcc make pkg-config libhdf5-dev libopenblas-dev liblapacke-dev libgsl-dev libsqlite3-dev
libjansson-dev libxxhash-dev"
# the sanitizer builds and the fuzz targets (libFuzzer is clang's)
CLANG="clang libclang-rt-14-dev"
# what the tests call: h5dump, sqlite3, python3 (json, for reading reports), h5py
# (an independent reader of the container, tests/cli/t0520-lowrank.sh)
TESTS="hdf5-tools sqlite3 python3 python3-h5py"
# what the grid pipelines call: /usr/bin/time (time and peak memory)
GRIDS="time"
# the nightly runner's report: gnuplot draws its plots (SVG); flock and
# timeout are in util-linux and coreutils
NIGHT="gnuplot-nox"
# the nightly tests: the report in a real browser (Chromium, headless; PIL
# reads its screenshot) and a real Slurm on localhost (t0910-slurm.sh)
NIGHT_TESTS="gnuplot-nox chromium python3-pil slurm-wlm munge procps"
# make deb: dpkg-buildpackage with debhelper, and lintian
DEB="debhelper dpkg-dev lintian"
PKGS=""
[ $# -eq 0 ] && set -- build
for set in "$@"; do
  case $set in
    build|bench) PKGS="$PKGS $BUILD" ;;
    demo) PKGS="$PKGS $BUILD $NIGHT" ;;
    grid) PKGS="$PKGS $BUILD $GRIDS" ;;
    nightly) PKGS="$PKGS $BUILD $NIGHT" ;;
    check) PKGS="$PKGS $BUILD $TESTS $NIGHT_TESTS $CLANG" ;;
    fuzz|asan|tsan) PKGS="$PKGS $BUILD $CLANG" ;;
    fresh) PKGS="$PKGS debootstrap git" ;;
    deb) PKGS="$PKGS $BUILD $DEB git" ;;
    *) echo "deps: unknown set '$set' (build, demo, check, fuzz, asan, tsan, bench, grid, nightly, fresh, deb)" >&2; exit 2 ;;
  esac
done
missing=""
for p in $PKGS; do
  case " $missing " in *" $p "*) continue ;; esac
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
# a fresh machine has no package lists yet: update when the install cannot find them
$SUDO apt-get install -y -q --no-install-recommends $missing >&2 ||
  { $SUDO apt-get update -q >&2 && $SUDO apt-get install -y -q --no-install-recommends $missing >&2; } || {
  echo "deps: apt-get install failed" >&2; exit 1; }
