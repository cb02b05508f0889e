#include "xray/detector.hpp"

#include <xraylib/xraylib.h>

#include <cmath>
#include <memory>

#include "xray/xraylib.hpp"

namespace opx::xray {

double Layer::transmission(double energy_keV) const {
  if (thickness_um <= 0) return 1.0;
  return xray::transmission(material, density_g_cm3, thickness_um * 1e-4, energy_keV);
}

double Detector::default_pair_energy_keV(const std::string& m) {
  if (m == "Ge") return 0.00296;
  if (m == "CdTe" || m == "CdZnTe") return 0.00443;
  return 0.00385;
}

double Detector::sigma_keV(double e) const {
  double s_noise = noise_fwhm_keV / 2.354820045;
  return std::sqrt(s_noise * s_noise + pair_energy_keV * fano * std::max(e, 0.0));
}

double Detector::efficiency(double e) const {
  double t = 1.0;
  for (const auto& layer : window) t *= layer.transmission(e);
  double mu = mass_photoabsorption(material, e);
  return t * (1.0 - std::exp(-mu * density_g_cm3 * thickness_mm * 0.1));
}

std::vector<EscapeLine> escape_lines(const Detector& det, double e, double min_fraction) {
  std::vector<EscapeLine> out;
  // Crystal composition: parse the formula once per call (cheap next to the fit).
  xrl_error* err = nullptr;
  compoundData* cd = CompoundParser(det.material.c_str(), &err);
  if (err) {
    xrl_error_free(err);
    return out;
  }
  std::unique_ptr<compoundData, void (*)(compoundData*)> guard(cd, FreeCompoundData);
  double tau = mass_photoabsorption(det.material, e);
  double mu_e = mass_attenuation(det.material, e);
  if (tau <= 0) return out;
  for (int i = 0; i < cd->nElements; ++i) {
    int Z = cd->Elements[i];
    double edge = edge_energy_keV(Z, 0);
    if (e <= edge) continue;
    xrl_error* e1 = nullptr;
    double tau_k = CS_Photo_Partial(Z, 0, e, &e1);
    if (e1) { xrl_error_free(e1); continue; }
    double frac_k = cd->massFractions[i] * tau_k / tau;
    double omega = fluorescence_yield(Z, 0);
    for (const auto& line : family_lines(Z, Family::K)) {
      double p = radiative_rate(Z, line.code);
      double mu_l = mass_attenuation(det.material, line.energy_keV);
      double r = mu_e / mu_l;
      double geom = 0.5 * (1.0 - std::log1p(r) / r);
      double f = omega * p * frac_k * geom;
      if (f < min_fraction) continue;
      out.push_back({line.energy_keV, f, element_symbol(Z) + " " + line.iupac + " escape"});
    }
  }
  return out;
}

}  // namespace opx::xray
