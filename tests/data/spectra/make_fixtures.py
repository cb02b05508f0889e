#!/usr/bin/python3
"""Writes the spectrum-file fixtures of tests/data/spectra/ (standard library only).

    /usr/bin/python3 tests/data/spectra/make_fixtures.py

One simulated confocal micro-XRF spectrum of an NMC coin cell under a Cu tube
(1024 channels, 20 eV/channel, Poisson noise from a fixed seed) is written in
each supported format, laid out as the instruments' own software writes it:
  nmc_cu_tube.mca       Amptek DppMCA text: CRLF lines, 2-point keV calibration,
                        ROIs, DP5 configuration and DPP status (a Windows-1252
                        degree sign in "Board Temp"), as a PX5 would save it
  nmc_cu_tube.spx       Bruker Esprit XML (WINDOWS-1252), with the M4 Tornado's
                        hardware, detector, XRF (tube) and spectrum headers
  nmc_energy.csv        "energy_keV,counts" with '#' comments
  nmc_counts.txt        one bare column of counts
  nmc_semicolon.csv     "Energy (eV);Counts", decimal commas (a European export)
expected.json holds what a correct reader must find in them, computed here and
not by the reader under test. bad/ holds malformed files, one fault each.
The output is deterministic: rerunning the script rewrites identical files.
"""
import json
import math
import os
import random

HERE = os.path.dirname(os.path.abspath(__file__))
CHANNELS = 1024
OFFSET_KEV = -0.0412
GAIN_KEV = 0.0200
LIVE_TIME_S = 29.95
REAL_TIME_S = 31.25

# (energy keV, counts in the peak) of the lines a Cu-tube spectrum of an NMC
# cathode shows: Ar from air, the transition metals, Rayleigh-scattered Cu.
LINES = [(2.9577, 1800), (5.8988, 42000), (6.4904, 5900), (6.9303, 30500), (7.6494, 4300),
         (7.4782, 46000), (8.2647, 6600), (8.0478, 61000), (8.9053, 9000)]


def sigma_keV(e):
    # Detector resolution: electronic noise (FWHM 100 eV) plus Fano statistics in Si.
    noise = 0.100 / 2.3548
    return math.sqrt(noise * noise + 3.85e-3 * 0.114 * e)


def poisson(rng, mean):
    if mean < 30:  # Knuth's method
        limit, k, p = math.exp(-mean), 0, 1.0
        while True:
            p *= rng.random()
            if p <= limit:
                return k
            k += 1
    return max(0, int(round(rng.gauss(mean, math.sqrt(mean)))))


def simulate():
    rng = random.Random(20240305)
    counts = []
    for ch in range(CHANNELS):
        e = OFFSET_KEV + GAIN_KEV * ch
        background = 0.0 if e < 0.6 else 40.0 * math.exp(-((e - 9.5) / 6.0) ** 2) + 3.0
        mean = background
        for line_e, area in LINES:
            s = sigma_keV(line_e)
            mean += area * GAIN_KEV / (s * math.sqrt(2 * math.pi)) * math.exp(-0.5 * ((e - line_e) / s) ** 2)
        counts.append(poisson(rng, mean))
    return counts


