#!/usr/bin/python3
"""Writes a tiny NeXus stack of XRF spectra for the cmx-fit CLI cases, laid out
as cmx-sim and cmx-acquire write it, with at most one fault put in on purpose.

    /usr/bin/python3 make_stack.py OUT.h5 [FAULT] [--points N] [--channels N]

FAULT (none by default):
  negative        counts[1, 100] = -5
  nan             counts[2, 300] = NaN
  live-time-zero  live_time[1] = 0
  no-nxdata       no NXdata group and no @default: only /entry/instrument/mca/data
Spectra: Mn, Co, Ni K alpha/beta and Cu K alpha Gaussians on a flat background
at 10 eV per channel (the calibration of config/nmc-coin-cell-cu-tube.json),
Poisson noise from a fixed seed: the file is the same on every run.
Needs h5py and numpy (Debian's python3-h5py, run with /usr/bin/python3).
"""
import argparse

import h5py
import numpy as np

LINES_KEV = [(5.899, 4000), (6.490, 560), (6.930, 3000), (7.649, 420), (7.478, 9000), (8.265, 1300),
             (8.048, 2500)]


def spectra(points, channels, rng):
    energy = 0.01 * np.arange(channels)
    mean = np.full(channels, 3.0)
    for e, area in LINES_KEV:
        sigma = np.sqrt((0.1 / 2.3548) ** 2 + 3.85e-3 * 0.114 * e)
        mean += area * 0.01 / (sigma * np.sqrt(2 * np.pi)) * np.exp(-0.5 * ((energy - e) / sigma) ** 2)
    return rng.poisson(np.tile(mean, (points, 1))).astype(np.float32)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("output")
    p.add_argument("fault", nargs="?", default="none",
                   choices=["none", "negative", "nan", "live-time-zero", "no-nxdata"])
    p.add_argument("--points", type=int, default=3)
    p.add_argument("--channels", type=int, default=2048)
    a = p.parse_args()
    rng = np.random.default_rng(20240305)
    counts = spectra(a.points, a.channels, rng)
    live = np.full(a.points, 29.5)
    if a.fault == "negative":
        counts[1, 100] = -5
    elif a.fault == "nan":
        counts[2, 300] = np.nan
    elif a.fault == "live-time-zero":
        live[1] = 0.0
    with h5py.File(a.output, "w") as f:
        entry = f.create_group("entry")
        mca = entry.create_group("instrument/mca")
        data = mca.create_dataset("data", data=counts, compression="gzip")
        data.attrs["units"] = "counts"
        mca.create_dataset("live_time", data=live).attrs["units"] = "s"
        mca.create_dataset("calibration", data=np.array([0.0, 0.01, 0.0])).attrs["units"] = "keV"
        if a.fault != "no-nxdata":
            f.attrs["default"] = "entry"
            entry.attrs["NX_class"] = "NXentry"
            entry.attrs["default"] = "data"
            entry["instrument"].attrs["NX_class"] = "NXinstrument"
            mca.attrs["NX_class"] = "NXdetector"
            nxdata = entry.create_group("data")
            nxdata.attrs["NX_class"] = "NXdata"
            nxdata.attrs["signal"] = "counts"
            nxdata.attrs["axes"] = ["depth", "."]
            nxdata.attrs["depth_indices"] = 0
            nxdata["counts"] = data
            nxdata.create_dataset("depth", data=350.0 + 10.0 * np.arange(a.points)).attrs["units"] = "um"


if __name__ == "__main__":
    main()
