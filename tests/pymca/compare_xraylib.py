#!/usr/bin/python3
"""compare_xraylib.py - how far PyMca's K-line tables are from xraylib's.

opx builds its line groups from xraylib; PyMca uses its own tables (Scofield
1974 K-shell rates, line energies from its binding-energy table, lines closer
than fit/deltaonepeak merged).  This script quantifies, for the groups of a
make_spectra.py stack (or of the default configuration):

  * per line: energy and relative rate, PyMca vs xraylib, both after the same
    Be window transmission and Si detector efficiency (PyMca's with its own
    attenuation tables, xraylib's with CS_Total);
  * the Kb fraction of each group;
  * the area bias an ideal fitter would show against PyMca's truth if it used
    xraylib's line ratios/energies but otherwise PyMca's model (same FWHM law,
    same sampling, same linear continuum): a weighted linear least-squares fit
    of the noise-free truth model (weights 1/model, i.e. the Poisson variance),
    once with PyMca's own lines (must return the truth: checks the method) and
    once with xraylib's lines.

Needs Debian's python3-xraylib (optional elsewhere: the cross-check does not).

Usage:
  /usr/bin/python3 tests/pymca/compare_xraylib.py [STACK.h5] [--out FILE.json]
"""

import argparse
import json
import os
import sys

import numpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pymca_common as pc  # noqa: E402

PROG = "compare_xraylib"

try:
    import xraylib
except ImportError:
    sys.stderr.write("%s: python3-xraylib is not installed (apt-get install "
                     "python3-xraylib); nothing to compare\n" % PROG)
    sys.exit(69)

K_LINES = ["KL1", "KL2", "KL3", "KM1", "KM2", "KM3", "KM4", "KM5",
           "KN1", "KN2", "KN3", "KN4", "KN5", "KN6", "KN7",
           "KO1", "KO2", "KO3", "KO4", "KO5", "KO6", "KO7",
           "KP1", "KP2", "KP3", "KP4", "KP5"]


def attenuators(cfg):
    """(formula, density, thickness_cm, kind) of the active window/detector."""
    out = []
    for name, att in cfg["attenuators"].items():
        if not att[0] or name.upper() == "MATRIX":
            continue
        formula, density, thick = att[1], float(att[2]), float(att[3])
        kind = "detector" if name.upper() == "DETECTOR" else "filter"
        out.append((formula, density, thick, kind))
    return out


def xraylib_mu(formula, energy):
    # PyMca formulas such as 'Be1', 'Si1' are valid compound formulas
    cd = xraylib.CompoundParser(formula)
    return sum(w * xraylib.CS_Total(z, energy)
               for z, w in zip(cd["Elements"], cd["massFractions"]))


def xraylib_group(symbol, atts):
    z = xraylib.SymbolToAtomicNumber(symbol)
    lines = []
    for name in K_LINES:
        macro = getattr(xraylib, name + "_LINE")
        try:
            rate = xraylib.RadRate(z, macro)
            energy = xraylib.LineEnergy(z, macro)
        except ValueError:
            continue
        if rate <= 0 or energy <= 0:
            continue
        eff = 1.0
        for formula, density, thick, kind in atts:
            mt = xraylib_mu(formula, energy) * density * thick
            eff *= (1.0 - numpy.exp(-mt)) if kind == "detector" else numpy.exp(-mt)
        lines.append([name, energy, rate, rate * eff])
    raw = numpy.array([l[2] for l in lines])
    det = numpy.array([l[3] for l in lines])
    return {
        "lines": [l[0] for l in lines],
        "energy_keV": [l[1] for l in lines],
        "rate_raw": (raw / raw.sum()).tolist(),
        "ratio": (det / det.sum()).tolist(),
    }


def kb_fraction(names, ratios):
    return float(sum(r for n, r in zip(names, ratios) if not n.startswith("KL")))


def gaussian_column(x, gain, zero, noise, fano, energies, ratios):
    e = zero + gain * x
    col = numpy.zeros_like(x)
    for en, r in zip(energies, ratios):
        fwhm = numpy.sqrt(noise ** 2 + 0.00385 * fano * 2.3548 ** 2 * en)
        s = fwhm / 2.3548
        col += r * gain * numpy.exp(-0.5 * ((e - en) / s) ** 2) / (s * numpy.sqrt(2 * numpy.pi))
    return col


