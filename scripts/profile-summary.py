#!/usr/bin/python3
"""Prints, for each cmx-fit result of a depth profile, the depth of the
cathode (maximum of Ni K) and the mean net count rates of Mn, Co and Ni K in
the cathode and 60-110 um below it (the anode), with Fe K at the steel."""
import sys

import h5py
import numpy as np

print(f"{'profile':<24} {'cathode_um':>10} {'Ni_cathode':>10} {'Mn_cathode':>10} {'Mn_anode':>9} {'Mn_anode_err':>12} {'steel_um':>9}")
for path in sys.argv[1:]:
    with h5py.File(path, "r") as f:
        depth = f["/entry/Ni_K/depth"][()]
        ni = f["/entry/Ni_K/net_count_rate"][()]
        mn = f["/entry/Mn_K/net_count_rate"][()]
        mn_err = f["/entry/Mn_K/net_count_rate_errors"][()]
        fe = f["/entry/Fe_K/net_count_rate"][()]
    k = int(np.argmax(ni))
    cathode = depth[k]
    anode = (depth > cathode + 60) & (depth < cathode + 110)
    # Steel: where Fe K first reaches half its maximum.
    steel = depth[int(np.argmax(fe > 0.5 * fe.max()))]
    n = max(int(anode.sum()), 1)
    print(f"{path.split('/')[-1]:<24} {cathode:10.1f} {ni[k]:10.1f} {mn[k]:10.1f} {mn[anode].mean():9.2f} "
          f"{np.sqrt((mn_err[anode] ** 2).sum()) / n:12.2f} {steel:9.1f}")
