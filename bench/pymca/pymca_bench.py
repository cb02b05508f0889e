#!/usr/bin/python3
"""pymca_bench.py - PyMca reference timings for the cmx-fit benchmarks.

Measures, on this machine and in this run:
  (a) FastXRFLinearFit throughput (spectra/s) on a stack of NMC-cell spectra
      (default 4096 x 2048; Ar, Ti, Cr, Mn, Fe, Co, Ni, Cu K + Cu Ka tube
      scatter, Rayleigh and Compton), for several weight/background settings;
  (b) McaAdvancedFit (ClassMcaTheory) time per spectrum for one spectrum,
      median of repeated fits, for the Gaussian configuration of the stack and
      for the same configuration with hypermet tails and step.
  and PyMca's accuracy against the known truth on the same stack.

The stack is generated in memory by PyMca's own forward model (as
tests/pymca/make_spectra.py does), or read with --stack FILE.h5 so that the
C++ benchmark and this script fit exactly the same data.

The last line on stdout is one JSON object:
  {"pymca_fast_spectra_per_s": ..., "pymca_advanced_ms": ..., "pymca_version": ...,
   "OPENBLAS_CORETYPE": ..., ...}
Human-readable progress goes to stderr.

Usage:
  /usr/bin/python3 bench/pymca/pymca_bench.py                 # full size
  /usr/bin/python3 bench/pymca/pymca_bench.py --spectra 512 --repeat 1 --advanced-repeat 5
  /usr/bin/python3 bench/pymca/pymca_bench.py --stack /tmp/b.h5   # cfg beside it
"""

import argparse
import copy
import json
import os
import sys
import time

import numpy

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "tests", "pymca"))
import pymca_common as pc  # noqa: E402
from PyMca5.PyMcaPhysics.xrf import FastXRFLinearFit  # noqa: E402
from PyMca5.PyMcaMath.fitting import Gefit  # noqa: E402

PROG = "pymca_bench"


def log(msg):
    sys.stderr.write("%s: %s\n" % (PROG, msg))
    sys.stderr.flush()


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG, description="PyMca reference timings.")
    p.add_argument("--spectra", type=int, default=4096, help="stack rows")
    p.add_argument("--channels", type=int, default=2048)
    p.add_argument("--no-scatter", action="store_true",
                   help="leave out the Cu Ka Rayleigh/Compton scatter peaks")
    p.add_argument("--seed", type=int, default=12345)
    p.add_argument("--stack", help="use this stack (FILE.h5[:/path]) instead of "
                   "generating one; its .cfg (beside it, or --config) is used")
    p.add_argument("--config", help="PyMca .cfg for --stack")
    p.add_argument("--repeat", type=int, default=3,
                   help="fast fit: runs per variant (median reported)")
    p.add_argument("--advanced-repeat", type=int, default=30,
                   help="advanced fit: fits of the one spectrum (median reported)")
    p.add_argument("--variants", default="w2,w0,w1,w0-snip,w2-snip",
                   help="fast variants: wN = weight N (0 none, 1 sum-spectrum, "
                        "2 per-spectrum Poisson), -snip = SNIP background instead "
                        "of the linear continuum, -norefit = no refit of negatives")
    p.add_argument("--w2-spectra", type=int, default=0,
                   help="limit weight-2 variants to this many rows (0 = all)")
    p.add_argument("--no-hypermet", action="store_true",
                   help="skip the advanced fit with hypermet tails")
    return p.parse_args(argv)


def make_stack(args):
    cfg = pc.build_config(scatter=not args.no_scatter)
    mcafit = pc.make_mcafit(cfg)
    names = pc.group_names(mcafit)
    areas = {k: v for k, v in pc.DEFAULT_AREAS.items() if k in names}
    areas.update({k: v for k, v in pc.DEFAULT_SCATTER_AREAS.items() if k in names})
    x = numpy.arange(args.channels, dtype=numpy.float64)
    model, _, _ = pc.pymca_model(mcafit, x, areas, pc.DEFAULT_CONSTANT, pc.DEFAULT_SLOPE)
    rng = numpy.random.default_rng(args.seed)
    stack = rng.poisson(model, size=(args.spectra, args.channels)).astype(numpy.uint32)
    return cfg, stack, areas, "generated in memory (seed %d)" % args.seed


