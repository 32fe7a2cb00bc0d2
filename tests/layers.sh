#!/bin/sh
# make layers: libcompress's include graph must follow its layers.
#   core < kernels < io < model < convert < compress < measure
# A file may include headers of its own layer or of a lower one, always as
# "layer/name.h"; nothing in libcompress includes cmd/.  Cycles between the
# files of one layer fail too (tsort).
set -u
cd "$(dirname "$0")/.."
LAYERS="core kernels io model convert compress measure"
rank() { i=0; for l in $LAYERS; do [ "$l" = "$1" ] && { echo $i; return; }; i=$((i + 1)); done; echo -1; }
bad=0
edges=$(mktemp); trap 'rm -f "$edges"' EXIT
for f in libcompress/*/*.[ch]; do
  layer=$(basename "$(dirname "$f")")
  r=$(rank "$layer")
  if [ "$r" -lt 0 ]; then echo "layers: $f: '$layer' is not a layer ($LAYERS)"; bad=1; continue; fi
  for inc in $(sed -n 's/^[[:space:]]*#[[:space:]]*include[[:space:]]*"\([^"]*\)".*/\1/p' "$f"); do
    case "$inc" in
    */*) il=${inc%%/*} ;;
    *) echo "layers: $f includes \"$inc\" without its layer"; bad=1; continue ;;
    esac
    ir=$(rank "$il")
    if [ "$ir" -lt 0 ]; then echo "layers: $f includes \"$inc\": '$il' is not a layer"; bad=1
    elif [ "$ir" -gt "$r" ]; then echo "layers: $f ($layer) includes \"$inc\" from the higher layer $il"; bad=1
    fi
    # file-level edge for the cycle check: a.c/a.h -> b (by stem)
    # a module's private header (NAME_int.h) belongs to NAME
    from=${f%.*}; from=${from%_int}; to=libcompress/${inc%.h}; to=${to%_int}
    [ "$from" != "$to" ] && echo "$from $to" >>"$edges"
  done
done
if ! tsort "$edges" >/dev/null 2>"$edges.err"; then
  echo "layers: include cycle:"; sed 's/^/  /' "$edges.err"; bad=1
fi
rm -f "$edges.err"
[ "$bad" = 0 ] && echo "layers: ok ($(ls libcompress/*/*.[ch] | wc -l) files in $(echo $LAYERS | wc -w) layers)"
exit $bad
