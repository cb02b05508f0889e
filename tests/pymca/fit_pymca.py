#!/usr/bin/python3
"""fit_pymca.py - fit every spectrum of an HDF5 stack with PyMca.

Two engines, both PyMca's own:
  advanced  ClassMcaTheory.McaTheory per spectrum, as McaAdvancedFitBatch does:
            setData -> estimate -> startfit(digest=0) -> imagingDigestResult
            (nonlinear Levenberg-Marquardt of zero, gain, noise [, fano],
            continuum and group areas, Poisson weights from the data)
  fast      FastXRFLinearFit.fitMultipleSpectra over the whole stack: one
            linear model with the nonlinear parameters fixed (from the .cfg,
            or from an advanced fit of the sum spectrum with --sum-calibrate)

Output: one JSON document (stdout or --out) with, per mode, per group the
area and sigma of every fitted spectrum (compact arrays), chi-square, timings,
and - when the file holds /entry/truth (make_spectra.py) - bias and pulls.

Usage:
  /usr/bin/python3 tests/pymca/fit_pymca.py STACK.h5[:/dataset] \
      [--config FILE.cfg] [--mode advanced|fast|both] [--indices 0-99,200] \
      [--weight 0|1|2] [--refit 0|1] [--sum-calibrate] [--out FILE.json]
"""

import argparse
import copy
import json
import os
import sys
import time

import numpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pymca_common as pc  # noqa: E402
from PyMca5.PyMcaPhysics.xrf import FastXRFLinearFit  # noqa: E402
from PyMca5.PyMcaMath.fitting import Gefit  # noqa: E402

PROG = "fit_pymca"


def log(msg):
    sys.stderr.write("%s: %s\n" % (PROG, msg))


def parse_indices(text, n):
    if text in (None, "", "all"):
        return list(range(n))
    out = []
    for part in text.split(","):
        part = part.strip()
        if not part:
            continue
        if "-" in part[1:]:
            a, b = part.split("-", 1)
            out.extend(range(int(a), int(b) + 1))
        elif ":" in part:
            a, b = part.split(":", 1)
            out.extend(range(int(a), int(b)))
        else:
            out.append(int(part))
    bad = [i for i in out if i < 0 or i >= n]
    if bad:
        raise ValueError("indices out of range [0, %d): %s" % (n, bad[:5]))
    return out


def parse_args(argv):
    p = argparse.ArgumentParser(prog=PROG,
                                description="Fit an HDF5 stack of XRF spectra with PyMca.")
    p.add_argument("stack", help="FILE.h5 or FILE.h5:/path/to/dataset [points, channels]")
    p.add_argument("--config", help="PyMca .cfg (default: STACK.cfg beside the file, "
                   "else /entry/truth/pymca_cfg)")
    p.add_argument("--mode", choices=["advanced", "fast", "both"], default="both")
    p.add_argument("--indices", default="all",
                   help="spectra for the advanced fit: 'all', '0-99,200', '0:50'")
    p.add_argument("--fast-indices", default="all",
                   help="rows given to the fast fit (default all)")
    p.add_argument("--weight", type=int, choices=[0, 1, 2], default=0,
                   help="FastXRFLinearFit weight: 0 none (PyMca's default), 1 from "
                        "the sum spectrum, 2 per-spectrum Poisson (slow)")
    p.add_argument("--refit", type=int, choices=[0, 1], default=1,
                   help="FastXRFLinearFit: refit spectra with negative areas "
                        "(PyMca GUI default 1)")
    p.add_argument("--sum-calibrate", action="store_true",
                   help="fast: first fit the sum spectrum with the advanced fit and "
                        "use its zero/gain/noise/fano (PyMca's usual workflow)")
    p.add_argument("--digest", action="store_true",
                   help="advanced: also call the full digestresult() (slow) and time it")
    p.add_argument("--repeat", type=int, default=1,
                   help="fast: run the fit this many times, report the best time")
    p.add_argument("--summary-only", action="store_true",
                   help="omit the per-spectrum arrays from the JSON")
    p.add_argument("--out", help="write the JSON here instead of stdout")
    return p.parse_args(argv)


