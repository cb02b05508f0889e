#!/bin/sh
# The demo campaign: three depth profiles of the virtual NMC coin cell, as
# cmx-acquire would take them during cycling (the layers drift, Mn deposits
# in the anode), fitted by cmx-fit through a Makefile, and summarized.
# Usage: scripts/demo.sh [BUILD_DIR]    (make demo builds first)
set -eu
build=${1:-build}
here=$(cd "$(dirname "$0")/.." && pwd)
bin=$(cd "$build" && pwd)/bin
out="$build/demo"
mkdir -p "$out"
export PATH="$bin:$PATH"

echo "demo: simulating three depth profiles of the virtual coin cell in $out" >&2
cmx-sim -o "$out/profile-001.h5" --seed 1 > /dev/null
cmx-sim -o "$out/profile-030.h5" --seed 2 --shift '14 um' --mn-anode 2.5 > /dev/null
cmx-sim -o "$out/profile-060.h5" --seed 3 --shift '-9 um' --mn-anode 4 > /dev/null

echo "demo: fitting them with make -j2 (scripts/fit-campaign.mk)" >&2
make -s -j2 -f "$here/scripts/fit-campaign.mk" -C "$out" CONFIG=nmc-coin-cell-cu-tube

echo "demo: net count rates (cps) at the cathode and anode of each profile:" >&2
/usr/bin/python3 "$here/scripts/profile-summary.py" "$out"/profile-*.fit.h5
