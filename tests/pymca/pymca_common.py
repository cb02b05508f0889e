"""Shared helpers for the PyMca cross-check scripts (tests/pymca, bench/pymca).

Standard library + numpy + h5py + PyMca5 only.  Run with Debian's interpreter,
/usr/bin/python3 (python3-pymca5 is installed for it, not for other pythons).

Everything here drives PyMca's own classes; nothing re-implements its physics:
  * the fit configuration is a PyMca ConfigDict (the .cfg format),
  * the forward model is PyMca5.PyMcaPhysics.xrf.ClassMcaTheory.McaTheory.mcatheory,
  * the line tables (energies, rates after attenuators/detector efficiency,
    merging of lines closer than fit/deltaonepeak) are McaTheory.PEAKS0.
"""

import copy
import json
import os
import sys
import time

import numpy

try:
    from PyMca5.PyMcaPhysics.xrf import ClassMcaTheory
    from PyMca5.PyMcaIO import ConfigDict
    import PyMca5
except ImportError as exc:  # pragma: no cover - environment problem
    sys.stderr.write(
        "%s: cannot import PyMca5 (%s); run with /usr/bin/python3 and "
        "install Debian's python3-pymca5\n" % (os.path.basename(sys.argv[0]), exc))
    sys.exit(69)  # EX_UNAVAILABLE

HERE = os.path.dirname(os.path.abspath(__file__))
TEMPLATE_CFG = os.path.join(HERE, "nmc_cu_tube.cfg")

# NMC coin cell seen through a Cu-tube confocal micro-XRF set-up.
ELEMENTS = ["Ar", "Ti", "Cr", "Mn", "Fe", "Co", "Ni", "Cu"]
GROUPS = ["%s K" % e for e in ELEMENTS]

# True group areas (counts in the whole group, all its lines, see README):
# a ~30 s confocal spectrum of the cathode: Ni, Mn, Co major (NMC), Cu from
# the current collector / tube, Ar from the air path, Ti/Cr/Fe traces.
DEFAULT_AREAS = {
    "Ar K": 2.0e4,
    "Ti K": 3.0e3,
    "Cr K": 4.0e3,
    "Mn K": 6.0e4,
    "Fe K": 8.0e3,
    "Co K": 5.0e4,
    "Ni K": 1.5e5,
    "Cu K": 1.0e5,
}
# Scatter of the Cu tube's Ka line (bench only: degenerate with "Cu K").
DEFAULT_SCATTER_AREAS = {
    "Scatter Peak000": 2.0e4,     # Rayleigh (elastic) at the excitation energy
    "Scatter Compton000": 3.0e4,  # Compton at E/(1+E/511(1-cos(alpha_in+alpha_out)))
}
CU_KA1_KEV = 8.0478  # PyMca's own Cu KL3 energy (Elements.getxrayenergy)

# Linear continuum, PyMca 'Linear': counts/channel = Constant + 1st Order * channel
DEFAULT_CONSTANT = 30.0
DEFAULT_SLOPE = -0.01


def pymca_version():
    return getattr(PyMca5, "version", lambda: "unknown")()


def environment():
    """What shapes the timings: recorded, never changed."""
    env = {}
    for key in ("OPENBLAS_CORETYPE", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS",
                "MKL_NUM_THREADS"):
        env[key] = os.environ.get(key)
    env["nproc"] = os.cpu_count()
    env["python"] = sys.version.split()[0]
    env["executable"] = sys.executable
    env["numpy"] = numpy.__version__
    try:
        import h5py
        env["h5py"] = h5py.__version__
    except ImportError:
        env["h5py"] = None
    env["pymca"] = pymca_version()
    return env


# --------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------
CONTINUUM_CODES = {"none": 0, "constant": 1, "linear": 2}


