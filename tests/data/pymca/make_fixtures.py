#!/usr/bin/python3
"""Writes the PyMca fit configurations that tests/unit/test_xrf_pymca_import.cpp
converts, with PyMca's own ConfigDict writer, starting from the defaults that
PyMca's fit engine (ClassMcaTheory.McaTheory) loads, so the files are exactly
what PyMca writes. Needs Debian's python3-pymca5: run with /usr/bin/python3.

  /usr/bin/python3 tests/data/pymca/make_fixtures.py tests/data/pymca

steel.cfg next to this script is PyMca's own example (/usr/share/pymca/Steel.cfg).
"""
import copy
import os
import sys

from PyMca5.PyMcaIO import ConfigDict
from PyMca5.PyMcaPhysics.xrf import ClassMcaTheory, XRayTubeEbel


def defaults():
    return copy.deepcopy(ClassMcaTheory.McaTheory().config)


def monochromatic(cfg):
    """Mo K-alpha beam, SNIP + linear continuum, full hypermet, a funny filter."""
    cfg["peaks"] = {"Ti": "K", "Mn": "K", "Fe": ["Ka", "Kb"], "Pb": ["L", "M"]}
    cfg["detector"].update({"zero": -0.012, "gain": 0.0101, "noise": 0.11, "fano": 0.12,
                            "fixedzero": 0, "fixedgain": 0, "fixednoise": 0, "fixedfano": 1,
                            "detele": "Si"})
    att = cfg["attenuators"]
    att["window"] = [1, "Be1", 1.848, 0.0008, 1.0]
    att["deadlayer"] = [1, "Si1", 2.33, 1.0e-5, 1.0]
    att["kapton"] = [1, "Kapton", 1.42, 0.00075, 1.0]
    att["atmosphere"] = [1, "Air", 0.0012048, 1.0, 1.0]
    att["Filter 6"] = [1, "Al1", 2.7, 0.001, 0.5]
    att["Detector"] = [1, "Si1", 2.33, 0.05, 1.0]
    att["Matrix"] = [0, "MULTILAYER", 0.0, 0.0, 40.0, 60.0, 0, 90.0]
    fit = cfg["fit"]
    fit.update({"energy": [17.48], "energyweight": [1.0], "energyflag": [1], "energyscatter": [1],
                "scatterflag": 1, "stripflag": 1, "stripalgorithm": 1, "snipwidth": 25,
                "stripfilterwidth": 5, "continuum": 2, "hypermetflag": 15, "xmin": 150,
                "xmax": 1800, "escapeflag": 1, "sumflag": 1, "maxiter": 20, "fitweight": 1,
                "use_limit": 1})
    cfg["peakshape"].update({"st_arearatio": 0.05, "st_sloperatio": 0.5, "lt_arearatio": 0.02,
                             "lt_sloperatio": 10.0, "step_heightratio": 1e-4,
                             "fixedst_arearatio": 0, "fixedst_sloperatio": 0,
                             "fixedlt_arearatio": 1, "fixedlt_sloperatio": 1,
                             "fixedstep_heightratio": 1})
    return cfg


def tube(cfg):
    """A Rh tube at 40 kV: the energy list PyMca's tube tab generates (Ebel model), an iron matrix."""
    cfg["peaks"] = {"Cr": "K", "Fe": "K", "Ni": "K", "Cu": "K"}
    cfg["detector"].update({"zero": 0.005, "gain": 0.02, "noise": 0.09, "fano": 0.11})
    cfg["attenuators"]["Detector"] = [1, "Si1", 2.33, 0.045, 1.0]
    cfg["attenuators"]["window"] = [1, "Be1", 1.848, 0.00125, 1.0]
    # PyMca accepts several energies only with a sample matrix.
    cfg["attenuators"]["Matrix"] = [1, "Fe1", 7.874, 0.01, 45.0, 45.0, 0, 90.0]
    energies, weights, flags = XRayTubeEbel.generateLists(
        "Rh", 40.0, window=["Be", 1.848, 0.0075], alphae=90.0, alphax=90.0)
    fit = cfg["fit"]
    fit.update({"energy": list(energies), "energyweight": list(weights),
                "energyflag": [1] * len(energies), "energyscatter": list(flags),
                "scatterflag": 1, "stripflag": 0, "continuum": 4, "linpolorder": 3,
                "hypermetflag": 1, "xmin": 50, "xmax": 1000, "escapeflag": 0, "sumflag": 0})
    cfg["tube"] = {"anode": "Rh", "voltage": 40.0, "window": "Be", "windowthickness": 0.0075,
                   "windowdensity": 1.848, "filter1": "-", "filter1thickness": 0.0,
                   "filter1density": 0.0, "anodethickness": 0.0002, "anodedensity": 12.41,
                   "alphax": 90.0, "alphae": 90.0, "transmission": 0, "deltaplotting": 0.1}
    return cfg


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    for name, make in (("mono-hypermet.cfg", monochromatic), ("rh-tube.cfg", tube)):
        cfg = ConfigDict.ConfigDict(initdict=make(defaults()))
        path = os.path.join(out, name)
        cfg.write(path)
        # PyMca's fit engine must accept what was written.
        check = ConfigDict.ConfigDict()
        check.read(path)
        ClassMcaTheory.McaTheory().configure(check)
        print("wrote", path)


if __name__ == "__main__":
    main()
