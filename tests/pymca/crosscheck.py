#!/usr/bin/python3
"""crosscheck.py - cmx-fit against PyMca on the same spectra (CTest pymca.crosscheck).

Issue 2, "Correctness, checked independently", peer cross-check: the same
spectra fitted with PyMca and with cmx-fit using equivalent configurations
(tests/pymca/nmc_cu_tube.cfg for PyMca, tests/pymca/nmc_cu_tube.json for opx);
the net areas of the major lines must agree within 1 % (or within 1 sigma for
weak lines).

Steps, in WORKDIR:
  1. make_spectra.py: N Poisson realisations of PyMca's own forward model of
     the NMC set (Ar, Ti, Cr, Mn, Fe, Co, Ni, Cu K, linear continuum, no
     scatter), configuration nmc_cu_tube.cfg, truth in /entry/truth;
  2. fit_pymca.py: McaAdvancedFit on the first A spectra and
     FastXRFLinearFit (weight 2: per-spectrum Poisson) on all N;
  3. cmx-fit (the binary given with --cmx-fit) --engine linear on all N and
     --engine nonlinear on all N;
  4. per spectrum and per group:
        |area_opx - area_pymca| <= max(1 % of area_pymca, sigma_pymca)
     for  opx linear    vs PyMca fast (weight 2)   (all N spectra)
     and  opx nonlinear vs PyMca advanced          (the A spectra);
     i.e. 1 % where PyMca's own uncertainty is below 1 % (the major lines),
     1 sigma where it is above (the weak lines Ti, Cr, Fe here);
  5. reports the per-group mean difference, and each fitter's bias and pull
     statistics against the truth side by side (report only: the pull test
     with >= 1000 realisations lives in the unit tests).

Exit status: 0 all bounds hold, 1 a bound is violated (the table says
where), 69 a tool could not run.

Usage:
  /usr/bin/python3 tests/pymca/crosscheck.py --cmx-fit build/bin/cmx-fit \
      [--workdir DIR] [-n 200] [--advanced 20] [--seed S] [--json OUT.json]
"""

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time

import numpy

HERE = os.path.dirname(os.path.abspath(__file__))
PY = sys.executable
PROG = "crosscheck"


def log(msg):
    sys.stderr.write("%s: %s\n" % (PROG, msg))
    sys.stderr.flush()


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description="cmx-fit vs PyMca cross-check")
    p.add_argument("--cmx-fit", required=True, help="path of the cmx-fit binary to test")
    p.add_argument("--config", default=os.path.join(HERE, "nmc_cu_tube.json"),
                   help="opx fit configuration (default: nmc_cu_tube.json here)")
    p.add_argument("--pymca-config", default=os.path.join(HERE, "nmc_cu_tube.cfg"),
                   help="PyMca configuration the stack is generated and fitted with")
    p.add_argument("--workdir", help="scratch directory (default: a new temp dir)")
    p.add_argument("-n", "--realizations", type=int, default=200)
    p.add_argument("--advanced", type=int, default=20,
                   help="spectra fitted with PyMca's advanced fit (the first A)")
    p.add_argument("--seed", type=int, default=20240501)
    p.add_argument("--rel-bound", type=float, default=0.01,
                   help="relative agreement bound (the issue's 1 %%)")
    p.add_argument("--sigma-bound", type=float, default=1.0,
                   help="agreement bound in PyMca sigmas for weak lines (the issue's 1 sigma)")
    p.add_argument("--json", help="also write all figures to this JSON file")
    return p.parse_args(argv)


def run(cmd, what):
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True)
    dt = time.perf_counter() - t0
    if proc.returncode != 0:
        sys.stderr.write(proc.stderr)
        log("%s failed (exit %d): %s" % (what, proc.returncode, " ".join(cmd)))
        sys.exit(69)
    log("%s: %.1f s" % (what, dt))
    return proc, dt


def h5_name(group):
    """cmx-fit's NeXus group name for a line group ("Mn K" -> "Mn_K")."""
    out = ""
    for c in group:
        if c.isalnum():
            out += c
        elif out and out[-1] != "_":
            out += "_"
    return out.rstrip("_")


