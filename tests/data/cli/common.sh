# Shell helpers for the cmx-fit and cmx-sim CLI cases (tests/cli/cases/cmx-*/):
#   . "$OPX_DATA/cli/common.sh"
# Checks that fail exit with status 99, which no case expects, and say why on
# stderr.

# expect_untouched OUT COMMAND...
#   Puts a sentinel in OUT (an earlier result), runs COMMAND, then checks that
#   OUT is byte for byte the same, that no manifest OUT.json appeared and that
#   no temporary file is left beside it. Exits with COMMAND's exit status.
expect_untouched() {
  out=$1
  shift
  printf 'sentinel: an earlier result that a failed run must leave alone\n' > "$out"
  before=$(sha256sum < "$out")
  "$@"
  rc=$?
  after=$(sha256sum < "$out" 2>/dev/null)
  if [ "$before" != "$after" ]; then
    echo "CHECK FAILED: $out was changed or removed by a failed run" >&2
    exit 99
  fi
  if [ -e "$out.json" ]; then
    echo "CHECK FAILED: a failed run wrote the manifest $out.json" >&2
    exit 99
  fi
  if ls -A "$(dirname "$out")" | grep -F ".$(basename "$out").tmp" >&2; then
    echo "CHECK FAILED: a failed run left the temporary file(s) above" >&2
    exit 99
  fi
  exit $rc
}

# make_stack OUT.h5 [FAULT] [--points N] [--channels N]: see make_stack.py.
make_stack() {
  /usr/bin/python3 "$OPX_DATA/cli/make_stack.py" "$@" || { echo "CHECK FAILED: make_stack.py $*" >&2; exit 99; }
}
