#!/usr/bin/python3
"""make_spectra.py - test XRF spectra from PyMca's own forward model.

The expected spectrum is computed by PyMca (ClassMcaTheory.McaTheory.mcatheory)
for chosen group areas, so the truth is defined by an implementation that is
independent of opx.  Writes:

  OUT.h5   NeXus stack [points, channels] of Poisson realisations (seeded),
           plus /entry/truth (areas, calibration, noise-free model, the PyMca
           configuration as .cfg text and as JSON, PyMca's line tables)
  OUT.cfg  the PyMca fit configuration used (ConfigDict format), next to OUT.h5

Usage:
  /usr/bin/python3 tests/pymca/make_spectra.py --out /tmp/x/nmc.h5 -n 1000
  /usr/bin/python3 tests/pymca/make_spectra.py --write-template tests/pymca/nmc_cu_tube.cfg

See tests/pymca/README.md for what every quantity means.
"""

import argparse
import os
import sys

import numpy

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pymca_common as pc  # noqa: E402

PROG = "make_spectra"


def log(msg):
    sys.stderr.write("%s: %s\n" % (PROG, msg))


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog=PROG,
        description="Generate XRF test spectra with PyMca's own forward model.")
    p.add_argument("--out", help="output HDF5 file (OUT.cfg is written beside it)")
    p.add_argument("-n", "--realizations", type=int, default=1000,
                   help="number of Poisson realisations (rows of the stack)")
    p.add_argument("--seed", type=int, default=20240501)
    p.add_argument("--channels", type=int, default=2048)
    p.add_argument("--zero", type=float, default=0.0, help="keV at channel 0")
    p.add_argument("--gain", type=float, default=0.01, help="keV per channel")
    p.add_argument("--noise", type=float, default=0.1,
                   help="PyMca 'noise': electronic FWHM in keV")
    p.add_argument("--fano", type=float, default=0.114)
    p.add_argument("--continuum", choices=["none", "constant", "linear"],
                   default="linear")
    p.add_argument("--constant", type=float, default=pc.DEFAULT_CONSTANT,
                   help="continuum, counts/channel at channel 0")
    p.add_argument("--slope", type=float, default=pc.DEFAULT_SLOPE,
                   help="continuum slope, counts/channel per channel")
    p.add_argument("--areas", default="",
                   help="override group areas, e.g. 'Mn K=6e4,Fe K=8e3'")
    p.add_argument("--scale", type=float, default=1.0,
                   help="multiply every area and the continuum (count time)")
    p.add_argument("--scatter", action="store_true",
                   help="add Cu Ka Rayleigh + Compton scatter peaks (bench set;"
                        " degenerate with Cu K, keep out of the cross-check)")
    p.add_argument("--xmin", type=int, default=100, help="fit range, channels")
    p.add_argument("--xmax", type=int, default=1200)
    p.add_argument("--free-fano", action="store_true",
                   help="let the nonlinear fit refine Fano (default: fixed)")
    p.add_argument("--config", help="use this PyMca .cfg instead of building"
                   " one (calibration, noise, fano, peaks are taken from it)")
    p.add_argument("--dtype", choices=["uint32", "float64"], default="uint32")
    p.add_argument("--live-time", type=float, default=30.0, help="s per point")
    p.add_argument("--dead-fraction", type=float, default=0.05,
                   help="real_time = live_time / (1 - dead fraction)")
    p.add_argument("--depth-step", type=float, default=1.0,
                   help="um between points of the depth axis")
    p.add_argument("--write-template", metavar="FILE.cfg",
                   help="only write the configuration (from the options) and exit")
    args = p.parse_args(argv)
    if not args.out and not args.write_template:
        p.error("--out is required (or --write-template)")
    if args.realizations < 0:
        p.error("--realizations must be >= 0")
    return args


def make_config(args):
    if args.config:
        return pc.read_config(args.config)
    return pc.build_config(zero=args.zero, gain=args.gain, noise=args.noise,
                           fano=args.fano, continuum=args.continuum,
                           xmin=args.xmin, xmax=args.xmax,
                           scatter=args.scatter, free_fano=args.free_fano)


