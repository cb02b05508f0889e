#!/usr/bin/python3
"""Runs opx command-line test cases: the real binaries, exactly as a user would.

A case is a folder tests/cli/cases/<tool>/<name>/ holding
  cmd          a /bin/sh script, run in a fresh temporary working directory
  expect.json  what must happen: exit code, and how to check stdout and stderr
  stdout       golden stdout (or a regex list, or golden JSON; see expect.json)
  stderr       golden stderr (likewise)
  stdin        optional: fed to the script's standard input (else /dev/null)
The exit code, stdout and stderr are checked separately; on failure a unified
diff of each stream that differs is printed. See tests/cli/README.md.

    /usr/bin/python3 tests/cli/clitest.py --bin build/bin tests/cli/cases/selftest/echo
    /usr/bin/python3 tests/cli/clitest.py --bin build/bin --all
    /usr/bin/python3 tests/cli/clitest.py --bin build/bin --regen --all   # rewrite goldens on purpose

Exit status: 0 all passed, 1 a case failed, 2 bad usage or a bad case definition.
Python standard library only.
"""
import argparse
import difflib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
SOURCE_DIR = os.path.dirname(os.path.dirname(HERE))
CASES_DIR = os.path.join(HERE, "cases")

STREAM_MODES = ("golden", "ignore", "empty", "json", "regex")
KNOWN_KEYS = {"rc", "stdout", "stderr", "ignore_keys", "fixture_setup", "fixtures_required",
              "fixture_cleanup", "timeout", "rel_tol", "replace", "normalize_times", "description"}
DEFAULT_TIMEOUT_S = 60
DEFAULT_REL_TOL = 1e-9
IGNORED = "$IGNORED"