def fit_with(tables, names, x, model, det, sl, continuum_code):
    cols = []
    for k in names:
        t = tables[k]
        cols.append(gaussian_column(x, det["gain"], det["zero"], det["noise"],
                                    det["fano"], t["energy_keV"], t["ratio"]))
    if continuum_code >= 1:
        cols.append(numpy.ones_like(x))
    if continuum_code >= 2:
        cols.append(x.copy())
    a = numpy.array(cols).T[sl]
    y = model[sl]
    w = 1.0 / numpy.sqrt(numpy.maximum(y, 1e-12))
    p, *_ = numpy.linalg.lstsq(a * w[:, None], y * w, rcond=None)
    return dict(zip(names, p[:len(names)]))


def main(argv=None):
    ap = argparse.ArgumentParser(prog=PROG, description=__doc__.split("\n")[0])
    ap.add_argument("stack", nargs="?", help="make_spectra.py output (default: "
                    "build the default configuration and model in memory)")
    ap.add_argument("--out", help="JSON output (default stdout)")
    args = ap.parse_args(argv)

    if args.stack:
        import h5py
        with h5py.File(args.stack, "r") as f:
            truth = pc.read_truth(f)
            model = f["/entry/truth/model"][()]
        cfg = pc.config_from_text(truth["pymca_cfg"])
        areas = truth["areas"]
    else:
        cfg = pc.build_config()
        mcafit = pc.make_mcafit(cfg)
        x = numpy.arange(2048.0)
        model, _, _ = pc.pymca_model(mcafit, x, pc.DEFAULT_AREAS,
                                     pc.DEFAULT_CONSTANT, pc.DEFAULT_SLOPE)
        areas = dict(pc.DEFAULT_AREAS)
    mcafit = pc.make_mcafit(cfg)
    pymca_tables = pc.line_table(mcafit)
    # PyMca's raw rates (no window, no detector): same config, attenuators off
    raw_cfg = pc.config_from_text(pc.config_text(cfg))
    for key in raw_cfg["attenuators"]:
        raw_cfg["attenuators"][key][0] = 0
    pymca_raw = pc.line_table(pc.make_mcafit(raw_cfg))
    atts = attenuators(cfg)
    names = [k for k in pc.group_names(mcafit) if k.endswith(" K")]
    xrl_tables = {k: xraylib_group(k.split()[0], atts) for k in names}

    x = numpy.arange(model.size, dtype=numpy.float64)
    det = mcafit.config["detector"]
    sl = slice(int(cfg["fit"]["xmin"]), int(cfg["fit"]["xmax"]) + 1)
    code = int(cfg["fit"]["continuum"])
    fit_pymca_lines = fit_with(pymca_tables, names, x, model, det, sl, code)
    fit_xrl_lines = fit_with(xrl_tables, names, x, model, det, sl, code)

    report = {"tool": PROG, "pymca_version": pc.pymca_version(),
              "xraylib_version": getattr(xraylib, "__version__", "unknown"),
              "attenuators": [list(a) for a in atts], "groups": {}}
    sys.stderr.write("%-5s %9s %9s %9s %9s | %10s %10s\n" % (
        "group", "Kb PyMca", "Kb xrl", "Kb raw P", "Kb raw X",
        "bias P-lines", "bias X-lines"))
    for k in names:
        p, xr = pymca_tables[k], xrl_tables[k]
        true = areas.get(k, 0.0)
        entry = {
            "pymca": p,
            "pymca_raw_ratio": pymca_raw[k]["ratio"],
            "xraylib": xr,
            "kb_fraction_pymca": kb_fraction(p["lines"], p["ratio"]),
            "kb_fraction_xraylib": kb_fraction(xr["lines"], xr["ratio"]),
            "kb_fraction_pymca_raw": kb_fraction(pymca_raw[k]["lines"], pymca_raw[k]["ratio"]),
            "kb_fraction_xraylib_raw": kb_fraction(xr["lines"], xr["rate_raw"]),
            "true_area": true,
        }
        if true:
            entry["area_rel_bias_fit_with_pymca_lines"] = fit_pymca_lines[k] / true - 1.0
            entry["area_rel_bias_fit_with_xraylib_lines"] = fit_xrl_lines[k] / true - 1.0
        report["groups"][k] = entry
        sys.stderr.write("%-5s %9.5f %9.5f %9.5f %9.5f | %+9.4f%% %+9.4f%%\n" % (
            k, entry["kb_fraction_pymca"], entry["kb_fraction_xraylib"],
            entry["kb_fraction_pymca_raw"], entry["kb_fraction_xraylib_raw"],
            100 * entry.get("area_rel_bias_fit_with_pymca_lines", 0),
            100 * entry.get("area_rel_bias_fit_with_xraylib_lines", 0)))
    text = json.dumps(report)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")
    else:
        sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