def build_config(zero=0.0, gain=0.01, noise=0.1, fano=0.114,
                 continuum="linear", xmin=100, xmax=1200,
                 scatter=False, snip=False, snipwidth=30,
                 free_fano=False, maxiter=50, elements=None):
    """The cross-check configuration as a PyMca ConfigDict.

    Starts from PyMca's own default (/usr/share/pymca/McaTheory.cfg, as loaded
    by McaTheory()) and changes only what the README documents.
    """
    base = ClassMcaTheory.McaTheory()  # loads PyMca's default McaTheory.cfg
    cfg = ConfigDict.ConfigDict()
    cfg.update(copy.deepcopy(base.getConfiguration()))
    # keys McaTheory adds to its copy at configure time; drop them from the file
    for key in ("fisx",):
        cfg.pop(key, None)
    elements = ELEMENTS if elements is None else elements
    cfg["peaks"] = {e: "K" for e in elements}

    fit = cfg["fit"]
    fit["hypermetflag"] = 1        # bit 0 only: pure Gaussian, no tails/step
    fit["fitfunction"] = 0         # 0 = hypermet family (1 = pseudo-Voigt)
    fit["continuum"] = CONTINUUM_CODES[continuum]
    fit["linpolorder"] = 1
    fit["stripflag"] = 1 if snip else 0
    fit["stripalgorithm"] = 1      # SNIP (only one FastXRFLinearFit accepts)
    fit["snipwidth"] = snipwidth
    fit["stripfilterwidth"] = 1
    fit["stripanchorsflag"] = 0
    fit["stripanchorslist"] = [0, 0, 0, 0]
    fit["escapeflag"] = 0
    fit["sumflag"] = 0
    fit["linearfitflag"] = 0
    fit["fitweight"] = 1           # Poisson weights sigma = sqrt(max(y,1))
    fit["use_limit"] = 1
    fit["xmin"] = int(xmin)
    fit["xmax"] = int(xmax)
    fit["maxiter"] = int(maxiter)
    fit["deltachi"] = 0.001
    fit["deltaonepeak"] = 0.010
    fit["strategyflag"] = 0
    if scatter:
        # one excitation energy (the Cu Ka1 line of the tube) with scatter on:
        # PyMca adds one Rayleigh and one Compton peak.  Without a matrix
        # PyMca accepts a single energy only, so Cu Kb scatter is not modelled.
        fit["energy"] = [CU_KA1_KEV]
        fit["energyweight"] = [1.0]
        fit["energyflag"] = [1]
        fit["energyscatter"] = [1]
        fit["scatterflag"] = 1
    else:
        fit["energy"] = [None]
        fit["energyweight"] = [1.0]
        fit["energyflag"] = [0]
        fit["energyscatter"] = [0]
        fit["scatterflag"] = 0

    det = cfg["detector"]
    det["detele"] = "Si"
    det["zero"] = float(zero)
    det["gain"] = float(gain)
    det["noise"] = float(noise)
    det["fano"] = float(fano)
    det["sum"] = 0.0
    det["fixedzero"] = 0
    det["fixedgain"] = 0
    det["fixednoise"] = 0
    det["fixedfano"] = 0 if free_fano else 1
    det["fixedsum"] = 1
    det["deltazero"] = 0.05
    det["deltagain"] = 0.0005
    det["deltanoise"] = 0.05
    det["deltafano"] = 0.05
    det["deltasum"] = 1e-8

    att = cfg["attenuators"]
    for key in list(att.keys()):
        if key.upper() != "MATRIX":
            att[key][0] = 0
    # Matrix off (no fundamental-parameter matrix); its angles are still
    # what PyMca uses for the Compton energy when scatter is on.
    att["Matrix"] = [0, "MULTILAYER", 0.0, 0.0, 45.0, 45.0]
    # Detector entrance window and crystal: they set the line ratios inside
    # each group (transmission of the window x absorption in 450 um Si).
    att["window"] = [1, "Be1", 1.848, 0.0008, 1.0]
    att["Detector"] = [1, "Si1", 2.33, 0.045, 1.0]

    cfg["peakshape"]["eta_factor"] = 0.0
    cfg["peakshape"]["fixedeta_factor"] = 1
    cfg.setdefault("concentrations", {})
    cfg["concentrations"]["useautotime"] = 0
    cfg["concentrations"]["usematrix"] = 0
    return cfg


def read_config(path):
    cfg = ConfigDict.ConfigDict()
    cfg.read(path)
    return cfg


def write_config(cfg, path):
    d = ConfigDict.ConfigDict()
    d.update(copy.deepcopy(dict(cfg)))
    if os.path.exists(path):
        os.remove(path)
    d.write(path)


