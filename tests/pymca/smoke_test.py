#!/usr/bin/python3
"""smoke_test.py - quick check that the PyMca cross-check scripts work.

Runs, in a scratch directory: the template drift check, make_spectra.py (200
realisations), fit_pymca.py in both modes, pymca_bench.py at a tiny size and,
if python3-xraylib is installed, compare_xraylib.py.  Checks the HDF5 layout
and that PyMca recovers its own truth (bias, pulls).  About 10 s.

Usage: /usr/bin/python3 tests/pymca/smoke_test.py [SCRATCH_DIR]
Exit status 0 on success, 1 on a failed check.
"""

import json
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PY = sys.executable
FAILED = []


def check(cond, what):
    sys.stderr.write("smoke_test: %s: %s\n" % ("ok  " if cond else "FAIL", what))
    if not cond:
        FAILED.append(what)


def run(args):
    proc = subprocess.run([PY] + args, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
    check(proc.returncode == 0, "exit 0: %s" % " ".join(os.path.basename(a) for a in args[:1]))
    return proc


def main():
    scratch = sys.argv[1] if len(sys.argv) > 1 else tempfile.mkdtemp(prefix="opx-pymca-")
    os.makedirs(scratch, exist_ok=True)
    import h5py
    import numpy

    # 1. the committed template is what make_spectra.py builds by default
    tpl = os.path.join(scratch, "template.cfg")
    run([os.path.join(HERE, "make_spectra.py"), "--write-template", tpl])
    with open(tpl) as a, open(os.path.join(HERE, "nmc_cu_tube.cfg")) as b:
        check(a.read() == b.read(), "nmc_cu_tube.cfg matches make_spectra.py defaults")

    # 2. a small stack
    h5 = os.path.join(scratch, "nmc200.h5")
    run([os.path.join(HERE, "make_spectra.py"), "--out", h5, "-n", "200", "--seed", "7"])
    check(os.path.exists(os.path.splitext(h5)[0] + ".cfg"), ".cfg written beside the stack")
    with h5py.File(h5, "r") as f:
        check(f["/entry"].attrs["NX_class"] == "NXentry", "/entry NXentry")
        check(f["/entry/instrument/mca"].attrs["NX_class"] == "NXdetector", "mca NXdetector")
        d = f["/entry/instrument/mca/data"]
        check(d.shape == (200, 2048), "data shape [200, 2048]")
        check(f["/entry/data/counts"].id == d.id, "counts is a hard link to mca/data")
        check(f["/entry/data"].attrs["signal"] == "counts", "NXdata @signal")
        check(list(f["/entry/data"].attrs["axes"]) == ["depth", "."], "NXdata @axes")
        check(f["/entry/instrument/mca/live_time"].attrs["units"] == "s", "live_time units")
        check(f["/entry/data/depth"].attrs["units"] == "um", "depth units")
        t = f["/entry/truth"]
        names = [n.decode() if isinstance(n, bytes) else n for n in t["group_names"][()]]
        areas = dict(zip(names, t["group_areas"][()]))
        sums_ok = all(abs(t["model_groups"][k][()].sum() / areas[k] - 1) < 1e-4 for k in names)
        check(sums_ok, "area = sum over channels of the group's model (1e-4)")
        mean_ok = abs(d[()].mean(axis=0).sum() / t["model"][()].sum() - 1) < 1e-3
        check(mean_ok, "realisations average to the model")

    # 3. PyMca recovers its own truth
    out = os.path.join(scratch, "fit.json")
    run([os.path.join(HERE, "fit_pymca.py"), h5, "--mode", "both", "--weight", "2",
         "--out", out])
    with open(out) as f:
        doc = json.load(f)
    for mode in ("advanced", "fast"):
        s = doc["summary"][mode]
        check(sorted(s) == sorted(names), "%s: every group fitted" % mode)
        for k, v in s.items():
            bias_ok = abs(v["mean_rel_bias"]) < 5 * v["mean_rel_bias_sem"] + 2e-3
            check(bias_ok, "%s %s: bias %+.3f%% (sem %.3f%%)" % (
                mode, k, 100 * v["mean_rel_bias"], 100 * v["mean_rel_bias_sem"]))
            check(0.75 < v["pull_std"] < 1.25, "%s %s: pull std %.2f" % (mode, k, v["pull_std"]))
        check(len(doc[mode]["area"][names[0]]) == 200, "%s: 200 areas per group" % mode)
        check(doc[mode]["timing"]["spectra_per_s"] > 0, "%s: timing" % mode)

    # 4. the benchmark runs and ends with its JSON line
    proc = run([os.path.join(ROOT, "bench", "pymca", "pymca_bench.py"), "--spectra", "64",
                "--repeat", "1", "--advanced-repeat", "2", "--no-hypermet",
                "--variants", "w0,w2"])
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    for key in ("pymca_fast_spectra_per_s", "pymca_advanced_ms", "pymca_version",
                "OPENBLAS_CORETYPE"):
        check(key in last, "bench JSON has %s" % key)

    # 5. xraylib comparison, where python3-xraylib is installed
    try:
        import xraylib  # noqa: F401
    except ImportError:
        sys.stderr.write("smoke_test: skip: python3-xraylib not installed\n")
    else:
        proc = run([os.path.join(HERE, "compare_xraylib.py"), h5])
        rep = json.loads(proc.stdout)
        for k, g in rep["groups"].items():
            check(abs(g["kb_fraction_pymca"] - g["kb_fraction_xraylib"]) < 1e-3,
                  "%s: Kb fraction PyMca vs xraylib" % k)

    if FAILED:
        sys.stderr.write("smoke_test: %d check(s) failed\n" % len(FAILED))
        return 1
    sys.stderr.write("smoke_test: all checks passed (%s)\n" % scratch)
    return 0


if __name__ == "__main__":
    sys.exit(main())