# ISO 8601 date-times as the tools write them (start/end times in manifests).
ISO_TIME = re.compile(r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?")


class CaseError(Exception):
    """A case folder that is not a valid case (exit status 2)."""


def project_version():
    try:
        with open(os.path.join(SOURCE_DIR, "CMakeLists.txt"), encoding="utf-8") as f:
            m = re.search(r"project\(\s*opx\s+VERSION\s+([0-9][0-9.]*)", f.read())
            return m.group(1) if m else None
    except OSError:
        return None


class Case:
    def __init__(self, path):
        self.path = os.path.abspath(path)
        self.name = os.path.relpath(self.path, CASES_DIR) if self.path.startswith(CASES_DIR + os.sep) \
            else os.path.basename(self.path)
        self.cmd = os.path.join(self.path, "cmd")
        if not os.path.isfile(self.cmd):
            raise CaseError(f"{self.path}: no 'cmd' script: not a test case folder")
        expect_path = os.path.join(self.path, "expect.json")
        try:
            with open(expect_path, encoding="utf-8") as f:
                self.expect = json.load(f)
        except OSError as e:
            raise CaseError(f"{expect_path}: {e.strerror}")
        except json.JSONDecodeError as e:
            raise CaseError(f"{expect_path}:{e.lineno}: not valid JSON: {e.msg}")
        self._validate(expect_path)

    def _validate(self, where):
        e = self.expect
        if not isinstance(e, dict):
            raise CaseError(f"{where}: must hold a JSON object")
        unknown = set(e) - KNOWN_KEYS
        if unknown:
            raise CaseError(f"{where}: unknown key(s) {sorted(unknown)}; known keys: {sorted(KNOWN_KEYS)}")
        if type(e.get("rc")) is not int:  # noqa: E721 (a bool is not an exit code)
            raise CaseError(f"{where}: 'rc' (the expected exit code, an integer) is required")
        for stream in ("stdout", "stderr"):
            if e.get(stream, "golden") not in STREAM_MODES:
                raise CaseError(f"{where}: '{stream}' must be one of {', '.join(STREAM_MODES)}")
        for key in ("ignore_keys", "fixtures_required"):
            v = e.get(key, [])
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise CaseError(f"{where}: '{key}' must be a list of strings")
        for key in ("fixture_setup", "fixture_cleanup"):
            if key in e and not (isinstance(e[key], str) and re.fullmatch(r"[A-Za-z0-9_.-]+", e[key])):
                raise CaseError(f"{where}: '{key}' must be a name of letters, digits, '_', '.' or '-'")
        if not isinstance(e.get("timeout", DEFAULT_TIMEOUT_S), (int, float)) or e.get("timeout", 1) <= 0:
            raise CaseError(f"{where}: 'timeout' must be a positive number of seconds")
        replace = e.get("replace", [])
        if not isinstance(replace, list) or not all(
                isinstance(r, list) and len(r) == 2 and all(isinstance(x, str) for x in r) for r in replace):
            raise CaseError(f"{where}: 'replace' must be a list of [regex, replacement] pairs")
        for pattern, _ in replace:
            try:
                re.compile(pattern)
            except re.error as err:
                raise CaseError(f"{where}: 'replace' regex {pattern!r}: {err}")

    def mode(self, stream):
        return self.expect.get(stream, "golden")

    def golden_path(self, stream):
        return os.path.join(self.path, stream)


class Runner:
    def __init__(self, args):
        self.bin = os.path.abspath(args.bin)
        self.fixtures = os.path.abspath(args.fixtures or os.path.join(os.path.dirname(self.bin), "tests",
                                                                      "cli-fixtures"))
        self.data = os.path.join(SOURCE_DIR, "tests", "data")
        self.version = args.version_string or project_version()
        self.regen = args.regen
        self.keep = args.keep
        self.rewritten = []  # golden files rewritten by --regen for the current case

    # -- running ------------------------------------------------------------

    def environment(self, case, workdir):
        # The developer's own OPX_* settings must not change what a case sees.
        env = {k: v for k, v in os.environ.items() if not k.startswith("OPX_")}
        env.update({
            "PATH": self.bin + os.pathsep + env.get("PATH", "/usr/bin:/bin"),
            "OPX_BIN": self.bin,
            "OPX_DATA": self.data,
            "OPX_SOURCE_DIR": SOURCE_DIR,
            "OPX_FIXTURES": self.fixtures,
            "OPX_CASE_DIR": case.path,
            "HOME": workdir,      # no tool may depend on the user's dot-files
            "TMPDIR": workdir,    # nor leave files behind in /tmp
            "LC_ALL": "C.UTF-8",  # stable messages and number formats
            "TZ": "UTC",
            "NO_COLOR": "1",
        })
        env.pop("COLUMNS", None)  # help texts wrap at a fixed width
        return env

    def run(self, case):
        """Runs one case; returns True when it passed."""
        self.rewritten = []
        os.makedirs(self.fixtures, exist_ok=True)
        if "fixture_setup" in case.expect:
            # A setup step starts from an empty folder, so outputs of an earlier
            # run can never stand in for outputs this run failed to make.
            own = os.path.join(self.fixtures, case.expect["fixture_setup"])
            shutil.rmtree(own, ignore_errors=True)
            os.makedirs(own)
        workdir = tempfile.mkdtemp(prefix="opx-cli-" + case.name.replace(os.sep, "-") + "-")
        timeout = case.expect.get("timeout", DEFAULT_TIMEOUT_S)
        stdin_path = os.path.join(case.path, "stdin")
        timed_out = False
        try:
            with open(stdin_path if os.path.isfile(stdin_path) else os.devnull, "rb") as stdin:
                proc = subprocess.Popen(["/bin/sh", case.cmd], cwd=workdir, env=self.environment(case, workdir),
                                        stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                        start_new_session=True)  # its own process group, killed as one
                try:
                    out, err = proc.communicate(timeout=timeout)
                except subprocess.TimeoutExpired:
                    timed_out = True
                    try:
                        os.killpg(proc.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                    out, err = proc.communicate()
            rc = proc.returncode
            ok = self.check(case, rc, out, err, workdir, timed_out, timeout)
        finally:
            if self.keep:
                print(f"  working directory kept: {workdir}")
            else:
                shutil.rmtree(workdir, ignore_errors=True)
        return ok

    # -- normalizing --------------------------------------------------------

    def normalize(self, case, text, workdir):
        """Replaces the volatile parts of an output with fixed names."""
        places = [(workdir, "$TMP"), (os.path.realpath(workdir), "$TMP"), (self.fixtures, "$FIXTURES"),
                  (self.data, "$DATA"), (self.bin, "$BIN"), (SOURCE_DIR, "$SRC")]
        # Longest first: the working directory may lie inside the source tree.
        for path, name in sorted(set(places), key=lambda p: -len(p[0])):
            text = text.replace(path, name)
        if self.version:
            text = re.sub(r"(?<![\d.])" + re.escape(self.version) + r"(?![\d.])", "$VERSION", text)
        if case.expect.get("normalize_times", True):
            text = ISO_TIME.sub("$TIME", text)
        for pattern, replacement in case.expect.get("replace", []):
            text = re.sub(pattern, replacement, text)
        return text

    # -- checking -----------------------------------------------------------

    def check(self, case, rc, out, err, workdir, timed_out, timeout):
        problems = []
        if timed_out:
            problems.append(f"  timed out after {timeout} s (killed)")
        elif rc != case.expect["rc"]:
            got = f"killed by signal {-rc}" if rc < 0 else f"exit code {rc}"
            problems.append(f"  {got}, expected exit code {case.expect['rc']}")
        texts = {stream: self.normalize(case, raw.decode("utf-8", errors="replace"), workdir)
                 for stream, raw in (("stdout", out), ("stderr", err))}
        if problems and self.regen:
            # A run that ended wrongly must not become the new reference.
            problems.append("  golden files not rewritten (if the new exit code is right, "
                            "change 'rc' in expect.json first)")
        else:
            for stream, text in texts.items():
                problems += self.check_stream(case, stream, text)
        if problems and case.mode("stderr") == "ignore" and texts["stderr"]:
            # stderr is not checked, but it is where the reason usually is.
            problems.append("  stderr (not checked) was:\n" + indent(texts["stderr"]))
        if problems:
            print(f"FAIL {case.name}")
            for problem in problems:
                print(problem.rstrip("\n"))
            if not self.keep:
                print("  (rerun with --keep to inspect the working directory)")
            return False
        if self.regen:
            print(f"REGEN {case.name}: " + (f"rewrote {', '.join(self.rewritten)}" if self.rewritten
                                            else "golden files unchanged"))
        else:
            print(f"PASS {case.name}")
        return True

    def check_stream(self, case, stream, text):
        mode = case.mode(stream)
        golden = case.golden_path(stream)
        if mode == "ignore":
            return []
        if mode == "empty":
            return [] if text == "" else [f"  {stream} should be empty but was:\n" + indent(text)]
        if self.regen and mode in ("golden", "json"):
            return self.regenerate(case, stream, text, golden)
        if not os.path.isfile(golden):
            return [f"  golden file {rel(golden)} is missing; create it with --regen"]
        with open(golden, encoding="utf-8", errors="replace") as f:
            expected = f.read()
        if mode == "golden":
            return [] if text == expected else [f"  {stream} differs from {rel(golden)}:\n" +
                                                 diff(expected, text, stream)]
        if mode == "regex":
            return check_regex(stream, expected, text, golden)
        return self.check_json(case, stream, expected, text, golden)

    def regenerate(self, case, stream, text, golden):
        if case.mode(stream) == "json":
            try:
                doc = parse_json_output(text)
            except ValueError as e:
                return [f"  {stream} is not JSON ({e}); golden not written:\n" + indent(text)]
            text = dump_json(mask(doc, case.expect.get("ignore_keys", [])))
        try:
            with open(golden, encoding="utf-8") as f:
                unchanged = f.read() == text
        except OSError:
            unchanged = False
        if not unchanged:
            with open(golden, "w", encoding="utf-8") as f:
                f.write(text)
            self.rewritten.append(rel(golden))
        return []

    def check_json(self, case, stream, expected, text, golden):
        try:
            want = parse_json_output(expected)
        except ValueError as e:
            return [f"  golden {rel(golden)} is not JSON: {e}"]
        try:
            got = parse_json_output(text)
        except ValueError as e:
            return [f"  {stream} is not JSON ({e}):\n" + indent(text)]
        keys = case.expect.get("ignore_keys", [])
        want, got = mask(want, keys), mask(got, keys)
        if json_equal(want, got, case.expect.get("rel_tol", DEFAULT_REL_TOL)):
            return []
        # Numbers equal within the tolerance are shown as expected, so the
        # diff holds only real differences.
        got = align_numbers(want, got, case.expect.get("rel_tol", DEFAULT_REL_TOL))
        return [f"  {stream} JSON differs from {rel(golden)} (ignoring {keys or 'no keys'}):\n" +
                diff(dump_json(want, sort=True), dump_json(got, sort=True), stream)]


# -- helpers -----------------------------------------------------------------

def rel(path):
    """A path as people read it in messages: relative to the repository when inside it."""
    path = os.path.abspath(path)
    return os.path.relpath(path, SOURCE_DIR) if path.startswith(SOURCE_DIR + os.sep) else path


def indent(text):
    return "".join("    " + line + "\n" for line in text.splitlines()) or "    (nothing)\n"


def diff(expected, actual, stream):
    lines = difflib.unified_diff(expected.splitlines(keepends=True), actual.splitlines(keepends=True),
                                 fromfile=f"expected {stream}", tofile=f"actual {stream}")
    out = ""
    for line in lines:
        out += "    " + line + ("" if line.endswith("\n") else "\n    \\ No newline at end of file\n")
    return out


def check_regex(stream, patterns, text, golden):
    """Each non-blank line of the golden file is a regex that must match a
    line of the output, in order (re.search)."""
    lines = text.splitlines()
    position = 0
    for number, pattern in enumerate(patterns.splitlines(), 1):
        if not pattern.strip():
            continue
        try:
            regex = re.compile(pattern)
        except re.error as e:
            return [f"  {rel(golden)}:{number}: bad regex {pattern!r}: {e}"]
        while position < len(lines) and not regex.search(lines[position]):
            position += 1
        if position == len(lines):
            return [f"  {stream} has no line matching {pattern!r} ({rel(golden)}:{number}) "
                    f"after the lines matched before it; {stream} was:\n" + indent(text)]
        position += 1
    return []


def parse_json_output(text):
    """A JSON document, or JSON Lines (one document per non-blank line)."""
    try:
        return json.loads(text)
    except json.JSONDecodeError as whole:
        docs = []
        for number, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    docs.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise ValueError(f"line {number}: {e.msg}" if len(docs) else whole.msg)
        if not docs:
            raise ValueError("no JSON at all")
        return {"$jsonl": docs}


def dump_json(doc, sort=False):
    if isinstance(doc, dict) and set(doc) == {"$jsonl"}:
        return "".join(json.dumps(d, sort_keys=sort, ensure_ascii=False) + "\n" for d in doc["$jsonl"])
    return json.dumps(doc, indent=2, sort_keys=sort, ensure_ascii=False) + "\n"


def mask(doc, keys):
    """Replaces the values of volatile keys by "$IGNORED". A key is a name
    (matched at any depth) or a path from the top starting with '/', whose
    segments may be '*' for any key or array element."""
    names = {k for k in keys if not k.startswith("/")}
    paths = [k.strip("/").split("/") for k in keys if k.startswith("/")]

    def walk(node, trail):
        if isinstance(node, dict):
            out = {}
            for k, v in node.items():
                here = trail + [k]
                out[k] = IGNORED if k in names or any(matches(p, here) for p in paths) else walk(v, here)
            return out
        if isinstance(node, list):
            return [IGNORED if any(matches(p, trail + [str(i)]) for p in paths) else walk(v, trail + [str(i)])
                    for i, v in enumerate(node)]
        return node

    def matches(path, trail):
        return len(path) == len(trail) and all(p in ("*", t) for p, t in zip(path, trail))

    if isinstance(doc, dict) and set(doc) == {"$jsonl"}:
        return {"$jsonl": [walk(d, []) for d in doc["$jsonl"]]}
    return walk(doc, [])


def json_equal(a, b, rel_tol):
    if isinstance(a, bool) or isinstance(b, bool):
        return a is b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b or abs(a - b) <= rel_tol * max(abs(a), abs(b))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k], rel_tol) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y, rel_tol) for x, y in zip(a, b))
    return a == b