def load_stack(args):
    f, dset = pc.open_stack(args.stack)
    stack = dset[()]
    if args.config:
        cfg = pc.read_config(args.config)
    else:
        path = args.stack
        if ":" in path and not os.path.exists(path):
            path = path.rpartition(":")[0]
        beside = os.path.splitext(path)[0] + ".cfg"
        truth = pc.read_truth(f)
        if os.path.exists(beside):
            cfg = pc.read_config(beside)
        elif truth and "pymca_cfg" in truth:
            cfg = pc.config_from_text(truth["pymca_cfg"])
        else:
            raise SystemExit("%s: no configuration for %s: give --config" % (PROG, args.stack))
    truth = pc.read_truth(f)
    areas = truth["areas"] if truth else {}
    return cfg, stack, areas, args.stack


def variant_config(cfg, name):
    c = copy.deepcopy(dict(cfg))
    parts = name.split("-")
    weight = int(parts[0][1:])
    refit = "norefit" not in parts
    if "snip" in parts:
        c["fit"]["stripflag"] = 1
        c["fit"]["stripalgorithm"] = 1
        c["fit"]["continuum"] = 0
    return c, weight, refit


def time_fast(cfg, stack, weight, refit, repeat):
    times, out = [], None
    for _ in range(max(1, repeat)):
        fast = FastXRFLinearFit.FastXRFLinearFit()
        fast.setFitConfiguration(copy.deepcopy(cfg))
        t0 = time.perf_counter()
        out = fast.fitMultipleSpectra(y=stack, weight=weight, refit=refit,
                                      concentrations=False)
        times.append(time.perf_counter() - t0)
    labels = list(out.labels("parameters"))
    params = numpy.asarray(out["parameters"], dtype=numpy.float64).reshape(len(labels), -1)
    uncs = numpy.asarray(out["uncertainties"], dtype=numpy.float64).reshape(len(labels), -1)
    return times, labels, params, uncs


def accuracy(labels, params, uncs, areas):
    acc = {}
    for k, true in areas.items():
        if k not in labels or not true:
            continue
        a = params[labels.index(k)]
        s = uncs[labels.index(k)]
        rel = (a - true) / true
        pull = (a - true) / numpy.where(s > 0, s, numpy.nan)
        acc[k] = {"mean_rel_bias": float(rel.mean()),
                  "rel_rms": float(numpy.sqrt((rel ** 2).mean())),
                  "pull_std": float(numpy.nanstd(pull, ddof=1)) if a.size > 1 else None}
    return acc


