#include "xrf/model.hpp"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/log.hpp"
#include "xrf/peak_shape.hpp"
#include "xray/xraylib.hpp"

namespace opx::xrf {
namespace {

struct LineEscape {
  double shift_keV, fraction;
};

// Transmission of everything between the emitting atom and the detector
// crystal, times the crystal's absorption.
double detection_efficiency(const FitConfig& cfg, double e) {
  double eff = cfg.detector.efficiency(e);
  for (const auto& a : cfg.attenuators) eff *= a.transmission(e);
  return eff;
}

void normalize_and_prune(PeakGroup& g, double min_fraction) {
  double total = 0;
  for (const auto& l : g.lines) total += l.weight;
  if (total <= 0) {
    g.lines.clear();
    return;
  }
  for (auto& l : g.lines) l.weight /= total;
  std::erase_if(g.lines, [&](const ModelLine& l) { return l.weight < min_fraction; });
  total = 0;
  for (const auto& l : g.lines) total += l.weight;
  for (auto& l : g.lines) l.weight /= total;
}

}  // namespace

SpectrumModel::SpectrumModel(const FitConfig& cfg, int n_channels) : cfg_(cfg), n_channels_(n_channels) {
  if (n_channels < 16)
    throw data_error("cannot fit spectrum", cfg.source, fmt::format("{} channels is too few", n_channels));
  // Fit range in channels from the configured calibration.
  double c_lo = cfg.calibration.channel(cfg.fit.energy_min_keV);
  double c_hi = cfg.calibration.channel(cfg.fit.energy_max_keV);
  if (!std::isfinite(c_lo) || !std::isfinite(c_hi))
    throw config_error("invalid energy calibration", cfg.source + ":/calibration",
                       fmt::format("{:g} + {:g} ch + {:g} ch^2 keV does not map the fit range to channels",
                                   cfg.calibration.offset_keV, cfg.calibration.gain_keV, cfg.calibration.quadratic_keV));
  c_lo = std::clamp(c_lo, -1.0, double(n_channels) + 1.0);
  c_hi = std::clamp(c_hi, -1.0, double(n_channels) + 1.0);
  first_ = std::clamp(static_cast<int>(std::ceil(c_lo)), 0, n_channels);
  last_ = std::clamp(static_cast<int>(std::floor(c_hi)) + 1, 0, n_channels);
  if (last_ - first_ < 16)
    throw config_error("invalid fit range", cfg.source + ":/fit/energy_range_keV",
                       fmt::format("{:g}-{:g} keV covers only {} of the spectrum's {} channels at gain {:g} keV/channel",
                                   cfg.fit.energy_min_keV, cfg.fit.energy_max_keV, std::max(0, last_ - first_),
                                   n_channels, cfg.calibration.gain_keV));
  const double e_lo = cfg.calibration.energy(first_), e_hi = cfg.calibration.energy(last_ - 1);
  const auto excitation = cfg.excitation.spectrum();
  double e_max_exc = 0;
  for (const auto& b : excitation) e_max_exc = std::max(e_max_exc, b.energy_keV);

  for (const auto& el : cfg.elements) {
    int Z = xray::atomic_number(el.element);
    for (auto fam : el.families) {
      PeakGroup g;
      g.name = fmt::format("{} {}", el.element, xray::family_name(fam));
      for (const auto& line : xray::family_lines(Z, fam)) {
        double production = 0;
        for (const auto& b : excitation) production += b.weight * xray::line_cross_section(Z, line.code, b.energy_keV);
        if (production <= 0) continue;
        double w = production * detection_efficiency(cfg, line.energy_keV);
        g.lines.push_back({line.energy_keV, w, fmt::format("{} {}", el.element, line.iupac)});
      }
      normalize_and_prune(g, cfg.fit.min_line_fraction);
      if (g.lines.empty()) {
        log::warn("{} is not excited by the {} (edge above {:.1f} keV): left out of the fit", g.name,
                  cfg.excitation.describe(), e_max_exc);
        continue;
      }
      bool in_range = std::any_of(g.lines.begin(), g.lines.end(), [&](const ModelLine& l) {
        return l.energy_keV > e_lo && l.energy_keV < e_hi;
      });
      if (!in_range) {
        log::warn("{} lines ({:.3f} keV) lie outside the fit range {:.2f}-{:.2f} keV: left out of the fit", g.name,
                  g.lines.front().energy_keV, e_lo, e_hi);
        continue;
      }
      groups_.push_back(std::move(g));
    }
  }
  auto source = cfg.scatter.lines.empty() ? cfg.excitation.source_lines() : cfg.scatter.lines;
  if (cfg.scatter.rayleigh) {
    PeakGroup g{"Rayleigh", GroupKind::rayleigh, {}, {}, false};
    for (const auto& s : source)
      g.lines.push_back({s.energy_keV, s.relative_intensity * detection_efficiency(cfg, s.energy_keV),
                         s.label + " Rayleigh"});
    normalize_and_prune(g, cfg.fit.min_line_fraction);
    if (!g.lines.empty()) groups_.push_back(std::move(g));
  }
  if (cfg.scatter.compton) {
    PeakGroup g{"Compton", GroupKind::compton, {}, {}, true};
    for (const auto& s : source) {
      double e = xray::compton_energy_keV(s.energy_keV, cfg.scatter.angle_deg);
      g.lines.push_back({e, s.relative_intensity * detection_efficiency(cfg, e), s.label + " Compton"});
    }
    normalize_and_prune(g, cfg.fit.min_line_fraction);
    if (!g.lines.empty()) groups_.push_back(std::move(g));
  }
  std::erase_if(groups_, [&](const PeakGroup& g) {
    return g.kind != GroupKind::fluorescence &&
           std::none_of(g.lines.begin(), g.lines.end(),
                        [&](const ModelLine& l) { return l.energy_keV > e_lo && l.energy_keV < e_hi; });
  });
  if (cfg.fit.escape) attach_escape_peaks(groups_, cfg.detector);
  if (groups_.empty())
    throw config_error("nothing to fit", cfg.source + ":/elements",
                       fmt::format("no configured line lies in the fit range {:.2f}-{:.2f} keV", e_lo, e_hi));
}

void attach_escape_peaks(std::vector<PeakGroup>& groups, const xray::Detector& det) {
  for (auto& g : groups)
    for (auto& line : g.lines) {
      line.escapes.clear();
      for (const auto& esc : xray::escape_lines(det, line.energy_keV, 1e-4))
        line.escapes.push_back({line.energy_keV - esc.energy_shift_keV, esc.fraction});
    }
}

ResponseParams SpectrumModel::initial_params() const {
  ResponseParams p;
  p.offset_keV = cfg_.calibration.offset_keV;
  p.gain_keV = cfg_.calibration.gain_keV;
  p.quadratic_keV = cfg_.calibration.quadratic_keV;
  p.noise_fwhm_keV = cfg_.detector.noise_fwhm_keV;
  p.fano = cfg_.detector.fano;
  p.compton_extra_fwhm_keV = cfg_.scatter.compton_extra_fwhm_keV;
  p.shape = cfg_.peak_shape;
  return p;
}

void SpectrumModel::channel_energies(const ResponseParams& p, std::vector<double>& energy,
                                     std::vector<double>& width) const {
  int n = n_fit();
  energy.resize(n);
  width.resize(n);
  for (int i = 0; i < n; ++i) {
    double ch = first_ + i;
    energy[i] = p.offset_keV + ch * (p.gain_keV + ch * p.quadratic_keV);
    width[i] = p.gain_keV + 2.0 * ch * p.quadratic_keV;  // dE/dch
  }
}

void SpectrumModel::add_group_lines(const ResponseParams& p, const PeakGroup& g, const std::vector<double>& energy,
                                    const std::vector<double>& width, double* col, int& lo, int& hi) const {
  xray::Detector det = cfg_.detector;  // with this evaluation's width parameters
  det.noise_fwhm_keV = p.noise_fwhm_keV;
  det.fano = p.fano;
  const int n = static_cast<int>(energy.size());
  const double e_lo = energy.front(), e_hi = energy.back();
  const double extra_sigma = g.compton_width ? p.compton_extra_fwhm_keV / 2.354820045 : 0.0;
  auto add = [&](double center, double counts) {
    double sigma = std::sqrt(det.sigma_keV(center) * det.sigma_keV(center) + extra_sigma * extra_sigma);
    if (center < e_lo - 8 * sigma || center > e_hi + 8 * sigma) return;
    int l = 0, h = 0;
    response_window(energy.data(), n, center, sigma, p.shape, l, h);
    if (h <= l) return;
    add_line_response(col, energy.data(), width.data(), l, h, center, sigma, counts, p.shape);
    lo = std::min(lo, l);
    hi = std::max(hi, h);
  };
  for (const auto& line : g.lines) {
    add(line.energy_keV, line.weight);
    for (const auto& esc : line.escapes) add(esc.energy_keV, line.weight * esc.fraction);
  }
}

void SpectrumModel::build_columns(const ResponseParams& p, Columns& out) const {
  std::vector<double> energy, width;
  channel_energies(p, energy, width);
  const int n = n_fit();
  const int m = static_cast<int>(groups_.size());
  out.a.setZero(n, m);
  out.lo.assign(m, n);
  out.hi.assign(m, 0);
  for (int g = 0; g < m; ++g) {
    if (groups_[g].kind == GroupKind::pileup) continue;  // filled by the fitter from the model
    add_group_lines(p, groups_[g], energy, width, out.a.col(g).data(), out.lo[g], out.hi[g]);
    if (out.hi[g] <= out.lo[g]) out.lo[g] = out.hi[g] = 0;
  }
}

bool SpectrumModel::peak_derivatives(const ResponseParams& p, const Eigen::VectorXd& areas,
                                     const std::vector<Derivative>& which, Eigen::MatrixXd& out) const {
  if (p.shape.has_tails() || p.shape.step_height > 0) return false;
  std::vector<double> energy, width;
  channel_energies(p, energy, width);
  const int n = n_fit();
  const int k = static_cast<int>(which.size());
  out.setZero(n, k);
  xray::Detector det = cfg_.detector;
  det.noise_fwhm_keV = p.noise_fwhm_keV;
  det.fano = p.fano;
  const double s_noise = p.noise_fwhm_keV / 2.354820045;
  const double s_extra = p.compton_extra_fwhm_keV / 2.354820045;
  constexpr double kInvSqrt2Pi = 0.3989422804014327;
  for (std::size_t g = 0; g < groups_.size(); ++g) {
    const PeakGroup& grp = groups_[g];
    if (grp.kind == GroupKind::pileup || areas(g) == 0.0) continue;
    auto add = [&](double center, double counts) {
      // sigma^2 = (noise/2.3548)^2 + eps F E (+ (extra/2.3548)^2 for Compton)
      double s2 = det.sigma_keV(center) * det.sigma_keV(center) + (grp.compton_width ? s_extra * s_extra : 0.0);
      double sigma = std::sqrt(s2);
      if (center < energy.front() - 8 * sigma || center > energy.back() + 8 * sigma) return;
      int lo = 0, hi = 0;
      response_window(energy.data(), n, center, sigma, p.shape, lo, hi);
      // d sigma / d parameter
      double ds[5] = {0, 0, s_noise / (2.354820045 * sigma), det.pair_energy_keV * center / (2 * sigma),
                      grp.compton_width ? s_extra / (2.354820045 * sigma) : 0.0};
      const double a = areas(g) * counts * kInvSqrt2Pi / sigma;
      // Column pointers and the chain-rule factor of each wanted derivative.
      double* col[5] = {nullptr, nullptr, nullptr, nullptr, nullptr};
      for (int c = 0; c < k; ++c) col[static_cast<int>(which[c])] = out.col(c).data();
      const double f_noise = ds[2], f_fano = ds[3], f_extra = ds[4];
      const double inv_s2 = 1.0 / s2;
      for (int i = lo; i < hi; ++i) {
        const double u = energy[i] - center;
        const double g0 = a * std::exp(-0.5 * u * u * inv_s2);  // density at channel i (per keV)
        const double w = width[i];
        const double dg_de = -g0 * u * inv_s2 * w;                // d/dE, times channel width
        const double dg_ds = g0 * (u * u * inv_s2 - 1.0) / sigma * w;  // d/dsigma, times width
        if (col[0]) col[0][i] += dg_de;                               // E = o + G ch + q ch^2
        if (col[1]) col[1][i] += dg_de * (first_ + i) + g0;           // and width = G + 2 q ch
        if (col[2]) col[2][i] += dg_ds * f_noise;
        if (col[3]) col[3][i] += dg_ds * f_fano;
        if (col[4]) col[4][i] += dg_ds * f_extra;
      }
    };
    for (const auto& line : grp.lines) {
      add(line.energy_keV, line.weight);
      for (const auto& esc : line.escapes) add(esc.energy_keV, line.weight * esc.fraction);
    }
  }
  return true;
}

std::vector<std::string> SpectrumModel::merge_degenerate(const ResponseParams& p, const Eigen::VectorXd& w) {
  std::vector<std::string> messages;
  bool merged_any = true;
  while (merged_any) {
    merged_any = false;
    Columns c;
    build_columns(p, c);
    const int m = static_cast<int>(groups_.size());
    Eigen::MatrixXd wa = w.asDiagonal() * c.a;
    Eigen::MatrixXd gram = c.a.transpose() * wa;
    for (int i = 0; i < m && !merged_any; ++i) {
      for (int j = i + 1; j < m; ++j) {
        double denom = std::sqrt(gram(i, i) * gram(j, j));
        if (denom <= 0) continue;
        double cosine = gram(i, j) / denom;
        if (cosine < cfg_.fit.degeneracy_cosine) continue;
        PeakGroup& keep = groups_[i];
        const PeakGroup& gone = groups_[j];
        messages.push_back(fmt::format(
            "{} and {} cannot be told apart (their peaks coincide: cosine similarity {:.5f}); fitted as one "
            "group '{} + {}'",
            keep.name, gone.name, cosine, keep.name, gone.name));
        keep.merged.push_back(gone.name);
        keep.name = keep.name + " + " + gone.name;
        groups_.erase(groups_.begin() + j);
        merged_any = true;
        break;
      }
    }
  }
  return messages;
}

}  // namespace opx::xrf