def align_numbers(want, got, rel_tol):
    """got, with each number that equals want's to rel_tol replaced by want's."""
    if isinstance(want, dict) and isinstance(got, dict):
        return {k: align_numbers(want[k], v, rel_tol) if k in want else v for k, v in got.items()}
    if isinstance(want, list) and isinstance(got, list):
        return [align_numbers(w, g, rel_tol) for w, g in zip(want, got)] + got[len(want):]
    if not isinstance(want, bool) and not isinstance(got, bool) and isinstance(want, (int, float)) \
            and isinstance(got, (int, float)) and json_equal(want, got, rel_tol):
        return want
    return got


def discover(root):
    """Every <tool>/<name> folder under root with a cmd script (deeper folders
    are not cases: a case may keep helper cases of its own there)."""
    cases = []
    for tool in sorted(os.listdir(root)):
        tool_dir = os.path.join(root, tool)
        if not os.path.isdir(tool_dir):
            continue
        for name in sorted(os.listdir(tool_dir)):
            if os.path.isfile(os.path.join(tool_dir, name, "cmd")):
                cases.append(os.path.join(tool_dir, name))
    return cases


def order_by_fixtures(cases):
    """Setup cases before the cases that require their fixtures, as CTest does."""
    provides = {c.expect["fixture_setup"]: c for c in cases if "fixture_setup" in c.expect}
    ordered, done, visiting = [], set(), set()

    def visit(c):
        if c.path in done:
            return
        if c.path in visiting:
            raise CaseError(f"{c.path}: fixtures depend on each other in a cycle")
        visiting.add(c.path)
        for f in c.expect.get("fixtures_required", []):
            if f in provides:
                visit(provides[f])
        visiting.discard(c.path)
        done.add(c.path)
        ordered.append(c)

    for c in cases:
        visit(c)
    return ordered


