#!/bin/sh
# make deb: the Debian package, libcompress_VERSION_ARCH.deb, in OUT
# (default build/deb).  dpkg-buildpackage runs in a copy of the tracked
# tree (it cleans the tree it builds in, and must not clean this checkout),
# then lintian checks the package: any error fails.
#   pipelines/deb.sh [OUT]
set -eu
cd "$(dirname "$0")/.."
OUT=${1:-build/deb}
say() { echo "deb: $*" >&2; }
for c in dpkg-buildpackage dh lintian; do
  command -v $c >/dev/null || { say "$c is missing (pipelines/deps.sh deb)"; exit 1; }
done
version=$(sed -n 's/^#define LC_VERSION "\(.*\)"/\1/p' libcompress/core/lc.h)
deb_version=$(dpkg-parsechangelog -S Version)
[ "$version" = "$deb_version" ] ||
  { say "debian/changelog is at $deb_version, the code (LC_VERSION) at $version: add a changelog entry"; exit 1; }
arch=$(dpkg-architecture -qDEB_HOST_ARCH)
mkdir -p "$OUT"
OUT=$(cd "$OUT" && pwd)
src=$OUT/libcompress-$version
rm -rf "$src" "$OUT"/libcompress_*
mkdir -p "$src"
# the tracked files, and new ones not ignored, as they are in the work tree
if git rev-parse --git-dir >/dev/null 2>&1; then
  git ls-files -z --cached --others --exclude-standard | xargs -0 sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
    tar --null -T - -cf - | tar -C "$src" -xf -
else
  tar --exclude=./build --exclude=./bin --exclude=./build-asan --exclude=./build-tsan --exclude=./fuzz-out \
    --exclude='./results/*.db*' -cf - . | tar -C "$src" -xf -
fi
say "building libcompress $version for $arch in $src"
t0=$(date +%s)
if ! (cd "$src" && dpkg-buildpackage -b -us -uc -j"$(nproc)") >"$OUT/build.log" 2>&1; then
  tail -30 "$OUT/build.log" >&2
  say "dpkg-buildpackage failed (log: $OUT/build.log)"
  exit 1
fi
deb=$OUT/libcompress_${version}_$arch.deb
[ -f "$deb" ] || { say "dpkg-buildpackage made no $deb"; exit 1; }
say "built $deb ($(du -k "$deb" | cut -f1) KiB, $(($(date +%s) - t0)) s)"
lintian --no-tag-display-limit "$OUT"/libcompress_"${version}"_"$arch".changes >"$OUT/lintian.log" 2>&1 || true
errors=$(grep -c '^E: ' "$OUT/lintian.log" || true)
warnings=$(grep -c '^W: ' "$OUT/lintian.log" || true)
say "lintian: $errors errors, $warnings warnings (log: $OUT/lintian.log)"
grep '^[EW]: ' "$OUT/lintian.log" | sed 's/^/  /' >&2 || true
[ "$errors" = 0 ] || { say "lintian reports errors"; exit 1; }
rm -rf "$src"
echo "$deb"
