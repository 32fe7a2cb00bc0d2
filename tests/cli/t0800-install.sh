#!/bin/sh
# make install / uninstall: the tools work outside the checkout (text sets,
# the ledger's home), the library builds a C program through pkg-config
# only, bash completion, and uninstall removes exactly what install put.
. "$(dirname "$0")/lib.sh"
PFX=$TMP/pfx
unset LC_LEDGER_DB LC_DATASETS LC_PROFILES XDG_DATA_HOME
SHARED_DIR=$LC_SHARED
unset LC_SHARED
export HOME="$TMP/home"
mkdir -p "$HOME" "$TMP/elsewhere"
mkdir -p "$PFX/share/man/man1"
echo "not ours" >"$PFX/share/man/man1/other.1"

expect_code 0 "make install PREFIX=$PFX" make -C "$TOP" --no-print-directory -s install PREFIX="$PFX"
n_inst=$(sed -n 's/^installed under .* (\([0-9]*\) files)$/\1/p' "$TMP/out")
check "install says how many files it put there" test -n "$n_inst"
check "that many files are there (and ours besides)" \
  test "$(find "$PFX" -type f -o -type l | wc -l)" = "$((n_inst + 1))"
for f in bin/lc-eval share/man/man1/lc-eval.1 share/libcompress/datasets/manifest.txt \
  share/libcompress/datasets/profiles.txt share/libcompress/doc/docs/FORMAT.md \
  include/libcompress/libcompress.h include/libcompress/io/container.h lib/libcompress.a \
  lib/libcompress.so.0 lib/pkgconfig/libcompress.pc share/bash-completion/completions/lc-quant; do
  check "installed $f" test -e "$PFX/$f"
done
check "the shared library has its soname" sh -c "objdump -p '$PFX/lib/libcompress.so' | grep -q 'SONAME *libcompress.so.0$'"

# ---- a C program against the installed copy, through pkg-config only
export PKG_CONFIG_PATH="$PFX/lib/pkgconfig"
cp "$TOP/tests/print-config.c" "$TMP/prog.c"
cd "$TMP/elsewhere"
lc-import -q --synthetic 3 -o "$TMP/s.h5"
expect_code 0 "pkg-config knows libcompress" pkg-config --cflags --libs libcompress
check "its version is the tools'" test "$(pkg-config --modversion libcompress)" = "$(lc-info --version | awk '{print $NF}')"
expect_code 0 "a C program builds against the shared library (pkg-config only)" \
  sh -c "cc -Wall -Werror -o '$TMP/prog' '$TMP/prog.c' \$(pkg-config --cflags --libs libcompress) -Wl,-rpath,\$(pkg-config --variable=libdir libcompress)"
