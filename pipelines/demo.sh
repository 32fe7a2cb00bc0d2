#!/bin/sh
# make demo: the main job on one machine.  Imports the default model
# (LC_MODEL, else sqz-s7 from the shared test assets, else a SYNTHETIC random
# model), validates it, and runs the demo grid, printing the comparison.
set -eu
cd "$(dirname "$0")/.."
BIN=$PWD/bin
export PATH="$BIN:$PATH"
SHARED=${LC_SHARED:-../shared}
OUT=${LC_DEMO_DIR:-results/demo}
mkdir -p "$OUT"

model=${LC_MODEL:-}
if [ -z "$model" ] && [ -d "$SHARED/models/sqz-s7" ]; then model=$SHARED/models/sqz-s7; fi
if [ -n "$model" ]; then
  echo "demo: importing $model" >&2
  lc-import -q "$model" -o "$OUT/base.h5"
else
  echo "demo: no model found (set LC_MODEL or LC_SHARED); using a SYNTHETIC random model -" >&2
  echo "demo: its figures exercise the mechanics only and mean nothing" >&2
  lc-import -q --synthetic 1 -o "$OUT/base.h5"
fi
lc-info --check "$OUT/base.h5"