def read_opx(path, groups):
    import h5py
    area, sigma = {}, {}
    with h5py.File(path, "r") as f:
        names = [n.decode() if isinstance(n, bytes) else str(n)
                 for n in f["/entry/results/group_names"][()]]
        for g in groups:
            if g not in names:
                continue
            d = f["/entry/" + h5_name(g)]
            area[g] = numpy.asarray(d["area"][()], dtype=numpy.float64)
            sigma[g] = numpy.asarray(d["area_errors"][()], dtype=numpy.float64)
    return names, area, sigma


def agreement(groups, a_opx, s_opx, a_pm, s_pm, rows, rel_bound, sig_bound):
    """Per group: differences opx - PyMca on the given rows, and the bound."""
    out = {}
    for g in groups:
        a = a_opx[g][rows]
        b = numpy.asarray(a_pm[g], dtype=numpy.float64)
        sb = numpy.asarray(s_pm[g], dtype=numpy.float64)
        so = s_opx[g][rows]
        ok = numpy.isfinite(b) & numpy.isfinite(a) & numpy.isfinite(sb)
        d = a - b
        bound = numpy.maximum(rel_bound * numpy.abs(b), sig_bound * sb)
        viol = ok & (numpy.abs(d) > bound)
        rel = d[ok] / b[ok]
        worst = int(numpy.argmax(numpy.where(ok, numpy.abs(d) / bound, -1)))
        n = int(ok.sum())
        out[g] = {
            "n": n,
            "failed_fits": int((~ok).sum()),
            "mean_rel_diff": float(rel.mean()),
            "mean_rel_diff_sem": float(rel.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"),
            "std_rel_diff": float(rel.std(ddof=1)) if n > 1 else float("nan"),
            "max_abs_rel_diff": float(numpy.abs(rel).max()),
            "max_abs_diff_over_sigma": float((numpy.abs(d[ok]) / sb[ok]).max()),
            "median_rel_sigma_pymca": float(numpy.median(sb[ok] / numpy.abs(b[ok]))),
            "bound": "1 %" if numpy.median(sb[ok] / numpy.abs(b[ok])) <= rel_bound else "1 sigma",
            "worst_spectrum": int(rows[worst]),
            "worst_ratio_to_bound": float(numpy.abs(d[worst]) / bound[worst]),
            "sigma_ratio_opx_pymca": float(numpy.mean(so[ok] / sb[ok])),
            "violations": [{"spectrum": int(rows[i]), "opx": float(a[i]), "pymca": float(b[i]),
                            "diff": float(d[i]), "bound": float(bound[i]),
                            "pymca_sigma": float(sb[i])}
                           for i in numpy.nonzero(viol)[0]],
        }
    return out


def truth_stats(a, s, true):
    a = numpy.asarray(a, dtype=numpy.float64)
    s = numpy.asarray(s, dtype=numpy.float64)
    ok = numpy.isfinite(a) & numpy.isfinite(s) & (s > 0)
    a, s = a[ok], s[ok]
    rel = (a - true) / true
    pull = (a - true) / s
    n = a.size
    return {"n": int(n),
            "bias": float(rel.mean()),
            "bias_sem": float(rel.std(ddof=1) / math.sqrt(n)) if n > 1 else float("nan"),
            "rel_std": float(rel.std(ddof=1)) if n > 1 else float("nan"),
            "pull_mean": float(pull.mean()),
            "pull_std": float(pull.std(ddof=1)) if n > 1 else float("nan")}


def print_agreement(title, res, groups):
    print()
    print(title)
    head = ("%-6s %5s %8s %15s %9s %10s %11s %6s %8s %9s %5s"
            % ("group", "n", "sig/A", "mean diff %", "std %", "max|d| %", "max|d|/sig",
               "bound", "worst", "sig o/p", "fail"))
    print(head)
    print("-" * len(head))
    for g in groups:
        r = res[g]
        print("%-6s %5d %7.2f%% %+8.3f(%5.3f) %9.3f %10.3f %11.3f %6s %8.2f %9.3f %5d"
              % (g, r["n"], 100 * r["median_rel_sigma_pymca"],
                 100 * r["mean_rel_diff"], 100 * r["mean_rel_diff_sem"],
                 100 * r["std_rel_diff"], 100 * r["max_abs_rel_diff"],
                 r["max_abs_diff_over_sigma"], r["bound"], r["worst_ratio_to_bound"],
                 r["sigma_ratio_opx_pymca"], len(r["violations"]) + r["failed_fits"]))
    print("  diff = area_opx - area_pymca per spectrum; bound = max(1 % of area, 1 PyMca sigma);"
          " worst = largest |diff|/bound (must be <= 1); sig o/p = mean sigma_opx/sigma_pymca")


def print_truth(title, cols, groups, truth):
    print()
    print(title)
    head = "%-6s %8s" % ("group", "true")
    for name, _ in cols:
        head += " | %-35s" % name
    print(head)
    sub = "%-6s %8s" % ("", "")
    for _ in cols:
        sub += " | %16s %7s %10s" % ("bias % (sem)", "rel std", "pull m/s")
    print(sub)
    print("-" * len(sub))
    for g in groups:
        line = "%-6s %8.0f" % (g, truth[g])
        for _, stats in cols:
            t = stats[g]
            line += " | %+7.3f (%5.3f) %7.4f %+5.2f/%4.2f" % (
                100 * t["bias"], 100 * t["bias_sem"], t["rel_std"], t["pull_mean"], t["pull_std"])
        print(line)
    print("  n: " + ", ".join("%s %d" % (name, stats[groups[0]]["n"]) for name, stats in cols))


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    t_start = time.perf_counter()
    work = args.workdir or tempfile.mkdtemp(prefix="opx-crosscheck-")
    os.makedirs(work, exist_ok=True)
    if not os.access(args.cmx_fit, os.X_OK):
        log("cannot run cmx-fit: %s" % args.cmx_fit)
        return 69
    stack = os.path.join(work, "nmc.h5")
    n, n_adv = args.realizations, min(args.advanced, args.realizations)

    # 1. spectra from PyMca's forward model, with nmc_cu_tube.cfg
    run([PY, os.path.join(HERE, "make_spectra.py"), "--out", stack, "-n", str(n),
         "--seed", str(args.seed), "--config", args.pymca_config], "make_spectra (%d spectra)" % n)

    # 2. PyMca: advanced on the first n_adv, fast weight 2 on all
    pm_json = os.path.join(work, "pymca.json")
    run([PY, os.path.join(HERE, "fit_pymca.py"), stack, "--config", args.pymca_config,
         "--mode", "both", "--indices", "0:%d" % n_adv, "--weight", "2", "--out", pm_json],
        "PyMca advanced (%d) + fast weight 2 (%d)" % (n_adv, n))
    with open(pm_json) as f:
        pm = json.load(f)

    # 3. cmx-fit, both engines
    opx = {}
    for engine in ("linear", "nonlinear"):
        out = os.path.join(work, "opx_%s.h5" % engine)
        proc, dt = run([args.cmx_fit, "-c", args.config, stack, "-o", out, "--engine", engine],
                       "cmx-fit --engine %s" % engine)
        summary = json.loads(proc.stdout.strip().splitlines()[-1])
        opx[engine] = {"path": out, "seconds": dt, "stdout": summary,
                       "warnings": [l for l in proc.stderr.splitlines() if l.strip()]}

    # 4. agreement
    import h5py
    with h5py.File(stack, "r") as f:
        tnames = [x.decode() if isinstance(x, bytes) else str(x)
                  for x in f["/entry/truth/group_names"][()]]
        truth = dict(zip(tnames, [float(v) for v in f["/entry/truth/group_areas"][()]]))
    groups = list(pm["fast"]["groups"])
    problems = []
    if list(pm["advanced"]["groups"]) != groups:
        problems.append("PyMca's advanced and fast fits have different groups")
    for engine in ("linear", "nonlinear"):
        names, area, sigma = read_opx(opx[engine]["path"], groups)
        opx[engine].update(names=names, area=area, sigma=sigma)
        if names != groups:
            problems.append("cmx-fit --engine %s groups %s differ from PyMca's %s"
                            % (engine, names, groups))
    if problems:
        for p in problems:
            print("FAIL: " + p)
        return 1

    rows_all = numpy.arange(n)
    adv_idx = numpy.asarray(pm["advanced"].get("indices", list(range(n_adv))), dtype=int)
    res_fast = agreement(groups, opx["linear"]["area"], opx["linear"]["sigma"],
                         pm["fast"]["area"], pm["fast"]["sigma"], rows_all,
                         args.rel_bound, args.sigma_bound)
    res_adv = agreement(groups, opx["nonlinear"]["area"], opx["nonlinear"]["sigma"],
                        pm["advanced"]["area"], pm["advanced"]["sigma"], adv_idx,
                        args.rel_bound, args.sigma_bound)

    print("cmx-fit vs PyMca %s on %d spectra of PyMca's own model (%s)"
          % (pm.get("pymca_version", "?"), n, stack))
    print("opx config %s; PyMca config %s" % (args.config, args.pymca_config))
    print_agreement("[A] cmx-fit --engine linear  vs  PyMca FastXRFLinearFit weight 2 "
                    "(per-spectrum Poisson), all %d spectra" % n, res_fast, groups)
    print_agreement("[B] cmx-fit --engine nonlinear  vs  PyMca McaAdvancedFit, spectra 0-%d"
                    % (n_adv - 1), res_adv, groups)

    # 5. against the truth (report only)
    def stats_of(area, sigma, rows=None):
        out = {}
        for g in groups:
            a = numpy.asarray(area[g], dtype=numpy.float64)
            s = numpy.asarray(sigma[g], dtype=numpy.float64)
            if rows is not None:
                a, s = a[rows], s[rows]
            out[g] = truth_stats(a, s, truth[g])
        return out

    cols_fast = [("opx linear", stats_of(opx["linear"]["area"], opx["linear"]["sigma"])),
                 ("PyMca fast w2", stats_of(pm["fast"]["area"], pm["fast"]["sigma"]))]
    cols_adv = [("opx nonlinear (all)", stats_of(opx["nonlinear"]["area"], opx["nonlinear"]["sigma"])),
                ("opx nonlinear (same %d)" % n_adv,
                 stats_of(opx["nonlinear"]["area"], opx["nonlinear"]["sigma"], adv_idx)),
                ("PyMca advanced", stats_of(pm["advanced"]["area"], pm["advanced"]["sigma"]))]
    print_truth("[C] against the truth: fast engines (bias = mean (fit-true)/true, "
                "pull = (fit-true)/sigma)", cols_fast, groups, truth)
    print_truth("[D] against the truth: nonlinear engines", cols_adv, groups, truth)

    failures = []
    for label, res in (("A linear vs PyMca fast w2", res_fast),
                       ("B nonlinear vs PyMca advanced", res_adv)):
        for g in groups:
            r = res[g]
            if r["failed_fits"]:
                failures.append("%s: %s: %d spectra without a finite area" % (label, g, r["failed_fits"]))
            for v in r["violations"][:5]:
                failures.append("%s: %s spectrum %d: opx %.1f, PyMca %.1f +- %.1f, |diff| %.1f > bound %.1f"
                                % (label, g, v["spectrum"], v["opx"], v["pymca"], v["pymca_sigma"],
                                   abs(v["diff"]), v["bound"]))
            if len(r["violations"]) > 5:
                failures.append("%s: %s: ... %d violations in all" % (label, g, len(r["violations"])))
    for engine in ("linear", "nonlinear"):
        for w in opx[engine]["warnings"]:
            print("cmx-fit --engine %s said: %s" % (engine, w))

    doc = {"pymca_version": pm.get("pymca_version"), "spectra": n, "advanced_spectra": n_adv,
           "groups": groups, "truth": truth,
           "agreement": {"linear_vs_fast_w2": res_fast, "nonlinear_vs_advanced": res_adv},
           "truth_stats": {"opx_linear": cols_fast[0][1], "pymca_fast_w2": cols_fast[1][1],
                           "opx_nonlinear": cols_adv[0][1], "opx_nonlinear_same": cols_adv[1][1],
                           "pymca_advanced": cols_adv[2][1]},
           "seconds": {"cmx_fit_linear": opx["linear"]["seconds"],
                       "cmx_fit_nonlinear": opx["nonlinear"]["seconds"],
                       "total": time.perf_counter() - t_start},
           "failures": failures}
    if args.json:
        with open(args.json, "w") as f:
            json.dump(doc, f, indent=1, allow_nan=True)
    print()
    if failures:
        print("FAIL: %d bound violation(s):" % len(failures))
        for line in failures:
            print("  " + line)
        return 1
    print("OK: every spectrum and group within max(1 %% of the area, 1 PyMca sigma) "
          "(%.1f s)" % (time.perf_counter() - t_start))
    return 0


if __name__ == "__main__":
    sys.exit(main())