def config_text(cfg):
    """The .cfg text of a configuration (as PyMca writes it)."""
    import tempfile
    fd, tmp = tempfile.mkstemp(suffix=".cfg")
    os.close(fd)
    try:
        write_config(cfg, tmp)
        with open(tmp) as f:
            return f.read()
    finally:
        os.remove(tmp)


def _jsonable(obj):
    if isinstance(obj, dict):
        return {str(k): _jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_jsonable(v) for v in obj]
    if isinstance(obj, numpy.ndarray):
        return _jsonable(obj.tolist())
    if isinstance(obj, (numpy.integer,)):
        return int(obj)
    if isinstance(obj, (numpy.floating,)):
        return float(obj)
    if isinstance(obj, (str, int, float, bool)) or obj is None:
        return obj
    return str(obj)


def config_json(cfg):
    return json.dumps(_jsonable(dict(cfg)), sort_keys=True)


def make_mcafit(cfg):
    mcafit = ClassMcaTheory.McaTheory()
    mcafit.configure(copy.deepcopy(dict(cfg)))
    return mcafit


def group_names(mcafit):
    return list(mcafit.PARAMETERS[mcafit.NGLOBAL:])


def line_table(mcafit):
    """Per group: the lines PyMca puts in it (after merging), with energy
    (keV), relative rate (normalised to 1 in the group, after window and
    detector efficiency) and FWHM (keV) at the configured noise/fano."""
    out = {}
    for name, peaks, names in zip(group_names(mcafit), mcafit.PEAKS0,
                                  mcafit.PEAKS0NAMES):
        peaks = numpy.asarray(peaks)
        out[name] = {
            "lines": list(names),
            "ratio": peaks[:, 0].tolist(),
            "energy_keV": peaks[:, 1].tolist(),
            "fwhm_keV": peaks[:, 2].tolist(),
        }
    return out


# --------------------------------------------------------------------------
# forward model
# --------------------------------------------------------------------------
def parameter_vector(mcafit, x, areas, constant=0.0, slope=0.0):
    """PyMca's parameter vector for the given group areas, with zero, gain,
    noise, fano from the configuration.  setData + estimate are only used to
    let PyMca build the vector (and its codes); areas are then overwritten."""
    x = numpy.asarray(x, dtype=numpy.float64)
    mcafit.setData(x, numpy.ones_like(x))
    mcafit.estimate()
    par = numpy.array(mcafit.parameters, dtype=numpy.float64)
    det = mcafit.config["detector"]
    names = mcafit.PARAMETERS
    par[names.index("Zero")] = det["zero"]
    par[names.index("Gain")] = det["gain"]
    par[names.index("Noise")] = det["noise"]
    par[names.index("Fano")] = det["fano"]
    par[names.index("Sum")] = 0.0
    if "Constant" in names:
        par[names.index("Constant")] = constant
    if "1st Order" in names:
        par[names.index("1st Order")] = slope
    par[mcafit.NGLOBAL:] = 0.0
    unknown = set(areas) - set(group_names(mcafit))
    if unknown:
        raise ValueError("groups not in the PyMca configuration: %s (have %s)"
                         % (sorted(unknown), group_names(mcafit)))
    for name, value in areas.items():
        par[names.index(name)] = value
    return par


def pymca_model(mcafit, x, areas, constant=0.0, slope=0.0):
    """Expected counts per channel from PyMca's own McaTheory.mcatheory.

    Returns (total, continuum, {group: contribution}).
    """
    x = numpy.asarray(x, dtype=numpy.float64)
    par = parameter_vector(mcafit, x, areas, constant, slope)
    total = numpy.asarray(mcafit.mcatheory(par, x), dtype=numpy.float64)
    peaks_only = numpy.asarray(mcafit.mcatheory(par, x, continuum=0),
                               dtype=numpy.float64)
    continuum = total - peaks_only
    comps = {}
    for name in group_names(mcafit):
        p = par.copy()
        p[mcafit.NGLOBAL:] = 0.0
        p[mcafit.PARAMETERS.index(name)] = par[mcafit.PARAMETERS.index(name)]
        comps[name] = numpy.asarray(mcafit.mcatheory(p, x, continuum=0),
                                    dtype=numpy.float64)
    return total, continuum, comps