def write_stack(args, cfg, mcafit, x, total, continuum, comps, areas,
                constant, slope):
    import h5py

    out = os.path.abspath(args.out)
    os.makedirs(os.path.dirname(out), exist_ok=True)
    cfg_path = os.path.splitext(out)[0] + ".cfg"
    pc.write_config(cfg, cfg_path)
    tmp = out + ".part"
    n, nch = args.realizations, len(x)
    rng = numpy.random.default_rng(args.seed)
    det = mcafit.config["detector"]
    dtype = numpy.uint32 if args.dtype == "uint32" else numpy.float64
    with h5py.File(tmp, "w") as f:
        f.attrs["default"] = "entry"
        f.attrs["creator"] = "opx tests/pymca/make_spectra.py"
        entry = f.create_group("entry")
        entry.attrs["NX_class"] = "NXentry"
        entry.attrs["default"] = "data"
        entry.create_dataset("title", data="PyMca forward-model test stack "
                             "(NMC coin cell, Cu tube, Si detector)")
        inst = entry.create_group("instrument")
        inst.attrs["NX_class"] = "NXinstrument"
        mca = inst.create_group("mca")
        mca.attrs["NX_class"] = "NXdetector"
        chunk_rows = max(1, min(n, (1 << 20) // (nch * numpy.dtype(dtype).itemsize)))
        data = mca.create_dataset("data", shape=(n, nch), dtype=dtype,
                                  chunks=(chunk_rows, nch) if n else None)
        data.attrs["units"] = "counts"
        data.attrs["interpretation"] = "spectrum"
        # Poisson realisations, written in chunks (bounded memory)
        for start in range(0, n, 4096):
            stop = min(n, start + 4096)
            block = rng.poisson(total, size=(stop - start, nch))
            data[start:stop] = block.astype(dtype)
        live = numpy.full(n, args.live_time)
        real = live / (1.0 - args.dead_fraction)
        d = mca.create_dataset("live_time", data=live)
        d.attrs["units"] = "s"
        d = mca.create_dataset("real_time", data=real)
        d.attrs["units"] = "s"
        d = mca.create_dataset("channels", data=numpy.arange(nch, dtype=numpy.int32))
        d = mca.create_dataset("calibration",
                               data=numpy.array([det["zero"], det["gain"], 0.0]))
        d.attrs["units"] = "keV"
        d.attrs["description"] = "E = c0 + c1*channel + c2*channel^2"

        nxdata = entry.create_group("data")
        nxdata.attrs["NX_class"] = "NXdata"
        nxdata.attrs["signal"] = "counts"
        nxdata.attrs["axes"] = numpy.array(["depth", "."], dtype=h5py.string_dtype())
        nxdata.attrs["depth_indices"] = 0
        nxdata["counts"] = data  # hard link
        d = nxdata.create_dataset("depth", data=numpy.arange(n) * args.depth_step)
        d.attrs["units"] = "um"

        truth = entry.create_group("truth")
        truth.attrs["NX_class"] = "NXcollection"
        truth.attrs["description"] = (
            "Truth of the stack: every row is an independent Poisson "
            "realisation of /entry/truth/model, computed by PyMca "
            "%s McaTheory.mcatheory with the configuration in pymca_cfg. "
            "A group's area is PyMca's area parameter: the expected counts in "
            "all lines of the group together (line ratios from PyMca's tables "
            "after window transmission and detector efficiency, normalised to 1 "
            "in the group) = sum over channels of model_<group>." % pc.pymca_version())
        names = pc.group_names(mcafit)
        truth.create_dataset("group_names",
                             data=numpy.array(names, dtype=h5py.string_dtype()))
        d = truth.create_dataset("group_areas",
                                 data=numpy.array([areas.get(k, 0.0) for k in names]))
        d.attrs["units"] = "counts"
        area_g = truth.create_group("area")
        area_g.attrs["NX_class"] = "NXcollection"
        for k in names:
            d = area_g.create_dataset(k, data=float(areas.get(k, 0.0)))
            d.attrs["units"] = "counts"
        for key, value, unit in (("zero", det["zero"], "keV"),
                                 ("gain", det["gain"], "keV"),
                                 ("noise", det["noise"], "keV"),
                                 ("fano", det["fano"], ""),
                                 ("continuum_constant", constant, "counts"),
                                 ("continuum_slope", slope, "counts"),
                                 ("live_time", args.live_time, "s")):
            d = truth.create_dataset(key, data=float(value))
            if unit:
                d.attrs["units"] = unit
        truth["zero"].attrs["description"] = "E(keV) = zero + gain * channel"
        truth["gain"].attrs["description"] = "keV per channel"
        truth["noise"].attrs["description"] = (
            "PyMca 'noise': FWHM(E) = sqrt(noise^2 + 2.3548^2*0.00385*fano*E), E in keV")
        truth["continuum_constant"].attrs["description"] = (
            "PyMca 'Linear' continuum: counts/channel = constant + slope*channel")
        truth.create_dataset("continuum_type", data=args.continuum)
        truth.create_dataset("seed", data=args.seed)
        d = truth.create_dataset("model", data=total)
        d.attrs["units"] = "counts"
        d.attrs["description"] = "expected counts per channel (noise-free)"
        d = truth.create_dataset("model_continuum", data=continuum)
        d.attrs["units"] = "counts"
        comp_g = truth.create_group("model_groups")
        comp_g.attrs["NX_class"] = "NXcollection"
        for k, v in comps.items():
            d = comp_g.create_dataset(k, data=v)
            d.attrs["units"] = "counts"
            d.attrs["sum_over_channels"] = float(v.sum())
        lines_g = truth.create_group("lines")
        lines_g.attrs["NX_class"] = "NXcollection"
        lines_g.attrs["description"] = (
            "PyMca's lines per group after merging lines closer than "
            "fit/deltaonepeak; ratio normalised to 1 within the group")
        for k, t in pc.line_table(mcafit).items():
            g = lines_g.create_group(k)
            g.create_dataset("line", data=numpy.array(t["lines"], dtype=h5py.string_dtype()))
            d = g.create_dataset("energy", data=numpy.array(t["energy_keV"]))
            d.attrs["units"] = "keV"
            g.create_dataset("ratio", data=numpy.array(t["ratio"]))
            d = g.create_dataset("fwhm", data=numpy.array(t["fwhm_keV"]))
            d.attrs["units"] = "keV"
        with open(cfg_path) as fcfg:
            truth.create_dataset("pymca_cfg", data=fcfg.read())
        truth.create_dataset("pymca_config_json", data=pc.config_json(mcafit.config))
        truth.create_dataset("pymca_version", data=pc.pymca_version())
    os.replace(tmp, out)
    return out, cfg_path


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    cfg = make_config(args)
    if args.write_template:
        pc.write_config(cfg, args.write_template)
        log("wrote %s" % args.write_template)
        return 0
    mcafit = pc.make_mcafit(cfg)
    names = pc.group_names(mcafit)
    base = {k: v for k, v in pc.DEFAULT_AREAS.items() if k in names}
    if args.scatter or any(k.startswith("Scatter") for k in names):
        base.update({k: v for k, v in pc.DEFAULT_SCATTER_AREAS.items() if k in names})
    areas = pc.parse_areas(args.areas, base)
    areas = {k: v * args.scale for k, v in areas.items()}
    x = numpy.arange(args.channels, dtype=numpy.float64)
    # the continuum actually modelled is the configuration's (an imported
    # --config may differ from --continuum)
    code = int(mcafit.config["fit"]["continuum"])
    if code not in (0, 1, 2):
        sys.stderr.write("%s: continuum %d not supported for the truth (use none, "
                         "constant or linear)\n" % (PROG, code))
        return 64
    args.continuum = ["none", "constant", "linear"][code]
    constant = args.constant * args.scale if code >= 1 else 0.0
    slope = args.slope * args.scale if code == 2 else 0.0
    total, continuum, comps = pc.pymca_model(mcafit, x, areas, constant, slope)
    if numpy.any(total < 0):
        sys.stderr.write("%s: negative expected counts (continuum slope too steep)\n"
                         % PROG)
        return 65
    out, cfg_path = write_stack(args, cfg, mcafit, x, total, continuum, comps,
                                 areas, constant, slope)
    log("wrote %s (%d x %d) and %s" % (out, args.realizations, args.channels, cfg_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
