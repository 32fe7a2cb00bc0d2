#!/bin/sh
# make check-deb: the Debian package (pipelines/deb.sh) installed with apt
# into a fresh Debian 12 root (tests/fresh-root.sh), run there by a user
# without privileges, away from any checkout, then purged.
#   tests/deb.sh [OUT]      OUT: where the package is built (build/deb)
# Checks: apt installs it with its dependencies; the issue's pipeline runs
# and its row reaches the user's XDG ledger; a named text set that is not
# there is named with its file; the manual pages, completion, pkg-config
# file and library are usable (a C program builds against them); purge
# leaves none of the package's files behind.
set -eu
cd "$(dirname "$0")/.."
SRC=$PWD
WHO=check-deb
. ./tests/fresh-root.sh
OUT=${1:-build/deb}

t0=$(now)
deb=$(./pipelines/deb.sh "$OUT" | tail -1)
[ -f "$deb" ] || { say "no package was built"; exit 1; }
part "make deb (build + lintian)" "$(($(now) - t0)) s"

fresh_root
cp "$deb" "$ROOT/work/"
pkg=/work/${deb##*/}
fail=0
ok() { say "ok - $*"; }
not_ok() { say "not ok - $*"; fail=1; }
check() { d=$1; shift; if "$@"; then ok "$d"; else not_ok "$d"; fi; }

# step NAME DESC CMD: CMD in the root, its output in NAME.log, timed
step() {
  name=$1 desc=$2; shift 2
  t0=$(now)
  if inroot sh -c "$*" >"$ROOT/work/$name.log" 2>&1; then ok "$desc"; r=0
  else tail -20 "$ROOT/work/$name.log" >&2; not_ok "$desc"; r=1; fi
  part "$name" "$(($(now) - t0)) s"
  return $r
}
step install "apt-get install ${deb##*/} (with its dependencies from the archive)" \
  "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $pkg" || exit 1
inroot dpkg -L libcompress >"$ROOT/work/files"

cp tests/print-config.c "$ROOT/work/prog.c"
# as a user without privileges, in its home, far from any checkout
cat >"$ROOT/work/user.sh" <<'EOF'
set -u
cd "$HOME"
st=0
lc-import --synthetic 1 | lc-quant --method rtn --bits 4 | lc-eval --text /usr/share/libcompress/doc/README.md \
  --chunks 2 --speed-reps 1 >report.txt 2>pipeline.err || st=1
echo "pipeline $st"
lc-import -q --synthetic 1 -o s.h5 && lc-eval --text heldout s.h5 >heldout.out 2>heldout.err
echo "heldout $?"
lc-ledger list -f csv >ledger.csv 2>ledger.err
echo "ledger $?"
cc -o prog /work/prog.c $(pkg-config --cflags --libs libcompress) && ./prog s.h5 >prog.out
echo "prog $?"
EOF
t0=$(now)
inroot sh -c 'useradd -m -s /bin/sh lcuser && exec setpriv --reuid=lcuser --regid=lcuser --init-groups \
  env HOME=/home/lcuser sh /work/user.sh' >"$ROOT/work/user.log" 2>&1 || true
part "the pipeline as a user" "$(($(now) - t0)) s"
H=$ROOT/home/lcuser
st() { sed -n "s/^$1 //p" "$ROOT/work/user.log"; }
check "lc-import --synthetic 1 | lc-quant --method rtn --bits 4 | lc-eval --text FILE runs" test "$(st pipeline)" = 0
check "its report has a perplexity" grep -q "^perplexity: " "$H/report.txt"
check "lc-eval names the ledger it wrote: the user's XDG data home" \
  grep -q "^lc-eval: ledger /home/lcuser/.local/share/libcompress/ledger.db: row 1$" "$H/pipeline.err"
check "the row is in that ledger" \
  test "$(sqlite3 "$H/.local/share/libcompress/ledger.db" "select count(*) from runs where recipe like '%lc-quant%'")" = 1
check "lc-ledger reads it by default" sh -c "test '$(st ledger)' = 0 && test \"\$(wc -l <'$H/ledger.csv')\" = 2"
check "lc-eval --text heldout: exit 1, the missing file named" sh -c \
  "test '$(st heldout)' = 1 && grep -q \"text set 'heldout' is missing: put data/heldout/heldout.txt (763524 bytes, xxh64 a99d3eb4bd892e59) at /usr/share/libcompress/data/heldout/heldout.txt or /home/lcuser/.local/share/libcompress/data/heldout/heldout.txt\" '$H/heldout.err' && test ! -s '$H/heldout.out'"
check "a C program builds against the package through pkg-config and reads the config" \
  sh -c "test '$(st prog)' = 0 && grep -q '^arch=llama dim=128 n_layers=2 n_heads=4 n_kv_heads=2 ffn_dim=256 vocab_size=259$' '$H/prog.out'"
for f in /usr/share/man/man1/lc-eval.1.gz /usr/share/bash-completion/completions/lc-eval \
  /usr/share/libcompress/datasets/manifest.txt /usr/share/libcompress/datasets/profiles.txt \
  /usr/include/libcompress/libcompress.h /usr/lib/x86_64-linux-gnu/pkgconfig/libcompress.pc \
  /usr/share/doc/libcompress/copyright; do
  check "installed $f" test -e "$ROOT$f"
done
[ $fail = 0 ] || { sed 's/^/  user.log: /' "$ROOT/work/user.log" >&2; for f in "$H"/*.err; do sed "s|^|  ${f##*/}: |" "$f" >&2; done; }

step purge "apt-get purge libcompress (and autoremove its dependencies)" \
  "DEBIAN_FRONTEND=noninteractive apt-get purge -y -q libcompress && apt-get autoremove --purge -y -q" || true
left=""
while read -r f; do
  [ -d "$ROOT$f" ] && continue
  [ -e "$ROOT$f" ] || [ -L "$ROOT$f" ] && left="$left $f"
done <"$ROOT/work/files"
check "no file of the package is left ($(wc -l <"$ROOT/work/files") paths listed by dpkg -L)" test -z "$left"
[ -z "$left" ] || say "left behind:$left"
check "its own directories are gone" sh -c "! test -e '$ROOT/usr/share/libcompress' && ! test -e '$ROOT/usr/include/libcompress'"
status=$(inroot dpkg-query -W -f='${Status}' libcompress 2>/dev/null || true)
check "dpkg knows it no more ($status)" sh -c "! echo '$status' | grep -q 'ok installed'"

part "total" "$(($(now) - total0)) s"
say "times:"
printf '%s' "$report" >&2
[ $fail = 0 ] && say "ok: the package installs, runs and purges cleanly on a fresh Debian 12 root" || say "FAILED"
exit $fail
