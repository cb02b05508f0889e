#pragma once
// A virtual NMC/graphite coin cell seen by a laboratory confocal micro-XRF
// spectrometer (the BLiX setup of the CMXRF seed): the layer stack under the
// HOPG window, the confocal probing volume whose depth FWHM shrinks with
// line energy (42, 30 and 24 um at Ti, Fe and Cu Ka), absorption of the
// exciting beam and of the fluorescence by the layers above, Rayleigh and
// Compton scatter of the Cu tube lines, and Poisson counting with dead time.
// It stands in for the instrument until cmx-acquire drives one, and feeds
// demos, tests of the pipeline and benchmarks.
#include <cstdint>
#include <string>
#include <vector>

#include "xrf/config.hpp"

namespace opx::sim {

struct CellLayer {
  std::string name;
  double top_um, bottom_um;          // depth below the window surface
  std::string material;              // formula for absorption (xraylib)
  double density_g_cm3;
  // Fluorescence yield per element, counts/s at full probing-volume overlap
  // and no absorption; keys are element symbols ("Mn").
  std::vector<std::pair<std::string, double>> emission_cps;
  double scatter_cps;                // Rayleigh + Compton of the tube lines
};

struct CoinCell {
  std::vector<CellLayer> layers;
  double shift_um = 0;               // the whole stack moved down by this much
  double anode_mn_factor = 1.0;      // Mn deposited in the anode, relative to the fresh cell
  static CoinCell nmc622();          // the seed's cell
};

struct DepthScan {
  double start_um = 0, step_um = 5;
  int points = 150;
  double real_time_s = 30;
  double dead_time_s = 1.5e-6;       // per count (non-paralyzable)
  std::uint64_t seed = 1;
  bool noise = true;
};

struct SimulatedScan {
  std::vector<double> depth_um;
  std::vector<float> counts;         // [points, channels]
  std::vector<double> live_time_s, real_time_s;
  int channels = 0;
};

// Depth FWHM of the probing volume at a line energy (Table 1 of the seed,
// BLiX spectrometer, as a power law through its three points).
double probing_volume_fwhm_um(double energy_keV);

// Simulates a depth scan with the spectral response of `cfg` (calibration,
// detector, excitation) on `channels` channels.
SimulatedScan simulate_depth_scan(const CoinCell& cell, const DepthScan& scan, const xrf::FitConfig& cfg,
                                  int channels);

}  // namespace opx::sim