def load_config(args, h5file):
    if args.config:
        return pc.read_config(args.config), os.path.abspath(args.config)
    path = args.stack
    if ":" in path and not os.path.exists(path):
        path = path.rpartition(":")[0]
    beside = os.path.splitext(path)[0] + ".cfg"
    if os.path.exists(beside):
        return pc.read_config(beside), os.path.abspath(beside)
    truth = pc.read_truth(h5file)
    if truth and "pymca_cfg" in truth:
        return pc.config_from_text(truth["pymca_cfg"]), "%s:/entry/truth/pymca_cfg" % path
    raise SystemExit("%s: no configuration: give --config FILE.cfg" % PROG)


# --------------------------------------------------------------------------
# advanced (McaAdvancedFit) fit
# --------------------------------------------------------------------------
def fit_advanced(cfg, data, indices, digest=False):
    mcafit = pc.make_mcafit(cfg)
    names = pc.group_names(mcafit)
    nch = data.shape[-1]
    x = numpy.arange(nch, dtype=numpy.float64)
    xmin, xmax = cfg["fit"]["xmin"], cfg["fit"]["xmax"]
    area = {k: [] for k in names}
    sigma = {k: [] for k in names}
    chisq, niter, times, dtimes = [], [], [], []
    globals_ = {k: [] for k in mcafit.PARAMETERS[:mcafit.NGLOBAL]}
    failures = []
    rows = numpy.asarray(data[sorted(set(indices))]) if len(indices) else \
        numpy.zeros((0, nch))
    row_of = {i: k for k, i in enumerate(sorted(set(indices)))}
    wall = pc.Timer()
    for i in indices:
        y = rows[row_of[i]].astype(numpy.float64)
        t0 = time.perf_counter()
        try:
            mcafit.setData(x, y, xmin=xmin, xmax=xmax)
            mcafit.estimate()
            fitresult = mcafit.startfit(digest=0)
            res = mcafit.imagingDigestResult()
        except Exception as exc:  # keep going, report it
            failures.append({"index": i, "error": str(exc)})
            for k in names:
                area[k].append(float("nan"))
                sigma[k].append(float("nan"))
            chisq.append(float("nan"))
            niter.append(-1)
            times.append(time.perf_counter() - t0)
            for k in globals_:
                globals_[k].append(float("nan"))
            continue
        times.append(time.perf_counter() - t0)
        if digest:
            t1 = time.perf_counter()
            mcafit.digestresult()
            dtimes.append(time.perf_counter() - t1)
        for k in names:
            area[k].append(float(res[k]["fitarea"]))
            sigma[k].append(float(res[k]["sigmaarea"]))
        chisq.append(float(fitresult[1]))
        niter.append(int(fitresult[3]))
        for j, k in enumerate(mcafit.PARAMETERS[:mcafit.NGLOBAL]):
            globals_[k].append(float(fitresult[0][j]))
    wall_s = wall()
    n = len(indices)
    timing = {
        "wall_s": wall_s,
        "spectra": n,
        "spectra_per_s": n / wall_s if wall_s > 0 else None,
        "ms_per_spectrum_median": 1e3 * float(numpy.median(times)) if n else None,
        "ms_per_spectrum_mean": 1e3 * float(numpy.mean(times)) if n else None,
        "what": "setData+estimate+startfit(digest=0)+imagingDigestResult per spectrum",
    }
    if digest and dtimes:
        timing["digestresult_ms_median"] = 1e3 * float(numpy.median(dtimes))
    free = [k for k, c in zip(mcafit.PARAMETERS, mcafit.codes[0])
            if c != Gefit.CFIXED]
    return {
        "engine": "PyMca5 ClassMcaTheory.McaTheory (McaAdvancedFit)",
        "indices": list(indices),
        "groups": names,
        "area": area,
        "sigma": sigma,
        "chisq_red": chisq,
        "niter": niter,
        "nonlinear": {k: v for k, v in globals_.items()
                      if k in ("Zero", "Gain", "Noise", "Fano", "Constant", "1st Order")},
        "free_parameters": free,
        "failures": failures,
        "timing": timing,
    }


# --------------------------------------------------------------------------
# fast (FastXRFLinearFit) fit
# --------------------------------------------------------------------------
def sum_calibrate(cfg, stack):
    """Advanced fit of the sum spectrum; returns cfg with its nonlinear params."""
    mcafit = pc.make_mcafit(cfg)
    ysum = numpy.asarray(stack, dtype=numpy.float64).sum(axis=0)
    x = numpy.arange(ysum.size, dtype=numpy.float64)
    mcafit.setData(x, ysum, xmin=cfg["fit"]["xmin"], xmax=cfg["fit"]["xmax"])
    mcafit.estimate()
    fitresult = mcafit.startfit(digest=0)
    par = fitresult[0]
    names = mcafit.PARAMETERS
    new = copy.deepcopy(cfg)
    for key, pname in (("zero", "Zero"), ("gain", "Gain"), ("noise", "Noise"),
                       ("fano", "Fano")):
        new["detector"][key] = float(par[names.index(pname)])
    return new, {k: new["detector"][k] for k in ("zero", "gain", "noise", "fano")}