check "it links the installed libcompress.so.0" sh -c "ldd '$TMP/prog' | grep -q '$PFX/lib/libcompress.so.0'"
expect_code 0 "it runs" "$TMP/prog" "$TMP/s.h5"
cp "$TMP/out" "$TMP/prog.out"
lc-info -j "$TMP/s.h5" >"$TMP/info.json"
cfg_want=$(/usr/bin/python3 -c 'import json,sys; c=json.load(open(sys.argv[1]))["config"]
print(" ".join("%s=%s" % (k, c[k]) for k in "arch dim n_layers n_heads n_kv_heads ffn_dim vocab_size".split()))' "$TMP/info.json")
check "it prints the config lc-info reads" test "$(cat "$TMP/prog.out")" = "$cfg_want"
expect_code 1 "it fails cleanly on a file that is not a container" "$TMP/prog" "$TMP/prog.c"
expect_code 0 "and builds statically against libcompress.a (Libs.private is complete)" \
  sh -c "cc -o '$TMP/prog-static' '$TMP/prog.c' \$(pkg-config --cflags libcompress) \$(pkg-config --variable=libdir libcompress)/libcompress.a \$(pkg-config --static --libs-only-L --libs-only-other libcompress) \$(pkg-config --static --libs-only-l libcompress | sed 's/-lcompress//')"
check "the static one needs no libcompress.so" sh -c "! ldd '$TMP/prog-static' | grep -q libcompress"
run "$TMP/prog-static" "$TMP/s.h5"
check "and prints the same" test "$(cat "$TMP/out")" = "$cfg_want"

# ---- the installed tools, outside the checkout: text sets
I=$PFX/bin
run "$I/lc-eval" --text heldout --chunks 1 "$TMP/s.h5"
check "installed lc-eval finds the installed manifest, and names the missing file" \
  grep -q "text set 'heldout' is missing: put data/heldout/heldout.txt (763524 bytes, xxh64 a99d3eb4bd892e59) at $PFX/share/libcompress/data/heldout/heldout.txt or $HOME/.local/share/libcompress/data/heldout/heldout.txt" "$TMP/err"
check "exit 1, nothing on stdout" sh -c "[ $rc = 1 ] && [ ! -s '$TMP/out' ]"
check "and no ledger was made" test ! -e "$HOME/.local/share/libcompress/ledger.db"
if [ -f "$SHARED_DIR/data/heldout/heldout.txt" ]; then
  mkdir -p "$HOME/.local/share/libcompress/data/heldout"
  cp "$SHARED_DIR/data/heldout/heldout.txt" "$HOME/.local/share/libcompress/data/heldout/"
  expect_code 0 "with the file in the data home, installed lc-eval --text heldout runs" \
    "$I/lc-eval" --text heldout --chunks 2 --speed-reps 1 "$TMP/s.h5"
  check "it read heldout" grep -q "^text: *heldout (digest a99d3eb4bd892e59" "$TMP/out"
  check "its row went to the XDG ledger, which it names on stderr" \
    grep -q "lc-eval: ledger $HOME/.local/share/libcompress/ledger.db: row 1" "$TMP/err"
  check "the XDG ledger holds the row" test "$(sqlite3 "$HOME/.local/share/libcompress/ledger.db" 'select count(*) from runs')" = 1
  echo "corrupt" >"$HOME/.local/share/libcompress/data/heldout/heldout.txt"
  expect_fail_clean 1 "a wrong file there is refused with the recorded size" "$I/lc-eval" --text heldout "$TMP/s.h5"
  check "the message names the file" grep -q "heldout.txt): 8 bytes, the manifest records 763524 bytes" "$TMP/err"
  rm -rf "$HOME/.local/share/libcompress/data"
else
  skip "installed lc-eval --text heldout with the text in the data home: no ../shared"
fi

# ---- the ledger's home: XDG outside a checkout, results/ inside one
printf 'hello world, a small text\n%.0s' $(seq 200) >"$TMP/t.txt"
expect_code 0 "outside a checkout, lc-eval writes the XDG data home's ledger" \
  "$I/lc-eval" --text "$TMP/t.txt" --chunks 1 --speed-reps 1 "$TMP/s.h5"
check "under ~/.local/share/libcompress" test -s "$HOME/.local/share/libcompress/ledger.db"
check "and says so on stderr" grep -q "lc-eval: ledger $HOME/.local/share/libcompress/ledger.db: row" "$TMP/err"
check "nothing in ./results" test ! -e "$TMP/elsewhere/results"
XDG_DATA_HOME=$TMP/xdg expect_code 0 "XDG_DATA_HOME moves it" "$I/lc-eval" --text "$TMP/t.txt" --chunks 1 --speed-reps 1 "$TMP/s.h5"
check "to \$XDG_DATA_HOME/libcompress/ledger.db" test -s "$TMP/xdg/libcompress/ledger.db"
LC_LEDGER_DB=$TMP/env.db expect_code 0 "LC_LEDGER_DB overrides it" "$I/lc-eval" --text "$TMP/t.txt" --chunks 1 --speed-reps 1 "$TMP/s.h5"
check "LC_LEDGER_DB used" sh -c "test -s '$TMP/env.db' && grep -q 'ledger $TMP/env.db: row 1' '$TMP/err'"
LC_LEDGER_DB=$TMP/env.db expect_code 0 "--db overrides both" "$I/lc-eval" --db "$TMP/opt.db" --text "$TMP/t.txt" --chunks 1 --speed-reps 1 "$TMP/s.h5"
check "--db used" test -s "$TMP/opt.db"
mkdir -p "$TMP/co/libcompress/core" "$TMP/co/datasets" "$TMP/co/sub/dir"
touch "$TMP/co/Makefile" "$TMP/co/libcompress/core/lc.h"
cp "$TOP/datasets/manifest.txt" "$TMP/co/datasets/"
cd "$TMP/co/sub/dir"
expect_code 0 "inside a checkout (a directory below its root)" "$I/lc-eval" --text "$TMP/t.txt" --chunks 1 --speed-reps 1 "$TMP/s.h5"
check "the ledger is the checkout's results/ledger.db" test -s "$TMP/co/results/ledger.db"
check "not one in the subdirectory" test ! -e "$TMP/co/sub/dir/results"
env -u HOME XDG_DATA_HOME=relative "$I/lc-eval" --text "$TMP/t.txt" --chunks 1 --speed-reps 1 "$TMP/s.h5" >/dev/null 2>"$TMP/err"
check "in a checkout HOME is not needed" test $? = 0
cd "$TMP/elsewhere"
expect_code 0 "lc-ledger reads the XDG ledger by default" "$I/lc-ledger" list -f csv
check "with its runs" test "$(wc -l <"$TMP/out")" -ge 2

# ---- bash completion
if command -v bash >/dev/null 2>&1; then
  C=$PFX/share/bash-completion/completions/lc-quant
  comp() { # WORDS... (the last one being completed)
    PATH="$I:$PATH" bash -c '. "$1"; shift; COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); _lc_complete; echo "${COMPREPLY[*]}"' sh "$C" "$@"
  }
  check "lc-quant --method: rtn gptq awq" test "$(comp lc-quant --method '')" = "rtn gptq awq"
  check "lc-prune -m s: sparsegpt" test "$(comp lc-prune -m s)" = "sparsegpt"
  check "lc-export --to: the formats" test "$(comp lc-export --to '')" = "gguf safetensors llama2c"
  check "lc-eval --bas: its options from --help" test "$(comp lc-eval --bas)" = "--base --base-cache"
  check "lc-eval --profile: the profile names" sh -c "echo '$(comp lc-eval --profile '')' | grep -q 'laptop-2c' && echo '$(comp lc-eval --profile '')' | grep -q edge-1c"
  check "lc-eval --text h: the manifest's set" test "$(comp lc-eval --text h)" = "heldout"
  check "lc-ledger: its commands" test "$(comp lc-ledger '')" = "list show compare pareto profiles regressions report merge add-failure"
  check "every installed tool has the completion" sh -c "for t in $I/lc-*; do test -e $PFX/share/bash-completion/completions/\${t##*/} || exit 1; done"
  # the fixed lists agree with the tools' own --help
  for pair in "lc-quant --method" "lc-prune --method" "lc-prune --scope" "lc-export --to" "lc-export --type" \
    "lc-import --format" "lc-ledger --format" "lc-eval --score" "lc-eval --isa" "lc-lowrank --method"; do
    set -- $pair
    vals=$(bash -c '. "$1"; _lc_values "$2" "$3"' sh "$C" "$1" "$2")
    "$I/$1" --help >"$TMP/help" 2>&1
    miss=""
    for v in $vals; do grep -q -- "$v" "$TMP/help" || miss="$miss $v"; done
    check "completion of $pair ($vals) matches its --help" test -z "$miss"
  done
else
  skip "bash completion: no bash"
fi

# ---- uninstall: exactly what install put there
mkdir -p "$PFX/share/libcompress/local"
echo mine >"$PFX/share/libcompress/local/notes"
expect_code 0 "make uninstall" make -C "$TOP" --no-print-directory -s uninstall PREFIX="$PFX"
check "only the files libcompress did not install remain" \
  test "$(cd "$PFX" && find . -type f -o -type l | sort | tr '\n' ' ')" = "./share/libcompress/local/notes ./share/man/man1/other.1 "
check "the directory holding them is kept, and uninstall says so" grep -q "kept $PFX/share/libcompress" "$TMP/out"
check "libcompress's own directories are gone" sh -c "! test -e '$PFX/include/libcompress' && ! test -e '$PFX/share/libcompress/datasets'"
done_testing
