#!/bin/sh
# bench/run.sh BUILD_DIR - runs opx's benchmarks (`make bench`) and prints
# their results. Each bench/bench_*.cpp is built into BUILD_DIR/bench/; the
# PyMca references are measured in the same run by the benchmarks themselves
# (with /usr/bin/python3, Debian's python3-pymca5). Results go to stdout: the
# human-readable lines, then one JSON line per benchmark. Figures for
# bench/RESULTS.md are taken from such a run on a machine as quiet as can be
# had (the load average is printed before and recorded in the JSON).
set -eu

BUILD=${1:-build}
PYTHON=${OPX_PYMCA_PYTHON:-/usr/bin/python3}

if [ ! -d "$BUILD/bench" ]; then
  echo "bench/run.sh: no $BUILD/bench: build first (make build, OPX_BENCH=ON)" >&2
  exit 66
fi

echo "# opx benchmarks: $(date -u +%Y-%m-%dT%H:%M:%SZ), $(nproc) cores," \
     "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n 1)"
src=$(cd "$(dirname "$0")/.." && pwd)
if command -v git >/dev/null 2>&1 && git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
  echo "# source: $(git -C "$src" rev-parse --short HEAD)$(git -C "$src" diff --quiet HEAD -- lib tools 2>/dev/null || echo ' + local changes in lib/ or tools/')"
fi
echo "# load average: $(cut -d' ' -f1-3 /proc/loadavg) (other work on the machine slows every figure)"

pymca_flag=""
if ! "$PYTHON" -c "import PyMca5, h5py, numpy" 2>/dev/null; then
  echo "# PyMca5 not importable by $PYTHON: benchmarks run without the PyMca reference (no ratios)"
  pymca_flag="--no-pymca"
fi

status=0
found=0
for bin in "$BUILD"/bench/bench_*; do
  [ -x "$bin" ] || continue
  found=1
  name=$(basename "$bin")
  echo
  echo "## $name"
  case "$name" in
    bench_xrf_fit)
      "$bin" --cmx-fit "$BUILD/bin/cmx-fit" --python "$PYTHON" --threads 2 $pymca_flag || status=$?
      ;;
    *)
      "$bin" || status=$?
      ;;
  esac
done
if [ "$found" = 0 ]; then
  echo "bench/run.sh: no benchmark programs in $BUILD/bench" >&2
  exit 66
fi
exit "$status"