def write(path, data, newline="\n", encoding="utf-8"):
    full = os.path.join(HERE, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    if isinstance(data, str):
        data = data.replace("\n", newline).encode(encoding)
    with open(full, "wb") as f:
        f.write(data)


def channel_of(e):
    return (e - OFFSET_KEV) / GAIN_KEV


def amptek(counts, end=True, extra_data=None):
    lines = ["<<PMCA SPECTRUM>>", "TAG - live_data", "DESCRIPTION - NMC622 coin cell, confocal point z=120um",
             "GAIN - 9.1", "THRESHOLD - 0", "LIVE_MODE - 0", "PRESET_TIME - 30",
             f"LIVE_TIME - {LIVE_TIME_S:.6f}", f"REAL_TIME - {REAL_TIME_S:.6f}",
             "START_TIME - 03/05/2024 14:02:09", "SERIAL_NUMBER - 23817",
             "<<CALIBRATION>>", "LABEL - keV",
             f"{channel_of(5.8988):.2f} 5.8988", f"{channel_of(8.0478):.2f} 8.0478",
             "<<ROI>>", "290 304", "397 412", "<<DATA>>"]
    lines += [str(c) for c in counts]
    if extra_data:
        lines += extra_data
    if not end:
        return "\n".join(lines) + "\n"
    lines += ["<<END>>", "<<DP5 CONFIGURATION>>",
              "RESC=?;    Reset Configuration", "CLCK=80;    20MHz/80MHz", "TPEA=4.000;    Peaking Time",
              "GAIN=9.100;    Total Gain (Analog * Fine)", "MCAS=NORM;    MCA Source",
              f"MCAC={len(counts)};    MCA/MCS Channels", "THSL=0.684;    Slow Threshold",
              "PRER=OFF;    Preset Real Time", "HVSE=130;    HV Set", "TECS=220;    TEC Set",
              "<<DP5 CONFIGURATION END>>", "<<DPP STATUS>>", "Device Type: PX5", "Serial Number: 23817",
              "Firmware: 6.08  Build:  6", "FPGA: 6.11", "Fast Count: 512771", "Slow Count: 498209",
              f"Accumulation Time: {LIVE_TIME_S:.6f}", f"Real Time: {REAL_TIME_S:.6f}", "Dead Time:       ",
              "HV Volt: 130V", "TEC Temp: 220K", "Board Temp: 32\u00b0C", "<<DPP STATUS END>>"]
    return "\n".join(lines) + "\n"


def bruker(counts, channel_count=None, cut_at=None):
    n = len(counts) if channel_count is None else channel_count
    text = f"""<?xml version="1.0" encoding="WINDOWS-1252" standalone="yes"?>
<TRTSpectrum>
<RTHeader/>
<ClassInstance Type="TRTSpectrum" Name="NMC622 point z=120\u00b5m">
<TRTHeaderedClass>
<ClassInstance Type="TRTSpectrumHardwareHeader">
<RealTime>{round(REAL_TIME_S * 1000)}</RealTime>
<LifeTime>{round(LIVE_TIME_S * 1000)}</LifeTime>
<DeadTime>4</DeadTime>
<ZeroPeakPosition>95</ZeroPeakPosition>
<ZeroPeakFrequency>800</ZeroPeakFrequency>
<PulseDensity>16880</PulseDensity>
<Amplification>40000</Amplification>
<ShapingTime>275000</ShapingTime>
</ClassInstance>
<ClassInstance Type="TRTDetectorHeader">
<Technology>SD3pr</Technology>
<Type>XFlash 430</Type>
<Serial>16442</Serial>
<DetectorThickness>0.45</DetectorThickness>
<SiDeadLayerThickness>0.029</SiDeadLayerThickness>
<WindowType>slew AP3.3 Mo</WindowType>
</ClassInstance>
<ClassInstance Type="TRTXrfHeader">
<Voltage>50</Voltage>
<Current>599</Current>
<Anode>45</Anode>
<TubeType>MCBM 50-0.6B Rh</TubeType>
<ExcitationAngle>5E1</ExcitationAngle>
<DetectionAngle>5E1</DetectionAngle>
<Atmosphere>Air</Atmosphere>
<!-- the tube window: a nested element, not a plain value -->
<TubeWindow><AtomicNumber>4</AtomicNumber><Thickness>1E2</Thickness></TubeWindow>
</ClassInstance>
</TRTHeaderedClass>
<ClassInstance Type="TRTSpectrumHeader">
<Date>5.3.2024</Date>
<Time>14:2:9</Time>
<ChannelCount>{n}</ChannelCount>
<CalibAbs>{OFFSET_KEV:.4E}</CalibAbs>
<CalibLin>{GAIN_KEV:.4E}</CalibLin>
<SigmaAbs>4.5E-4</SigmaAbs>
<SigmaLin>4.4E-4</SigmaLin>
</ClassInstance>
<Channels>{",".join(str(c) for c in counts)}</Channels>
</ClassInstance>
</TRTSpectrum>
"""
    if cut_at is not None:
        text = text[:text.index("<Channels>") + cut_at]
    return text


def main():
    counts = simulate()
    energies = [OFFSET_KEV + GAIN_KEV * ch for ch in range(CHANNELS)]

    write("nmc_cu_tube.mca", amptek(counts), newline="\r\n", encoding="cp1252")
    write("nmc_cu_tube.spx", bruker(counts), newline="\r\n", encoding="cp1252")
    write("nmc_energy.csv",
          "# simulated NMC622 spectrum, Cu tube\n"
          f"# live_time_s: {LIVE_TIME_S}\n# real_time_s: {REAL_TIME_S}\n"
          "energy_keV,counts\n" + "".join(f"{e:.4f},{c}\n" for e, c in zip(energies, counts)))
    write("nmc_counts.txt", "".join(f"{c}\n" for c in counts))
    write("nmc_semicolon.csv",
          "Energy (eV);Counts\n" + "".join(f"{e * 1000:.1f}".replace(".", ",") + f";{c}\n"
                                            for e, c in zip(energies, counts)))

    short = counts[280:344]  # 64 channels around Mn K, enough for one fault each
    write("bad/empty.mca", "")
    write("bad/no_data.mca", amptek(short).split("<<DATA>>")[0])
    write("bad/truncated.mca", amptek(short, end=False))
    bad = list(map(str, short))
    bad[17] = "12a"
    write("bad/non_numeric.mca", amptek(bad))
    bad = list(map(str, short))
    bad[40] = "-3"
    write("bad/negative.mca", amptek(bad))
    bad = list(map(str, short))
    bad[5] = "nan"
    write("bad/nan.mca", amptek(bad))
    write("bad/channel_count.spx", bruker(counts[:1000], channel_count=1024))
    write("bad/truncated.spx", bruker(counts, cut_at=1500))
    bad = list(map(str, short))
    bad[9] = "7x"
    write("bad/non_numeric.spx", bruker(bad))
    write("bad/negative.csv", "channel,counts\n" + "".join(
        f"{i},{-4 if i == 20 else c}\n" for i, c in enumerate(short)))
    write("bad/inf.csv", "channel,counts\n" + "".join(
        f"{i},{'inf' if i == 33 else c}\n" for i, c in enumerate(short)))
    write("bad/ragged.csv", "channel,counts\n" + "".join(
        f"{i},{c}{',1' if i == 12 else ''}\n" for i, c in enumerate(short)))
    write("bad/not_amptek.mca", "".join(f"{c}\n" for c in short))

    expected = {
        "channels": CHANNELS,
        "total_counts": sum(counts),
        "first_channel": 400,  # counts[400:408], by the Cu K alpha peak
        "counts_from_first_channel": counts[400:408],
        "counts_max": max(counts),
        "channel_of_max": counts.index(max(counts)),
        "live_time_s": LIVE_TIME_S,
        "real_time_s": REAL_TIME_S,
        "offset_keV": OFFSET_KEV,
        "gain_keV_per_channel": GAIN_KEV,
        "start_time": "2024-03-05T14:02:09",
        "bad_lines": {  # file -> the line (or element line) the reader must name
            "bad/non_numeric.mca": 20 + 17, "bad/negative.mca": 20 + 40, "bad/nan.mca": 20 + 5,
            "bad/truncated.mca": 19, "bad/negative.csv": 2 + 20, "bad/inf.csv": 2 + 33,
            "bad/ragged.csv": 2 + 12},
    }
    write("expected.json", json.dumps(expected, indent=2) + "\n")


if __name__ == "__main__":
    main()
