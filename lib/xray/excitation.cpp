#include "xray/excitation.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "xray/xraylib.hpp"

namespace opx::xray {

std::vector<SourceLine> Excitation::source_lines(double min_relative) const {
  std::vector<SourceLine> out;
  if (kind == Kind::monochromatic) {
    out.push_back({energy_keV, 1.0, fmt::format("{:.3f} keV", energy_keV)});
    return out;
  }
  int Z = atomic_number(anode);
  double total = 0;
  for (Family f : {Family::K, Family::L}) {
    int shell = f == Family::K ? 0 : 3;  // K or L3 edge decides whether the family is excited
    if (edge_energy_keV(Z, shell) >= voltage_kV) continue;
    // Weight families by their production at a typical 2/3 of the tube voltage.
    double e_exc = std::max(voltage_kV * 0.67, edge_energy_keV(Z, shell) * 1.05);
    for (const auto& line : family_lines(Z, f)) {
      if (line.energy_keV < 1.0) continue;
      double w = line_cross_section(Z, line.code, e_exc);
      for (const auto& layer : tube_window) w *= layer.transmission(line.energy_keV);
      if (w <= 0) continue;
      out.push_back({line.energy_keV, w, fmt::format("{} {}", anode, line.iupac)});
      total += w;
    }
  }
  for (auto& l : out) l.relative_intensity /= total;
  std::erase_if(out, [&](const SourceLine& l) { return l.relative_intensity < min_relative; });
  double kept = 0;
  for (auto& l : out) kept += l.relative_intensity;
  for (auto& l : out) l.relative_intensity /= kept;
  return out;
}

std::vector<Excitation::Bin> Excitation::spectrum(int bins, double line_fraction) const {
  std::vector<Bin> out;
  if (kind == Kind::monochromatic) {
    out.push_back({energy_keV, 1.0});
    return out;
  }
  const double e_min = 1.0;
  const double step = (voltage_kV - e_min) / bins;
  double cont_total = 0;
  for (int i = 0; i < bins; ++i) {
    double e = e_min + (i + 0.5) * step;
    double w = (voltage_kV / e - 1.0) * step;  // Kramers: N(E) dE ~ Z (E0/E - 1) dE
    for (const auto& layer : tube_window) w *= layer.transmission(e);
    out.push_back({e, w});
    cont_total += w;
  }
  for (auto& b : out) b.weight *= (1.0 - line_fraction) / cont_total;
  for (const auto& l : source_lines()) out.push_back({l.energy_keV, line_fraction * l.relative_intensity});
  return out;
}

std::string Excitation::describe() const {
  if (kind == Kind::monochromatic) return fmt::format("monochromatic {:.3f} keV", energy_keV);
  return fmt::format("{} tube at {:g} kV", anode, voltage_kV);
}

}  // namespace opx::xray
