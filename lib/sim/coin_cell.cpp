#include "sim/coin_cell.hpp"

#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include "core/error.hpp"
#include "xray/xraylib.hpp"
#include "xrf/model.hpp"

namespace opx::sim {

CoinCell CoinCell::nmc622() {
  // Depths chosen so that the steel spring's Fe K edge lies near 575 um, as
  // in the seed's profiles. Densities give the seed's areal loadings: NMC622
  // 13.5 mg/cm2 over 60 um (2.25 g/cm3), graphite 7.9 mg/cm2 over 70 um
  // (1.13 g/cm3); HOPG (C, 2.2), Ar gas, Al foil, Celgard separator (PP),
  // Cu foil, stainless steel (Fe/Cr/Ni). Ti traces stand for the electrolyte
  // residues; Mn, Co, Ni in the anode for transition-metal deposition.
  CoinCell c;
  c.layers = {
      {"HOPG window", 0, 180, "C", 2.2, {{"Ti", 2.0}}, 450},
      {"argon gap", 180, 320, "Ar", 0.0017, {{"Ar", 260}}, 8},
      {"Al current collector", 320, 335, "Al", 2.70, {}, 60},
      {"NMC622 cathode", 335, 395, "LiNi0.6Mn0.2Co0.2O2", 2.25,
       {{"Ni", 3200}, {"Co", 1050}, {"Mn", 1000}, {"Ti", 6}}, 120},
      {"separator", 395, 420, "C3H6", 0.55, {{"Ti", 3}}, 25},
      {"graphite anode", 420, 490, "C", 1.13, {{"Mn", 30}, {"Co", 6}, {"Ni", 9}}, 70},
      {"Cu current collector", 490, 500, "Cu", 8.96, {{"Cu", 2600}}, 300},
      {"electrolyte film", 500, 570, "C3H4O3", 1.3, {{"Ti", 1}}, 30},
      {"steel spring", 570, 2000, "Fe0.7Cr0.18Ni0.1Mn0.02", 7.9, {{"Fe", 5200}, {"Cr", 1400}, {"Ni", 700}, {"Mn", 90}}, 400},
  };
  return c;
}

double probing_volume_fwhm_um(double e) {
  // 42 um at Ti Ka (4.51 keV), 24 um at Cu Ka (8.04 keV): FWHM = 42 (E/4.51)^-0.965;
  // gives 30.7 um at Fe Ka (6.40 keV), against 30 um in the table.
  return 42.0 * std::pow(std::max(e, 1.0) / 4.51, -0.965);
}

namespace {

// Fraction of the probing volume (Gaussian along depth, centred at z) that
// overlaps the layer [top, bottom).
double overlap(double z, double top, double bottom, double fwhm) {
  double s = fwhm / 2.354820045 * std::sqrt(2.0);
  return 0.5 * (std::erf((bottom - z) / s) - std::erf((top - z) / s));
}

// Transmission of radiation of energy E along a path at 45 degrees from the
// surface down to depth z through the stack above it.
double transmission_to(const CoinCell& cell, double z, double energy_keV) {
  double mu_t = 0;
  for (const auto& l : cell.layers) {
    double top = l.top_um + cell.shift_um, bottom = l.bottom_um + cell.shift_um;
    double path = std::clamp(z, top, bottom) - top;
    if (path <= 0) continue;
    mu_t += xray::mass_attenuation(l.material, energy_keV) * l.density_g_cm3 * path * 1e-4;
  }
  return std::exp(-mu_t * std::sqrt(2.0));
}

}  // namespace

SimulatedScan simulate_depth_scan(const CoinCell& cell, const DepthScan& scan, const xrf::FitConfig& cfg_in,
                                  int channels) {
  // The spectral response comes from the fit model with every element of the
  // cell and the tube's scatter; no smooth background basis.
  xrf::FitConfig cfg = cfg_in;
  std::map<std::string, bool> present;
  for (const auto& l : cell.layers)
    for (const auto& e : l.emission_cps) present[e.first] = true;
  cfg.elements.clear();
  for (const auto& [el, _] : present) cfg.elements.push_back({el, {xray::Family::K}});
  cfg.fit.energy_min_keV = std::max(0.5, cfg.calibration.energy(0) + 0.01);
  cfg.fit.energy_max_keV = cfg.calibration.energy(channels - 1);
  cfg.fit.escape = true;
  xrf::SpectrumModel model(cfg, channels);
  xrf::Columns cols;
  xrf::ResponseParams p = model.initial_params();
  model.build_columns(p, cols);
  const int first = model.first_channel();
  // The K lines of interest are excited by the Cu K lines and by the
  // bremsstrahlung above them; 15 keV stands for that mix on the way in.
  const double exc_keV = 15.0;

  // Shape of the scattered bremsstrahlung per channel: Kramers' (E0/E - 1)
  // seen through the detector's efficiency and the attenuators.
  std::vector<double> continuum(channels, 0.0);
  for (int c = 0; c < channels; ++c) {
    double e = cfg.calibration.energy(c);
    if (e <= 0.3 || e >= 30) continue;
    double shape = (50.0 / e - 1.0) * model.config().detector.efficiency(e);
    for (const auto& a : cfg.attenuators) shape *= a.transmission(e);
    continuum[c] = shape * cfg.calibration.gain_keV / 0.01;
  }

  SimulatedScan out;
  out.channels = channels;
  out.counts.assign(std::size_t(scan.points) * channels, 0.f);
  std::mt19937_64 rng(scan.seed);
  std::vector<double> mu(channels);
  for (int k = 0; k < scan.points; ++k) {
    double z = scan.start_um + k * scan.step_um;
    out.depth_um.push_back(z);
    std::fill(mu.begin(), mu.end(), 0.0);
    double total_rate = 0;
    for (std::size_t g = 0; g < model.groups().size(); ++g) {
      const auto& grp = model.groups()[g];
      double e_line = grp.lines.front().energy_keV;
      double fwhm = probing_volume_fwhm_um(e_line);
      double rate = 0;
      for (const auto& l : cell.layers) {
        double top = l.top_um + cell.shift_um, bottom = l.bottom_um + cell.shift_um;
        double ov = overlap(z, top, bottom, fwhm);
        if (ov < 1e-9) continue;
        double mid = std::clamp(z, top, bottom);
        double absorb = transmission_to(cell, mid, exc_keV) * transmission_to(cell, mid, e_line);
        if (grp.kind == xrf::GroupKind::fluorescence) {
          std::string el = grp.name.substr(0, grp.name.find(' '));
          for (const auto& [sym, cps] : l.emission_cps) {
            if (sym != el) continue;
            double factor = (l.name == "graphite anode" && sym == "Mn") ? cell.anode_mn_factor : 1.0;
            rate += cps * factor * ov * absorb;
          }
        } else if (grp.kind == xrf::GroupKind::rayleigh) {
          rate += 0.45 * l.scatter_cps * ov * absorb;
        } else if (grp.kind == xrf::GroupKind::compton) {
          rate += 0.55 * l.scatter_cps * ov * absorb;
        }
      }
      total_rate += rate;
      for (int r = cols.lo[g]; r < cols.hi[g]; ++r) mu[first + r] += rate * cols.a(r, g);
    }
    // Scattered bremsstrahlung: a smooth continuum that rises towards low
    // energy (absorbed below ~2 keV by air and window), proportional to the
    // scatter in the probing volume.
    double scatter = 0;
    for (const auto& l : cell.layers)
      scatter += l.scatter_cps * overlap(z, l.top_um + cell.shift_um, l.bottom_um + cell.shift_um, 30.0);
    for (int c = 0; c < channels; ++c) mu[c] += 0.0001 * scatter * continuum[c];
    total_rate += 0.0001 * scatter * 400;
    // Non-paralyzable dead time: live = real / (1 + n tau).
    double live = scan.real_time_s / (1.0 + total_rate * scan.dead_time_s);
    out.live_time_s.push_back(live);
    out.real_time_s.push_back(scan.real_time_s);
    float* row = out.counts.data() + std::size_t(k) * channels;
    for (int c = 0; c < channels; ++c) {
      double m = mu[c] * live;
      if (scan.noise) {
        std::poisson_distribution<long> pd(std::max(m, 0.0));
        row[c] = static_cast<float>(m > 0 ? pd(rng) : 0);
      } else {
        row[c] = static_cast<float>(m);
      }
    }
  }
  return out;
}

}  // namespace opx::sim