def fit_fast(cfg, stack, weight, refit, repeat=1):
    """stack: in-memory array [n, channels] (the file's dtype)."""
    best = None
    for _ in range(max(1, repeat)):
        fast = FastXRFLinearFit.FastXRFLinearFit()
        fast.setFitConfiguration(copy.deepcopy(dict(cfg)))
        t0 = time.perf_counter()
        outbuffer = fast.fitMultipleSpectra(y=stack, weight=weight, refit=bool(refit),
                                            concentrations=False)
        dt = time.perf_counter() - t0
        if best is None or dt < best[0]:
            best = (dt, fast, outbuffer)
    wall_s, fast, outbuffer = best
    labels = list(outbuffer.labels("parameters"))
    params = numpy.asarray(outbuffer["parameters"], dtype=numpy.float64)
    uncs = numpy.asarray(outbuffer["uncertainties"], dtype=numpy.float64)
    params = params.reshape(len(labels), -1)
    uncs = uncs.reshape(len(labels), -1)

    # chi-square (not timed): rebuild PyMca's own design matrix
    config = fast._mcaTheory.getConfiguration()
    derivatives, free_names, n_free, n_free_bkg = fast._fitCreateModel(
        dtype=numpy.float64)
    assert list(free_names) == labels, (free_names, labels)
    i0, i1 = fast._fitMcaTrimInfo(x=None)
    n = stack.shape[0]
    chisq = numpy.empty(n)
    for start in range(0, n, 1024):
        stop = min(n, start + 1024)
        y = numpy.asarray(stack[start:stop, i0:i1], dtype=numpy.float64).T.copy()
        w = 1.0 / numpy.maximum(y, 1.0)
        if config["fit"]["stripflag"]:
            anchors = fast._fitBkgAnchorList(config=config)
            fast._fitBkgSubtract(y, config=config, anchorslist=anchors)
        resid = y - derivatives @ params[:, start:stop]
        dof = (i1 - i0) - numpy.count_nonzero(params[:, start:stop], axis=0)
        chisq[start:stop] = (w * resid * resid).sum(axis=0) / dof
    groups = labels[n_free_bkg:]
    return {
        "engine": "PyMca5 FastXRFLinearFit.fitMultipleSpectra",
        "weight": weight,
        "refit": int(refit),
        "groups": groups,
        "background_parameters": labels[:n_free_bkg],
        "area": {k: params[labels.index(k)].tolist() for k in groups},
        "sigma": {k: uncs[labels.index(k)].tolist() for k in groups},
        "background": {k: params[labels.index(k)].tolist() for k in labels[:n_free_bkg]},
        "sigma_note": {0: "weight 0: PyMca assumes unit variance per channel; "
                          "sigma is NOT a Poisson uncertainty",
                       1: "weight 1: PyMca uses sigma_b = 1 + sqrt(sum spectrum)/N "
                          "for every spectrum; sigma is NOT a per-spectrum Poisson "
                          "uncertainty (too small)",
                       2: "weight 2: per-spectrum Poisson weights sqrt(max(y,1)); "
                          "honest uncertainties"}[weight],
        "chisq_red": chisq.tolist(),
        "chisq_note": "sum((y-model)^2/max(y,1))/(n_channels_fitted - n_nonzero_params), "
                      "computed after the fit from PyMca's design matrix (not timed)",
        "fit_channels": [int(i0), int(i1)],
        "timing": {
            "wall_s": wall_s,
            "spectra": int(n),
            "spectra_per_s": n / wall_s if wall_s > 0 else None,
            "what": "one fitMultipleSpectra call on an in-memory %s array "
                    "(includes building the model and the refit of negative "
                    "areas; excludes reading the file)" % str(stack.dtype),
            "repeat": repeat,
        },
    }