def time_advanced(cfg, y, repeat):
    mcafit = pc.make_mcafit(cfg)
    x = numpy.arange(y.size, dtype=numpy.float64)
    y = numpy.asarray(y, dtype=numpy.float64)
    xmin, xmax = cfg["fit"]["xmin"], cfg["fit"]["xmax"]
    times, dtimes, niter = [], [], None
    for _ in range(max(1, repeat)):
        t0 = time.perf_counter()
        mcafit.setData(x, y, xmin=xmin, xmax=xmax)
        mcafit.estimate()
        fitresult = mcafit.startfit(digest=0)
        mcafit.imagingDigestResult()
        times.append(time.perf_counter() - t0)
        niter = int(fitresult[3])
    for _ in range(max(1, min(repeat, 10))):
        t0 = time.perf_counter()
        mcafit.setData(x, y, xmin=xmin, xmax=xmax)
        mcafit.estimate()
        mcafit.startfit(digest=1)
        dtimes.append(time.perf_counter() - t0)
    return {"ms_median": 1e3 * float(numpy.median(times)),
            "ms_min": 1e3 * float(numpy.min(times)),
            "ms_with_digest_median": 1e3 * float(numpy.median(dtimes)),
            "niter": niter, "repeat": len(times),
            "free_parameters": int(sum(1 for c in mcafit.codes[0] if c != Gefit.CFIXED))}


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    env = pc.environment()
    load0 = os.getloadavg()
    if args.stack:
        cfg, stack, areas, source = load_stack(args)
    else:
        log("generating %d x %d stack with PyMca's model%s" % (
            args.spectra, args.channels, "" if args.no_scatter else " (+ Cu Ka scatter)"))
        cfg, stack, areas, source = make_stack(args)
    n = stack.shape[0]
    groups = pc.group_names(pc.make_mcafit(cfg))
    result = {"stack": {"source": source, "shape": list(stack.shape),
                        "dtype": str(stack.dtype), "groups": groups,
                        "fit_channels": [int(cfg["fit"]["xmin"]), int(cfg["fit"]["xmax"])]},
              "fast": {}, "advanced": {}}

    for name in [v for v in args.variants.split(",") if v]:
        vcfg, weight, refit = variant_config(cfg, name)
        data = stack
        if weight == 2 and args.w2_spectra and args.w2_spectra < n:
            data = stack[:args.w2_spectra]
        times, labels, params, uncs = time_fast(vcfg, data, weight, refit, args.repeat)
        med = float(numpy.median(times))
        entry = {"weight": weight, "refit": refit,
                 "background": "snip" if "snip" in name else "linear continuum",
                 "spectra": int(data.shape[0]),
                 "seconds_median": med, "seconds_all": times,
                 "spectra_per_s": data.shape[0] / med,
                 "accuracy": accuracy(labels, params, uncs, areas)}
        result["fast"][name] = entry
        log("fast %-10s %9.0f spectra/s (%d spectra, median of %d)"
            % (name, entry["spectra_per_s"], data.shape[0], len(times)))

    adv = time_advanced(cfg, stack[0], args.advanced_repeat)
    result["advanced"]["gaussian"] = adv
    log("advanced gaussian: %.1f ms/spectrum (median of %d; %.1f ms with digest)"
        % (adv["ms_median"], adv["repeat"], adv["ms_with_digest_median"]))
    if not args.no_hypermet:
        hcfg = copy.deepcopy(dict(cfg))
        hcfg["fit"]["hypermetflag"] = 15  # Gaussian + short tail + long tail + step
        hadv = time_advanced(hcfg, stack[0], args.advanced_repeat)
        result["advanced"]["hypermet"] = hadv
        log("advanced hypermet: %.1f ms/spectrum (median of %d)"
            % (hadv["ms_median"], hadv["repeat"]))

    fast = result["fast"]

    def rate(key):
        return fast[key]["spectra_per_s"] if key in fast else None

    summary = {
        # per-spectrum Poisson weights: the only PyMca fast mode whose
        # uncertainties are honest (pull std ~1); like-for-like with a
        # Poisson-weighted fast fit
        "pymca_fast_spectra_per_s": rate("w2"),
        # PyMca's GUI/batch default (weight 0 = unweighted): sigma not Poisson
        "pymca_fast_unweighted_spectra_per_s": rate("w0"),
        "pymca_fast_sumweight_spectra_per_s": rate("w1"),
        "pymca_fast_snip_unweighted_spectra_per_s": rate("w0-snip"),
        "pymca_fast_snip_spectra_per_s": rate("w2-snip"),
        "pymca_advanced_ms": adv["ms_median"],
        "pymca_advanced_digest_ms": adv["ms_with_digest_median"],
        "pymca_advanced_hypermet_ms": result["advanced"].get("hypermet", {}).get("ms_median"),
        "pymca_version": pc.pymca_version(),
        "spectra": n,
        "channels": int(stack.shape[1]),
        "scatter": any(g.startswith("Scatter") for g in groups),
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_NUM_THREADS": os.environ.get("OPENBLAS_NUM_THREADS"),
        "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS"),
        "nproc": env["nproc"],
        "loadavg_start": list(load0),
        "loadavg_end": list(os.getloadavg()),
        "numpy": env["numpy"],
        "details": result,
    }
    sys.stdout.write(json.dumps(summary) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
