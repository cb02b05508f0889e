#pragma once
// Energy-dispersive detector physics: efficiency, resolution and escape peaks.
#include <string>
#include <vector>

namespace opx::xray {

// A layer in the path between sample and detector crystal (Be window, air,
// Kapton foil, dead layer): transmission exp(-mu/rho * rho * t).
struct Layer {
  std::string material;     // element or formula understood by xraylib
  double density_g_cm3 = 0;
  double thickness_um = 0;
  double transmission(double energy_keV) const;
};

struct Detector {
  std::string material = "Si";   // crystal: Si, Ge, CdTe
  double density_g_cm3 = 2.33;
  double thickness_mm = 0.45;
  std::vector<Layer> window{{"Be", 1.848, 12.5}};
  double noise_fwhm_keV = 0.100;  // electronic noise, FWHM
  double fano = 0.114;
  // Mean energy to create one electron-hole pair: 3.85 eV (Si, as in PyMca),
  // 2.96 eV (Ge), 4.43 eV (CdTe). Defaulted from the material.
  double pair_energy_keV = 0.00385;

  // Gaussian sigma of a line at energy E (keV): sqrt((noise/2.3548)^2 + eps*F*E).
  double sigma_keV(double energy_keV) const;
  double fwhm_keV(double energy_keV) const { return 2.354820045 * sigma_keV(energy_keV); }
  // Intrinsic full-energy efficiency: window transmission x absorption in the crystal.
  double efficiency(double energy_keV) const;
  static double default_pair_energy_keV(const std::string& material);
};

// An escape peak produced when a fluorescence photon of the crystal leaves it:
// it sits at `energy_keV` below the parent and carries `fraction` of the
// parent's counts (relative to the photopeak).
struct EscapeLine {
  double energy_shift_keV;
  double fraction;
  std::string label;   // e.g. "Si KL3 escape"
};

// Escape peaks of a photon of energy E absorbed at normal incidence in a
// thick crystal (the semi-infinite-slab formula of Reed & Ware, 1972):
//   f = omega_K * p_line * (tau_K/tau) * 1/2 * [1 - (mu_l/mu_E) ln(1 + mu_E/mu_l)]
// summed per element of the crystal; lines below `min_fraction` are dropped.
std::vector<EscapeLine> escape_lines(const Detector& det, double energy_keV, double min_fraction = 1e-5);

}  // namespace opx::xray