def resolve(spec):
    """A case given as a folder path, or as <tool>/<name> under tests/cli/cases."""
    if os.path.isdir(spec):
        return spec
    candidate = os.path.join(CASES_DIR, spec)
    if os.path.isdir(candidate):
        return candidate
    raise CaseError(f"{spec}: no such case folder")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                epilog="Cases are documented in tests/cli/README.md.")
    p.add_argument("cases", nargs="*", help="case folders, or <tool>/<name> under tests/cli/cases")
    p.add_argument("--bin", required=True, help="folder holding the built opx programs (build/bin)")
    p.add_argument("--all", action="store_true", help="run every case under tests/cli/cases")
    p.add_argument("--regen", action="store_true",
                   help="rewrite the golden stdout/stderr files from this run (review with git diff)")
    p.add_argument("--fixtures", help="shared folder for outputs that later cases use "
                                      "(default: <bin>/../tests/cli-fixtures, as CTest uses)")
    p.add_argument("--version-string", help="the version to replace with $VERSION (default: from CMakeLists.txt)")
    p.add_argument("--keep", action="store_true", help="keep the temporary working directories")
    args = p.parse_args(argv)
    if not args.cases and not args.all:
        p.error("name the cases to run, or give --all")
    if not os.path.isdir(args.bin):
        p.error(f"--bin {args.bin}: no such folder (build first: cmake --build build)")

    try:
        paths = discover(CASES_DIR) if args.all else [resolve(c) for c in args.cases]
        cases = order_by_fixtures([Case(path) for path in paths])
    except CaseError as e:
        print(f"clitest: {e}", file=sys.stderr)
        return 2

    runner = Runner(args)
    failed, broken_fixtures, skipped = [], set(), []
    for case in cases:
        missing = [f for f in case.expect.get("fixtures_required", []) if f in broken_fixtures]
        if missing:
            print(f"NOT RUN {case.name}: fixture {', '.join(missing)} failed")
            skipped.append(case)
            continue
        if not runner.run(case):
            failed.append(case)
            if "fixture_setup" in case.expect:
                broken_fixtures.add(case.expect["fixture_setup"])
        sys.stdout.flush()
    if len(cases) > 1:
        print(f"{len(cases) - len(failed) - len(skipped)} passed, {len(failed)} failed, {len(skipped)} not run")
    return 1 if failed or skipped else 0


if __name__ == "__main__":
    sys.exit(main())