def parse_areas(text, base):
    """'Mn K=6e4,Fe K=8e3' -> dict updated from base."""
    areas = dict(base)
    if not text:
        return areas
    for item in text.split(","):
        if not item.strip():
            continue
        key, _, value = item.partition("=")
        areas[key.strip()] = float(value)
    return areas


# --------------------------------------------------------------------------
# HDF5 stack I/O
# --------------------------------------------------------------------------
def open_stack(spec):
    """'FILE.h5' or 'FILE.h5:/path' -> (h5py.File, dataset)."""
    import h5py
    path, dset = spec, None
    if ":" in spec and not os.path.exists(spec):
        path, _, dset = spec.rpartition(":")
    prog = os.path.splitext(os.path.basename(sys.argv[0]))[0]
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        sys.stderr.write("%s: %s: cannot open: %s\n" % (prog, path, exc))
        sys.exit(66)  # EX_NOINPUT
    if dset is None:
        for candidate in ("/entry/instrument/mca/data", "/entry/data/counts"):
            if candidate in f:
                dset = candidate
                break
        else:
            sys.stderr.write("%s: %s: no /entry/instrument/mca/data; give "
                             "FILE.h5:/path\n" % (prog, path))
            sys.exit(65)  # EX_DATAERR
    if dset not in f:
        sys.stderr.write("%s: %s: no dataset %s\n" % (prog, path, dset))
        sys.exit(65)
    return f, f[dset]


def read_truth(h5file):
    """Truth written by make_spectra.py, or None."""
    if "/entry/truth" not in h5file:
        return None
    g = h5file["/entry/truth"]
    names = [n.decode() if isinstance(n, bytes) else str(n)
             for n in g["group_names"][()]]
    areas = g["group_areas"][()]
    truth = {"areas": dict(zip(names, [float(a) for a in areas]))}
    for key in ("zero", "gain", "noise", "fano", "continuum_constant",
                "continuum_slope"):
        if key in g:
            truth[key] = float(g[key][()])
    if "pymca_cfg" in g:
        v = g["pymca_cfg"][()]
        truth["pymca_cfg"] = v.decode() if isinstance(v, bytes) else v
    if "model" in g and "model_groups" in g:
        truth["_model"] = g["model"][()]
        truth["_model_groups"] = {k: g["model_groups"][k][()] for k in g["model_groups"]}
        if "continuum_type" in g:
            v = g["continuum_type"][()]
            truth["continuum_type"] = v.decode() if isinstance(v, bytes) else v
    return truth


def cramer_rao(truth, xmin, xmax):
    """Best possible standard deviation of each area for a fit of one Poisson
    realisation of the truth model with the nonlinear parameters (calibration,
    width) known: sqrt(diag((A^T W A)^-1)), A = the truth's unit-area group
    shapes + the continuum terms, W = 1/model (Poisson variance), over the
    fit range [xmin, xmax].  A fitter that also refines the calibration and
    width can only do slightly worse; one that matches this is efficient."""
    if "_model" not in truth:
        return {}
    model = truth["_model"]
    x = numpy.arange(model.size, dtype=numpy.float64)
    names = [k for k in truth["_model_groups"] if truth["areas"].get(k)]
    cols = [truth["_model_groups"][k] / truth["areas"][k] for k in names]
    ctype = truth.get("continuum_type", "linear")
    if ctype in ("constant", "linear"):
        cols.append(numpy.ones_like(x))
    if ctype == "linear":
        cols.append(x)
    sl = slice(int(xmin), int(xmax) + 1)
    a = numpy.array(cols).T[sl]
    w = 1.0 / numpy.maximum(model[sl], 1e-12)
    cov = numpy.linalg.inv(a.T @ (a * w[:, None]))
    sd = numpy.sqrt(numpy.diag(cov))
    return {k: float(sd[i]) for i, k in enumerate(names)}


def config_from_text(text):
    import tempfile
    fd, tmp = tempfile.mkstemp(suffix=".cfg")
    with os.fdopen(fd, "w") as f:
        f.write(text)
    try:
        return read_config(tmp)
    finally:
        os.remove(tmp)


class Timer:
    def __init__(self):
        self.t0 = time.perf_counter()

    def __call__(self):
        return time.perf_counter() - self.t0