# --------------------------------------------------------------------------
# truth comparison
# --------------------------------------------------------------------------
def compare(result, truth, cfg=None):
    out = {}
    crb = pc.cramer_rao(truth, cfg["fit"]["xmin"], cfg["fit"]["xmax"]) if cfg else {}
    for k in result["groups"]:
        if k not in truth["areas"]:
            continue
        true = truth["areas"][k]
        a = numpy.asarray(result["area"][k], dtype=numpy.float64)
        s = numpy.asarray(result["sigma"][k], dtype=numpy.float64)
        ok = numpy.isfinite(a)
        a, s = a[ok], s[ok]
        if a.size == 0 or true == 0:
            continue
        rel = (a - true) / true
        pull = numpy.where(s > 0, (a - true) / numpy.where(s > 0, s, 1), numpy.nan)
        pull = pull[numpy.isfinite(pull)]
        out[k] = {
            "true_area": true,
            "n": int(a.size),
            "mean_area": float(a.mean()),
            "mean_rel_bias": float(rel.mean()),
            "mean_rel_bias_sem": float(rel.std(ddof=1) / numpy.sqrt(a.size)) if a.size > 1 else None,
            "rel_std": float(rel.std(ddof=1)) if a.size > 1 else None,
            "poisson_rel_std_floor": float(1.0 / numpy.sqrt(true)),
            "crb_rel_std": crb[k] / true if k in crb else None,
            "mean_sigma": float(s.mean()),
            "std_area": float(a.std(ddof=1)) if a.size > 1 else None,
            "pull_mean": float(pull.mean()) if pull.size else None,
            "pull_std": float(pull.std(ddof=1)) if pull.size > 1 else None,
        }
    return out


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    h5file, dset = pc.open_stack(args.stack)
    if dset.ndim != 2:
        raise SystemExit("%s: %s: expected [points, channels], got shape %s"
                         % (PROG, args.stack, dset.shape))
    cfg, cfg_source = load_config(args, h5file)
    truth = pc.read_truth(h5file)
    doc = {
        "tool": PROG,
        "pymca_version": pc.pymca_version(),
        "input": args.stack,
        "shape": list(dset.shape),
        "config": cfg_source,
        "environment": pc.environment(),
    }
    if truth:
        doc["truth"] = {k: v for k, v in truth.items()
                        if k != "pymca_cfg" and not k.startswith("_")}
    summary = {}

    if args.mode in ("advanced", "both"):
        indices = parse_indices(args.indices, dset.shape[0])
        log("advanced fit of %d spectra" % len(indices))
        res = fit_advanced(cfg, dset, indices, digest=args.digest)
        if truth:
            res["truth_comparison"] = compare(res, truth, cfg)
            summary["advanced"] = res["truth_comparison"]
        log("advanced: %.1f ms/spectrum (median)" % res["timing"]["ms_per_spectrum_median"])
        doc["advanced"] = res

    if args.mode in ("fast", "both"):
        rows = parse_indices(args.fast_indices, dset.shape[0])
        if rows == list(range(dset.shape[0])):
            stack = dset[()]
        else:
            stack = numpy.asarray(dset[sorted(set(rows))])
            rows = sorted(set(rows))
        fcfg = cfg
        calib = None
        if args.sum_calibrate:
            fcfg, calib = sum_calibrate(cfg, stack)
            log("sum-spectrum calibration: %s" % calib)
        log("fast fit of %d spectra (weight=%d, refit=%d)"
            % (stack.shape[0], args.weight, args.refit))
        res = fit_fast(fcfg, stack, args.weight, args.refit, repeat=args.repeat)
        res["indices"] = rows
        if calib:
            res["sum_calibration"] = calib
        if truth:
            res["truth_comparison"] = compare(res, truth, cfg)
            summary["fast"] = res["truth_comparison"]
        log("fast: %.0f spectra/s" % res["timing"]["spectra_per_s"])
        doc["fast"] = res

    if args.summary_only:
        for mode in ("advanced", "fast"):
            if mode in doc:
                for key in ("area", "sigma", "chisq_red", "niter", "nonlinear",
                            "background", "indices"):
                    doc[mode].pop(key, None)
    if summary:
        doc["summary"] = summary
    text = json.dumps(doc, indent=None, separators=(",", ":"), allow_nan=True)
    if args.out:
        tmp = args.out + ".part"
        with open(tmp, "w") as f:
            f.write(text + "\n")
        os.replace(tmp, args.out)
        log("wrote %s" % args.out)
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
