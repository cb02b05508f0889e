#include "xrf/identify.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <set>

#include <Eigen/Dense>
#include <fmt/format.h>

#include "core/error.hpp"
#include "xrf/background.hpp"
#include "xrf/cmx_fit.hpp"
#include "xrf/nnls.hpp"
#include "xrf/peak_shape.hpp"
#include "xray/xraylib.hpp"

namespace opx::xrf {
namespace {

constexpr double kFwhmPerSigma = 2.354820045;
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
// Assumed standard uncertainty of an energy calibration (from a
// configuration or a file): 10 eV, typical of a two-point calibration of an
// SDD spectrum, combined with each peak's own centroid uncertainty.
constexpr double kCalibrationSigma_keV = 0.010;
// Below this the detector's noise edge dominates; Na K (1.04 keV) is the
// lightest line searched.
constexpr double kLowestEnergy_keV = 0.9;
constexpr int kFirstZ = 11, kLastZ = 92;
// Lines below this reach no energy-dispersive detector (and xraylib's
// attenuation tables stop near it).
constexpr double kLowestLine_keV = 0.2;
// A line at least this strong relative to its family's main line, within
// tolerance of a peak, makes the family a candidate.
constexpr double kCandidateLine = 0.05;
// Partner lines weaker than this relative to the main line are no evidence.
constexpr double kPartnerLine = 0.03;
// Relative uncertainty of predicted line ratios: matrix absorption and the
// unknown excitation change them by tens of percent in real samples.
constexpr double kRatioUncertainty = 0.25;
// Between families of an element (Br L and Br K) the ratio is far less
// certain; a higher-energy family, which any matrix absorbs less, is only
// "missing" when it shows less than this share of its prediction.
constexpr double kCompanionFloor = 0.25;
// A pile-up peak carries a small share of its parents' counts (rate x
// pulse-pair resolution time, below a percent at usual rates): a candidate
// sum peak holding more than this share is rather something else.
constexpr double kMaxPileupShare = 0.05;
constexpr int kPileupParents = 4;  // strongest peaks whose pair sums are considered
// Relative uncertainty of a candidate's pattern in the joint fit (line
// ratios, peak shape): its variance (0.1 x model)^2 is added to the Poisson
// variance, so that a few-percent misfit of a strong peak cannot be taken
// for a minor element.
constexpr double kModelUncertainty = 0.10;
// Escape fractions from the slab formula are good to tens of percent only
// (the real geometry, the dead layer): an escape peak a little stronger
// than predicted must not make an element.
constexpr double kEscapeUncertainty = 0.5;
constexpr int kMaxVetoRounds = 8;
// Width estimation from the data: peaks this significant and this isolated
// (in expected FWHM) are measured.
constexpr double kWidthPeakSignificance = 20;
constexpr double kWidthPeakIsolation = 2.0;

// Siegbahn names of the common lines (IUPAC on the left), for people.
std::string siegbahn(const std::string& iupac) {
  static const std::map<std::string, std::string> names = {
      {"KL3", "Ka1"},  {"KL2", "Ka2"},  {"KM3", "Kb1"},  {"KM2", "Kb3"},  {"KN3", "Kb2"},   {"KN2", "Kb2"},
      {"KM5", "Kb5"},  {"KM4", "Kb5"},  {"L3M5", "La1"}, {"L3M4", "La2"}, {"L2M4", "Lb1"},  {"L3N5", "Lb2"},
      {"L3N4", "Lb2"}, {"L1M3", "Lb3"}, {"L1M2", "Lb4"}, {"L3O4", "Lb5"}, {"L3O5", "Lb5"},  {"L3O45", "Lb5"},
      {"L3N1", "Lb6"}, {"L2N4", "Lg1"}, {"L1N2", "Lg2"}, {"L1N3", "Lg3"}, {"L1O2", "Lg4"},  {"L1O3", "Lg4"},
      {"L1O45", "Lg4"}, {"L2N1", "Lg5"}, {"L2O4", "Lg6"}, {"L3M1", "Ll"},  {"L2M1", "Ln"},  {"M5N7", "Ma1"},
      {"M5N6", "Ma2"}, {"M4N6", "Mb"},  {"M3N5", "Mg"},  {"M3N4", "Mg"}};
  auto it = names.find(iupac);
  return it == names.end() ? iupac : it->second;
}

// "Cu Ka1" for one line; "Cu Ka" for a cluster of lines.
std::string cluster_label(const std::string& strongest, bool several) {
  if (several && !strongest.empty() && std::isdigit(static_cast<unsigned char>(strongest.back())))
    return strongest.substr(0, strongest.size() - 1);
  return strongest;
}

struct PatternLine {
  double energy_keV, weight;  // weight: share of the pattern's photopeak counts
  int cluster;                // the photopeak cluster it belongs to (escapes: their parent's)
  bool escape;
};

// One emission (or scattered) line before clustering.
struct LabelledLine {
  std::string label;  // "Fe Ka1", "Rayleigh Mo Kb1"
  double energy_keV, weight;
};

// Lines closer than the detector can separate, seen as one peak.
struct Cluster {
  double energy_keV = 0, weight = 0;
  std::string label;  // "Fe Ka"
};

struct Pattern {
  std::string name, kind, element, family;
  std::vector<PatternLine> lines;
  std::vector<Cluster> clusters;
  int main = 0;            // strongest cluster
  double extra_sigma = 0;  // Compton broadening, keV
  std::string same_as;     // a Rayleigh pattern it cannot be told from (the anode's own lines)
  bool vetoed = false;     // a line is missing: left out of the joint fit
  double intensity = 0;    // fluorescence: the family's production x efficiency, comparable across families
  // Fluorescence: the main peak of each other family of the element that
  // is excited and lies higher in energy, with its intensity relative to
  // this pattern's main peak.
  std::vector<std::pair<Cluster, double>> companions;
};

// What the spectrum says about a candidate's lines.
struct Evidence {
  PartnerLine main;                   // the main line: expected from the fitted area, observed locally
  bool main_checked = false;          // only when the candidate has a significant fitted area
  std::vector<PartnerLine> partners;
  std::vector<std::string> missing;   // lines clearly weaker than the candidate needs
  double area = 0, area_sigma = 0;    // the joint fit the expectations come from
};

class Identifier {
 public:
  Identifier(const io::Spectrum& s, const FitConfig* cfg, double min_significance)
      : y_(s.counts), n_(static_cast<int>(s.counts.size())), min_sig_(min_significance) {
    id_.source = s.source;
    id_.channels = n_;
    id_.min_significance = min_significance;
    if (n_ < 64)
      throw data_error("cannot identify peaks", s.source, fmt::format("{} channels is too few to search", n_));
    if (cfg) {
      cal_ = cfg->calibration;
      id_.calibration_source = "config";
      det_ = cfg->detector;
      id_.width_source = "config";
      exc_ = cfg->excitation;
      attenuators_ = cfg->attenuators;
      shape_ = cfg->peak_shape;
      scatter_ = cfg->scatter;
      with_scatter_ = cfg->scatter.rayleigh || cfg->scatter.compton;
      id_.excitation = cfg->excitation.describe();
    } else if (s.has_calibration()) {
      cal_.offset_keV = *s.offset_keV;
      cal_.gain_keV = *s.gain_keV_per_channel;
      cal_.quadratic_keV = s.quadratic_keV.value_or(0.0);
      id_.calibration_source = "file";
      id_.width_source = "default";
    } else {
      throw usage_error("cannot identify peaks", s.source,
                        "the spectrum has no energy calibration: give --config with a calibration, or a calibrated "
                        "file (an .spx, or an .mca with a <<CALIBRATION>> block)");
    }
    if (cal_.gain_keV <= 0 || gain_at(0) <= 0 || gain_at(n_ - 1) <= 0)
      throw data_error("cannot identify peaks", s.source,
                       fmt::format("the calibration E = {:g} + {:g} ch + {:g} ch^2 keV does not increase with channel",
                                   cal_.offset_keV, cal_.gain_keV, cal_.quadratic_keV));
    id_.calibration = cal_;
  }

  Identification run() {
    background();
    search();
    if (id_.width_source == "default") estimate_width();
    id_.noise_fwhm_keV = det_.noise_fwhm_keV;
    id_.fano = det_.fano;
    make_candidates();
    decide();
    judge_candidates();
    assign_peaks();
    suggest_elements();
    return std::move(id_);
  }

 private:
  double energy(double ch) const { return cal_.energy(ch); }
  double gain_at(double ch) const { return cal_.gain_keV + 2.0 * cal_.quadratic_keV * ch; }
  double sigma_keV(double e) const { return det_.sigma_keV(e); }
  double sigma_ch(int i) const { return sigma_keV(energy(i)) / gain_at(i); }
  int half_width(int i) const { return std::max(2, static_cast<int>(std::ceil(3.0 * sigma_ch(i)))); }
  double efficiency(double e) const {
    double eff = det_.efficiency(e);
    for (const auto& a : attenuators_) eff *= a.transmission(e);
    return eff;
  }

  // SNIP over the whole spectrum with a window of three FWHM at 6.4 keV
  // (Fe K-alpha, mid-range), which clears K-alpha/K-beta pairs.
  void background() {
    double width_keV = 3.0 * det_.fwhm_keV(6.4);
    int width = std::max(3, static_cast<int>(std::lround(width_keV / cal_.gain_keV)));
    bg_ = snip_background(y_, width);
  }

  // The zero-sum second-derivative filter over the searchable channels.
  void filter() {
    F_.assign(n_, 0.0);
    V_.assign(n_, 0.0);
    G_.assign(n_, 0.0);
    c0_ = n_;
    c1_ = 0;
    for (int i = 0; i < n_; ++i) {
      if (energy(i) < kLowestEnergy_keV) continue;
      const int m = half_width(i);
      if (i - m < 0 || i + m >= n_) continue;
      const double s = sigma_ch(i);
      std::vector<double> k(2 * m + 1);
      double mean = 0;
      for (int j = -m; j <= m; ++j) {
        double z2 = double(j) * j / (s * s);
        k[j + m] = (1.0 - z2) * std::exp(-0.5 * z2);
        mean += k[j + m];
      }
      mean /= k.size();
      double f = 0, v = 0, g = 0;
      for (int j = -m; j <= m; ++j) {
        double kj = k[j + m] - mean;
        f += kj * (y_[i + j] - bg_[i + j]);
        v += kj * kj * std::max(y_[i + j], 1.0);
        g += kj * std::exp(-0.5 * double(j) * j / (s * s)) / (s * std::sqrt(2 * M_PI));
      }
      F_[i] = f;
      V_[i] = v;
      G_[i] = g;
      c0_ = std::min(c0_, i);
      c1_ = std::max(c1_, i + 1);
    }
    if (c1_ - c0_ < 16)
      throw data_error("cannot identify peaks", id_.source,
                       fmt::format("with this calibration fewer than 16 channels lie above {:g} keV", kLowestEnergy_keV));
    id_.energy_min_keV = energy(c0_);
    id_.energy_max_keV = energy(c1_ - 1);
  }

  // FWHM from the net counts around channel i: weighted least squares of
  // ln(net) = a + b x + c x^2 with weights net^2 (H. Guo, IEEE Signal
  // Processing Magazine 28 (2011) 134). NaN when the shape is not Gaussian
  // enough to measure.
  double measure_fwhm(int i, double expected_ch) const {
    const int h = std::max(2, static_cast<int>(std::lround(0.75 * expected_ch)));
    Eigen::Matrix3d M = Eigen::Matrix3d::Zero();
    Eigen::Vector3d v = Eigen::Vector3d::Zero();
    int used = 0;
    for (int j = -h; j <= h; ++j) {
      int k = i + j;
      if (k < 0 || k >= n_) continue;
      double net = y_[k] - bg_[k];
      if (net <= 0) continue;
      Eigen::Vector3d phi(1.0, j, double(j) * j);
      M += net * net * phi * phi.transpose();
      v += net * net * std::log(net) * phi;
      ++used;
    }
    if (used < 5) return kNaN;
    Eigen::Vector3d c = M.ldlt().solve(v);
    if (!(c(2) < 0)) return kNaN;
    double fwhm_ch = kFwhmPerSigma * std::sqrt(-0.5 / c(2));
    if (fwhm_ch < 0.5 * expected_ch || fwhm_ch > 3.0 * expected_ch) return kNaN;
    return fwhm_ch * gain_at(i);
  }

  void search() {
    filter();
    found_.clear();
    for (int i = c0_; i < c1_; ++i) {
      if (V_[i] <= 0 || F_[i] <= 0 || F_[i] / std::sqrt(V_[i]) < min_sig_) continue;
      const double fwhm_ch = kFwhmPerSigma * sigma_ch(i);
      const int h = std::max(1, static_cast<int>(std::lround(0.5 * fwhm_ch)));
      bool is_max = true;
      for (int j = std::max(c0_, i - h); j < std::min(c1_, i + h + 1) && is_max; ++j)
        if (j != i && (F_[j] > F_[i] || (j < i && F_[j] == F_[i]))) is_max = false;
      if (!is_max) continue;
      // Sub-channel position from a parabola through the filter's maximum.
      double delta = 0;
      if (i > c0_ && i + 1 < c1_) {
        double den = F_[i - 1] - 2 * F_[i] + F_[i + 1];
        if (den < 0) delta = std::clamp(0.5 * (F_[i - 1] - F_[i + 1]) / den, -0.5, 0.5);
      }
      IdentifiedPeak p;
      p.channel = i + delta;
      p.energy_keV = energy(p.channel);
      p.significance = F_[i] / std::sqrt(V_[i]);
      p.net_counts = F_[i] / G_[i];
      p.net_counts_sigma = std::sqrt(V_[i]) / G_[i];
      p.expected_fwhm_keV = det_.fwhm_keV(p.energy_keV);
      p.fwhm_keV = measure_fwhm(i, fwhm_ch);
      // Tolerance: the calibration's uncertainty and the centroid's own.
      double centroid = sigma_keV(p.energy_keV) / std::sqrt(std::max(p.net_counts, 1.0));
      double cal_sigma = std::hypot(kCalibrationSigma_keV, centroid);
      p.tolerance_keV = std::max(2.0 * cal_sigma, 0.25 * p.expected_fwhm_keV);
      p.number = static_cast<int>(found_.size()) + 1;
      found_.push_back(p);
    }
    // Net counts with the neighbours' overlap taken out (the filter's
    // estimate stays when the local fit is not possible).
    for (auto& p : found_)
      if (auto c = local_counts(p.energy_keV)) {
        p.net_counts = c->first;
        p.net_counts_sigma = c->second;
      }
  }

  // Without a configuration: the electronic noise from the measured FWHM of
  // the strongest isolated peaks, FWHM^2 = noise^2 + 2.3548^2 eps F E, with
  // the Fano factor assumed; then the search is repeated with that width.
  void estimate_width() {
    std::vector<std::pair<double, double>> noise;  // significance, noise FWHM
    for (const auto& f : found_) {
      const IdentifiedPeak& p = f;
      if (p.significance < std::max(kWidthPeakSignificance, min_sig_) || !std::isfinite(p.fwhm_keV)) continue;
      bool isolated = std::none_of(found_.begin(), found_.end(), [&](const IdentifiedPeak& o) {
        return &o != &f && std::abs(o.energy_keV - p.energy_keV) < kWidthPeakIsolation * p.expected_fwhm_keV;
      });
      double fano_part = kFwhmPerSigma * kFwhmPerSigma * det_.pair_energy_keV * det_.fano * p.energy_keV;
      double n2 = p.fwhm_keV * p.fwhm_keV - fano_part;
      if (isolated && n2 > 0) noise.emplace_back(p.significance, std::sqrt(n2));
    }
    if (noise.empty()) {
      id_.width_source = "default, no strong isolated peak to measure";
      return;
    }
    std::sort(noise.begin(), noise.end(), [](auto& a, auto& b) { return a.first > b.first; });
    noise.resize(std::min<std::size_t>(noise.size(), 5));
    std::vector<double> values;
    for (auto& [s, v] : noise) values.push_back(v);
    std::sort(values.begin(), values.end());
    double median = values.size() % 2 ? values[values.size() / 2]
                                      : 0.5 * (values[values.size() / 2 - 1] + values[values.size() / 2]);
    median = std::clamp(median, 0.02, 0.5);
    id_.width_source = fmt::format("estimated from {} peak{}", values.size(), values.size() > 1 ? "s" : "");
    if (std::abs(median - det_.noise_fwhm_keV) > 0.03 * det_.noise_fwhm_keV) {
      det_.noise_fwhm_keV = median;
      background();
      search();
    }
  }

  // --- candidates --------------------------------------------------------

  // Groups lines (sorted by energy) closer than 0.7 FWHM into clusters, the
  // peaks the detector shows; a cluster is named after its strongest line.
  void make_clusters(Pattern& p, const std::vector<LabelledLine>& photopeaks) {
    std::vector<std::vector<int>> members;
    for (int i = 0; i < static_cast<int>(photopeaks.size()); ++i) {
      const double e = photopeaks[i].energy_keV, w = photopeaks[i].weight;
      if (!p.clusters.empty() && std::abs(e - p.clusters.back().energy_keV) < 0.7 * det_.fwhm_keV(e)) {
        Cluster& c = p.clusters.back();
        c.energy_keV = (c.energy_keV * c.weight + e * w) / (c.weight + w);
        c.weight += w;
        members.back().push_back(i);
      } else {
        p.clusters.push_back({e, w, ""});
        members.push_back({i});
      }
      p.lines.push_back({e, w, static_cast<int>(p.clusters.size()) - 1, false});
    }
    for (std::size_t c = 0; c < p.clusters.size(); ++c) {
      int strongest = members[c].front();
      for (int i : members[c])
        if (photopeaks[i].weight > photopeaks[strongest].weight) strongest = i;
      p.clusters[c].label = cluster_label(photopeaks[strongest].label, members[c].size() > 1);
    }
    p.main = 0;
    for (std::size_t c = 0; c < p.clusters.size(); ++c)
      if (p.clusters[c].weight > p.clusters[p.main].weight) p.main = static_cast<int>(c);
  }

  void add_escapes(Pattern& p) {
    const std::size_t photopeaks = p.lines.size();
    for (std::size_t i = 0; i < photopeaks; ++i) {
      if (p.lines[i].weight < 0.01) continue;
      for (const auto& esc : xray::escape_lines(det_, p.lines[i].energy_keV, 1e-4))
        p.lines.push_back({p.lines[i].energy_keV - esc.energy_shift_keV, p.lines[i].weight * esc.fraction,
                           p.lines[i].cluster, true});
    }
  }

  // Line family of Z as the fit model sees it: production at the excitation
  // times the detection efficiency; lines under 0.05 % of the family are
  // dropped (weak lines of a strong family are still peaks).
  std::optional<Pattern> fluorescence(int Z, xray::Family fam) {
    const std::string sym = xray::element_symbol(Z);
    std::vector<LabelledLine> lines;
    double total = 0;
    for (const auto& l : xray::family_lines(Z, fam)) {
      if (l.energy_keV < kLowestLine_keV) continue;
      double production = 0;
      for (const auto& b : excitation_bins_) production += b.weight * xray::line_cross_section(Z, l.code, b.energy_keV);
      if (production <= 0) continue;
      double w = production * efficiency(l.energy_keV);
      lines.push_back({sym + " " + siegbahn(l.iupac), l.energy_keV, w});
      total += w;
    }
    if (total <= 0) return std::nullopt;
    std::erase_if(lines, [&](const LabelledLine& l) { return l.weight < 0.0005 * total; });
    double kept = 0;
    for (const auto& l : lines) kept += l.weight;
    for (auto& l : lines) l.weight /= kept;
    std::sort(lines.begin(), lines.end(), [](auto& a, auto& b) { return a.energy_keV < b.energy_keV; });
    Pattern p;
    p.intensity = kept;
    p.kind = "fluorescence";
    p.element = sym;
    p.family = xray::family_name(fam);
    p.name = sym + " " + p.family;
    make_clusters(p, lines);
    add_escapes(p);
    return p;
  }

  // Rayleigh or Compton scatter of the source's lines, one pattern per
  // family of the anode's lines: how strongly a sample scatters a tube's K
  // and L lines, and how much of the L lines the air absorbs, is not known
  // well enough to tie them together.
  std::vector<Pattern> scatter(bool compton) {
    std::map<std::string, std::vector<LabelledLine>> groups;
    for (const auto& s : exc_.source_lines(1e-3)) {
      double e = compton ? xray::compton_energy_keV(s.energy_keV, scatter_.angle_deg) : s.energy_keV;
      // Source labels are "Cu KL3" for a tube, "17.480 keV" for a beam.
      std::string label = s.label, group;
      auto sp = label.find(' ');
      if (exc_.kind == xray::Excitation::Kind::tube && sp != std::string::npos) {
        group = label.substr(0, sp) + " " + label.substr(sp + 1, 1);
        label = label.substr(0, sp) + " " + siegbahn(label.substr(sp + 1));
      }
      groups[group].push_back(
          {std::string(compton ? "Compton " : "Rayleigh ") + label, e, s.relative_intensity * efficiency(e)});
    }
    std::vector<Pattern> out;
    for (auto& [group, lines] : groups) {
      double total = 0;
      for (const auto& l : lines) total += l.weight;
      if (total <= 0) continue;
      for (auto& l : lines) l.weight /= total;
      std::sort(lines.begin(), lines.end(), [](auto& a, auto& b) { return a.energy_keV < b.energy_keV; });
      Pattern p;
      p.kind = compton ? "compton" : "rayleigh";
      p.name = std::string(compton ? "Compton" : "Rayleigh") + (group.empty() ? "" : " " + group);
      if (compton) p.extra_sigma = scatter_.compton_extra_fwhm_keV / kFwhmPerSigma;
      make_clusters(p, lines);
      add_escapes(p);
      out.push_back(std::move(p));
    }
    return out;
  }

  bool in_range(double e) const { return e >= id_.energy_min_keV && e <= id_.energy_max_keV; }

  // The found peak within tolerance of e (the nearest), or nullptr.
  const IdentifiedPeak* peak_at(double e) const {
    const IdentifiedPeak* best = nullptr;
    for (const auto& f : found_) {
      double d = std::abs(f.energy_keV - e);
      if (d <= f.tolerance_keV && (!best || d < std::abs(best->energy_keV - e))) best = &f;
    }
    return best;
  }

  // Net counts of a line at e, fitted locally together with the found peaks
  // around it (those it does not match within their tolerance) and a
  // straight line (what SNIP leaves of tails and steps), so that a
  // neighbour's overlap is taken out: the "observed" counts of the evidence.
  // Close neighbours make the estimate uncertain rather than wrong.
  std::optional<std::pair<double, double>> local_counts(double e) const {
    if (!in_range(e)) return std::nullopt;
    const double fw = det_.fwhm_keV(e);
    std::vector<double> centers{e};
    double lo = e - 1.5 * fw, hi = e + 1.5 * fw;
    for (const auto& f : found_) {
      double d = std::abs(f.energy_keV - e);
      if (d > f.tolerance_keV && d < 2.5 * fw) {
        centers.push_back(f.energy_keV);
        lo = std::min(lo, f.energy_keV - 1.5 * f.expected_fwhm_keV);
        hi = std::max(hi, f.energy_keV + 1.5 * f.expected_fwhm_keV);
      }
    }
    const int a = std::max(c0_, static_cast<int>(std::floor(cal_.channel(lo))));
    const int b = std::min(c1_, static_cast<int>(std::ceil(cal_.channel(hi))) + 1);
    const int n = b - a, m = static_cast<int>(centers.size()) + 2;
    if (n < m + 2) return std::nullopt;
    Eigen::MatrixXd A(n, m);
    Eigen::VectorXd r(n), w(n);
    for (int i = 0; i < n; ++i) {
      const int ch = a + i;
      const double x = energy(ch);
      for (int k = 0; k + 2 < m; ++k) {
        double sg = sigma_keV(centers[k]);
        double z = (x - centers[k]) / sg;
        A(i, k) = gain_at(ch) * std::exp(-0.5 * z * z) / (sg * std::sqrt(2 * M_PI));
      }
      A(i, m - 2) = 1.0;
      A(i, m - 1) = (x - e) / fw;
      r(i) = y_[ch] - bg_[ch];
      w(i) = 1.0 / std::max(y_[ch], 1.0);
    }
    // Twice: Poisson weights, then with the neighbours' model uncertainty
    // added, so that a weak line beside a strong one is as uncertain as a
    // few-percent error in the strong one's shape makes it.
    Eigen::VectorXd x;
    Eigen::MatrixXd cov;
    for (int pass = 0; pass < 2; ++pass) {
      if (pass == 1) {
        Eigen::VectorXd neighbours = A.middleCols(1, m - 3) * x.segment(1, m - 3);
        w = (w.cwiseInverse() + (kModelUncertainty * neighbours).cwiseAbs2()).cwiseInverse();
      }
      Eigen::MatrixXd N = A.transpose() * w.asDiagonal() * A;
      Eigen::LDLT<Eigen::MatrixXd> ldlt(N);
      if (ldlt.info() != Eigen::Success) return std::nullopt;
      x = ldlt.solve(A.transpose() * w.cwiseProduct(r));
      cov = ldlt.solve(Eigen::MatrixXd::Identity(m, m));
    }
    if (!(cov(0, 0) > 0)) return std::nullopt;
    return std::make_pair(x(0), std::sqrt(cov(0, 0)));
  }

  void make_candidates() {
    excitation_bins_ = exc_.spectrum(40);
    for (int Z = kFirstZ; Z <= kLastZ; ++Z) {
      for (auto fam : {xray::Family::K, xray::Family::L, xray::Family::M}) {
        // A cheap look with radiative rates first: most families have no
        // line near any peak.
        auto lines = xray::family_lines(Z, fam);
        double max_rate = 0;
        for (const auto& l : lines) max_rate = std::max(max_rate, xray::radiative_rate(Z, l.code));
        bool near = std::any_of(lines.begin(), lines.end(), [&](const xray::Line& l) {
          return xray::radiative_rate(Z, l.code) >= kCandidateLine * max_rate && in_range(l.energy_keV) &&
                 peak_at(l.energy_keV);
        });
        if (!near) continue;
        auto p = fluorescence(Z, fam);
        if (!p || !in_range(p->clusters[p->main].energy_keV)) continue;
        const double main_w = p->clusters[p->main].weight;
        bool matched = std::any_of(p->clusters.begin(), p->clusters.end(), [&](const Cluster& c) {
          return c.weight >= kCandidateLine * main_w && peak_at(c.energy_keV);
        });
        if (!matched) continue;
        const Cluster& own = p->clusters[p->main];
        for (auto other : {xray::Family::K, xray::Family::L, xray::Family::M}) {
          if (other == fam) continue;
          auto q = fluorescence(Z, other);
          if (!q) continue;
          const Cluster& main = q->clusters[q->main];
          if (main.energy_keV > own.energy_keV && in_range(main.energy_keV))
            p->companions.push_back({main, (main.weight * q->intensity) / (own.weight * p->intensity)});
        }
        patterns_.push_back(std::move(*p));
      }
    }
    if (with_scatter_) {
      for (bool compton : {false, true}) {
        if (compton ? !scatter_.compton : !scatter_.rayleigh) continue;
        for (auto& p : scatter(compton))
          if (in_range(p.clusters[p.main].energy_keV)) patterns_.push_back(std::move(p));
      }
      // The anode's own fluorescence lines are the Rayleigh scatter of the
      // tube's lines: one pattern, which the fit cannot split. The scatter
      // is certain to be there; the element is not.
      if (exc_.kind == xray::Excitation::Kind::tube)
        for (auto& p : patterns_)
          if (p.kind == "fluorescence" && p.element == exc_.anode)
            for (const auto& q : patterns_)
              if (q.kind == "rayleigh" && q.name == "Rayleigh " + p.element + " " + p.family) p.same_as = q.name;
    }
    // Pile-up: sums of the strongest peaks that meet a weak peak.
    std::vector<const IdentifiedPeak*> strong;
    for (const auto& f : found_) strong.push_back(&f);
    std::sort(strong.begin(), strong.end(), [](auto a, auto b) { return a->net_counts > b->net_counts; });
    strong.resize(std::min<std::size_t>(strong.size(), kPileupParents));
    for (std::size_t a = 0; a < strong.size(); ++a)
      for (std::size_t b = a; b < strong.size(); ++b) {
        double e = strong[a]->energy_keV + strong[b]->energy_keV;
        const IdentifiedPeak* q = peak_at(e);
        if (!q || q == strong[a] || q == strong[b] ||
            q->net_counts > kMaxPileupShare * std::min(strong[a]->net_counts, strong[b]->net_counts))
          continue;
        Pattern p;
        p.kind = "sum";
        p.name = fmt::format("sum {:.2f} + {:.2f} keV", strong[a]->energy_keV, strong[b]->energy_keV);
        p.clusters.push_back({e, 1.0, fmt::format("sum of peaks {} + {}", strong[a]->number,
                                                  strong[b]->number)});
        p.lines.push_back({e, 1.0, 0, false});
        sum_parents_[patterns_.size()] = {strong[a]->number, strong[b]->number};
        patterns_.push_back(std::move(p));
      }
  }

  // --- joint fit ---------------------------------------------------------

  double line_sigma(const Pattern& p, double e) const {
    double s = sigma_keV(e);
    return std::sqrt(s * s + p.extra_sigma * p.extra_sigma);
  }

  bool in_fit(const Pattern& p) const { return !p.vetoed && p.same_as.empty(); }

  // Height at energy e of one line of a pattern with `area` counts (the
  // Gaussian part: tails and steps matter for areas, not for naming peaks).
  double line_height(const Pattern& p, double area, const PatternLine& l, double e) const {
    double s = line_sigma(p, l.energy_keV);
    double z = (e - l.energy_keV) / s;
    return std::abs(z) > 4 ? 0.0 : area * l.weight * std::exp(-0.5 * z * z) / s;
  }

  // Share of pattern k in the fitted model at energy e.
  double share_at(std::size_t k, double e) const {
    double own = 0, total = 0;
    for (std::size_t j = 0; j < patterns_.size(); ++j) {
      if (!in_fit(patterns_[j]) || area_(j) <= 0) continue;
      double h = 0;
      for (const auto& l : patterns_[j].lines) h += line_height(patterns_[j], area_(j), l, e);
      total += h;
      if (j == k) own = h;
    }
    return total > 0 ? own / total : 0.0;
  }

  // Whether some peak of pattern k's lines is mostly its own: a candidate
  // whose every line sits under stronger lines of others (V K-alpha under
  // Ti K-beta with V K-beta not seen) is possible, not proposed.
  bool has_own_peak(std::size_t k) const {
    const Pattern& p = patterns_[k];
    for (const auto& cl : p.clusters) {
      if (cl.weight < kPartnerLine * p.clusters[p.main].weight) continue;
      const IdentifiedPeak* at = peak_at(cl.energy_keV);
      if (at && share_at(k, at->energy_keV) >= 0.5) return true;
    }
    return false;
  }

  void build_design() {
    const int n = c1_ - c0_, m = static_cast<int>(patterns_.size());
    std::vector<double> e(n), w(n);
    for (int i = 0; i < n; ++i) {
      e[i] = energy(c0_ + i);
      w[i] = gain_at(c0_ + i);
    }
    design_ = Eigen::MatrixXd::Zero(n, m);
    escapes_ = Eigen::MatrixXd::Zero(n, m);
    for (int k = 0; k < m; ++k)
      for (const auto& l : patterns_[k].lines) {
        double s = line_sigma(patterns_[k], l.energy_keV);
        int lo = 0, hi = 0;
        response_window(e.data(), n, l.energy_keV, s, shape_, lo, hi);
        if (hi <= lo) continue;
        add_line_response(design_.col(k).data(), e.data(), w.data(), lo, hi, l.energy_keV, s, l.weight, shape_);
        if (l.escape)
          add_line_response(escapes_.col(k).data(), e.data(), w.data(), lo, hi, l.energy_keV, s, l.weight, shape_);
      }
  }

  // Non-negative least squares of the net spectrum on the patterns still in
  // the fit; Poisson weights first, then with the patterns' own uncertainty
  // (kModelUncertainty) added from the first solution.
  void fit_candidates() {
    const int n = c1_ - c0_, m = static_cast<int>(patterns_.size());
    area_ = Eigen::VectorXd::Zero(m);
    area_sigma_ = Eigen::VectorXd::Constant(m, std::numeric_limits<double>::infinity());
    if (m == 0) return;
    std::vector<bool> fixed_zero(m);
    for (int k = 0; k < m; ++k) fixed_zero[k] = !in_fit(patterns_[k]) || design_.col(k).squaredNorm() == 0;
    Eigen::VectorXd r(n), var(n);
    for (int i = 0; i < n; ++i) {
      r(i) = y_[c0_ + i] - bg_[c0_ + i];
      var(i) = std::max(y_[c0_ + i], 1.0);
    }
    Eigen::VectorXd x = Eigen::VectorXd::Zero(m), wt;
    NnlsResult res;
    for (int pass = 0; pass < 2; ++pass) {
      if (pass == 1) {
        var = var + (kModelUncertainty * (design_ * x)).cwiseAbs2() +
              (kEscapeUncertainty * (escapes_ * x)).cwiseAbs2();
      }
      wt = var.cwiseInverse();
      Eigen::MatrixXd N = design_.transpose() * wt.asDiagonal() * design_;
      Eigen::VectorXd b = design_.transpose() * wt.cwiseProduct(r);
      for (int k = 0; k < m; ++k)
        if (fixed_zero[k]) {  // out of the fit: a unit diagonal, no coupling
          N.row(k).setZero();
          N.col(k).setZero();
          N(k, k) = 1.0;
          b(k) = 0.0;
        }
      res = nnls_normal(N, b, std::vector<bool>(m, true), x);
      normal_ = N;
    }
    Eigen::VectorXd resid = r - design_ * x;
    std::vector<int> active;
    for (int k = 0; k < m; ++k)
      if (!fixed_zero[k] && !res.at_bound[k]) active.push_back(k);
    const int dof = std::max(1, n - static_cast<int>(active.size()));
    id_.chi2_reduced = resid.cwiseAbs2().dot(wt) / dof;
    const double scale = std::max(1.0, id_.chi2_reduced);
    area_ = x;
    const int k_act = static_cast<int>(active.size());
    if (k_act > 0) {
      Eigen::MatrixXd Np(k_act, k_act);
      for (int i = 0; i < k_act; ++i)
        for (int j = 0; j < k_act; ++j) Np(i, j) = normal_(active[i], active[j]);
      Eigen::MatrixXd cov = Np.ldlt().solve(Eigen::MatrixXd::Identity(k_act, k_act));
      for (int i = 0; i < k_act; ++i) area_sigma_(active[i]) = std::sqrt(std::max(cov(i, i), 0.0) * scale);
    }
    for (int k = 0; k < m; ++k)
      if (!fixed_zero[k] && res.at_bound[k]) area_sigma_(k) = std::sqrt(scale / normal_(k, k));
  }

  // Fits, then takes out every candidate that the fit gave counts although
  // one of its partner lines is missing, and fits again, until none is left.
  void decide() {
    build_design();
    for (int round = 0; round < kMaxVetoRounds; ++round) {
      fit_candidates();
      bool changed = false;
      for (std::size_t k = 0; k < patterns_.size(); ++k) {
        Pattern& p = patterns_[k];
        if (!in_fit(p) || area_(k) <= 0) continue;
        Evidence ev = evidence(k);
        if (!ev.missing.empty()) {
          p.vetoed = changed = true;
          veto_evidence_[k] = ev;
        }
      }
      if (!changed) break;
    }
  }

  // --- evidence ----------------------------------------------------------

  // One line's verdict: present (significant), below the detection limit
  // (absent, as expected), missing (clearly below what the candidate
  // needs: it contradicts the candidate) or weak (in between).
  PartnerLine judge_line(const Cluster& cl, double relative, double expected, bool companion = false) const {
    PartnerLine pl;
    pl.line = companion ? cl.label.substr(cl.label.find(' ') + 1) + " (" + cl.label.substr(cl.label.find(' ') + 1, 1) +
                              " family)"
                        : short_label(cl.label);
    pl.energy_keV = cl.energy_keV;
    pl.relative = relative;
    pl.expected_counts = expected;
    auto obs = local_counts(cl.energy_keV);
    if (!obs) return pl;
    pl.observed_counts = obs->first;
    pl.observed_sigma = obs->second;
    const double limit = min_sig_ * pl.observed_sigma;
    // The least the line can hold if the candidate is right, less 3 sigma.
    const double least = companion ? kCompanionFloor * pl.expected_counts - 3 * pl.observed_sigma
                                   : pl.expected_counts - 3 * std::hypot(pl.observed_sigma,
                                                                         kRatioUncertainty * pl.expected_counts);
    if (pl.observed_counts >= limit)
      pl.status = "present";
    else if ((companion ? kCompanionFloor : 1.0) * pl.expected_counts < limit)
      pl.status = "below detection limit";
    else if (pl.observed_counts < least)
      pl.status = "missing";
    else
      pl.status = "weak";
    return pl;
  }

  // The evidence for pattern k. The main line's counts are the smaller of
  // the candidate's fitted share and what the spectrum shows at the main
  // line (a fit inflated by tails must not predict partners the spectrum
  // cannot hold); without a significant fit, the hypothesis that the main
  // line's peak is all this candidate's. Only a fitted candidate's main line
  // can be missing.
  Evidence evidence(std::size_t k) const {
    const Pattern& p = patterns_[k];
    Evidence ev;
    ev.area = area_(k);
    ev.area_sigma = area_sigma_(k);
    if (p.kind == "sum") return ev;
    const Cluster& main = p.clusters[p.main];
    const bool fitted = ev.area > 0 && std::isfinite(ev.area_sigma) && ev.area > ev.area_sigma;
    auto seen = local_counts(main.energy_keV);
    double main_counts = seen ? std::max(seen->first, 0.0) : 0.0;
    if (fitted) {
      // The strongest line of a candidate with significant counts must be
      // there itself, not only inferred from partners that other lines explain.
      ev.main = judge_line(main, 1.0, ev.area * main.weight);
      ev.main_checked = true;
      if (ev.main.status == "missing") ev.missing.push_back(ev.main.line);
      main_counts = std::min(main_counts, ev.area * main.weight);
    }
    for (std::size_t j = 0; j < p.clusters.size(); ++j) {
      const Cluster& cl = p.clusters[j];
      const double rel = cl.weight / main.weight;
      if (static_cast<int>(j) == p.main || rel < kPartnerLine || !in_range(cl.energy_keV)) continue;
      PartnerLine pl = judge_line(cl, rel, main_counts * rel);
      if (pl.status.empty()) continue;
      if (pl.status == "missing") ev.missing.push_back(pl.line);
      ev.partners.push_back(pl);
    }
    for (const auto& [cl, rel] : p.companions) {
      PartnerLine pl = judge_line(cl, rel, main_counts * rel, true);
      if (pl.status.empty()) continue;
      if (pl.status == "missing") ev.missing.push_back(pl.line);
      ev.partners.push_back(pl);
    }
    return ev;
  }

  std::string describe(const PartnerLine& pl) const {
    if (pl.status == "present") {
      std::string where;
      if (const IdentifiedPeak* f = peak_at(pl.energy_keV)) where = fmt::format(" at peak {}", f->number);
      if (!(pl.expected_counts > 0)) return fmt::format("{} {:.3f} keV present{}", pl.line, pl.energy_keV, where);
      double ratio = pl.observed_counts / pl.expected_counts;
      // Much more than expected: the peak holds other lines too.
      return fmt::format("{} {:.3f} keV present{} (observed/expected {:.2f}{})", pl.line, pl.energy_keV, where, ratio,
                         ratio > 1.5 ? ", shared with other lines" : "");
    }
    if (pl.status == "below detection limit")
      return fmt::format("{} {:.3f} keV below detection limit ({:.0f} expected)", pl.line, pl.energy_keV,
                         pl.expected_counts);
    return fmt::format("{} {:.3f} keV {} ({:.0f} expected, {:.0f} +- {:.0f} observed)", pl.line, pl.energy_keV,
                       pl.status, pl.expected_counts, pl.observed_counts, pl.observed_sigma);
  }

  void judge_candidates() {
    for (std::size_t k = 0; k < patterns_.size(); ++k) {
      const Pattern& p = patterns_[k];
      IdentifiedCandidate c;
      c.name = p.name;
      c.kind = p.kind;
      c.element = p.element;
      c.family = p.family;
      const Cluster& main = p.clusters[p.main];
      c.main_line = main.label;
      c.main_energy_keV = main.energy_keV;
      c.area = area_(k);
      c.area_sigma = area_sigma_(k);
      c.significance = std::isfinite(c.area_sigma) && c.area_sigma > 0 ? c.area / c.area_sigma : 0.0;
      std::vector<std::string> notes;
      const IdentifiedPeak* at = peak_at(main.energy_keV);
      if (at) {
        c.main_peak = at->number;
        c.main_offset_keV = at->energy_keV - main.energy_keV;
      }
      if (p.kind == "sum") {
        auto [a, b] = sum_parents_.at(k);
        notes.push_back(fmt::format("peak {} + peak {} = {:.3f} keV", a, b, main.energy_keV));
      }
      if (at)
        notes.push_back(fmt::format("{}{:.3f} keV at peak {} ({:+.0f} eV)",
                                    p.kind == "sum" ? "" : short_label(main.label) + " ", main.energy_keV,
                                    c.main_peak, 1000 * c.main_offset_keV));
      else
        notes.push_back(fmt::format("{} {:.3f} keV at no found peak", short_label(main.label), main.energy_keV));
      // A vetoed candidate is judged on the fit that gave it counts.
      const Evidence ev = p.vetoed ? veto_evidence_.at(k) : evidence(k);
      c.partners = ev.partners;
      if (ev.main_checked) {
        c.main_observed_counts = ev.main.observed_counts;
        c.main_observed_sigma = ev.main.observed_sigma;
        if (ev.main.status == "missing") notes.push_back("main line " + describe(ev.main));
      }
      for (const auto& pl : c.partners) notes.push_back(describe(pl));
      std::string verdict;
      if (!p.same_as.empty()) {
        c.status = "possible";
        verdict = fmt::format("coincides with the {} scatter of the tube's lines: the spectrum cannot tell them apart",
                              p.same_as);
      } else if (p.vetoed) {
        c.status = "rejected";
        std::string lines;
        for (const auto& m : ev.missing) lines += (lines.empty() ? "" : ", ") + m;
        verdict = fmt::format("the joint fit gave it {:.0f} +- {:.0f} counts, ruled out by its missing {}", ev.area,
                              ev.area_sigma, lines);
      } else {
        const bool own = has_own_peak(k);
        if (c.main_peak > 0 && c.significance >= min_sig_ && own)
          c.status = "proposed";
        else if (c.significance >= 3.0)
          c.status = "possible";
        else
          c.status = "rejected";
        if (c.status == "possible" && c.significance >= min_sig_ && !own)
          notes.push_back("every peak of its lines is mostly other lines'");
        verdict = fmt::format("joint fit {:.0f} +- {:.0f} counts ({:.1f} sigma)", c.area,
                              std::isfinite(c.area_sigma) ? c.area_sigma : 0.0, c.significance);
        if (c.status == "rejected" && !ev.missing.empty()) {
          std::string lines;
          for (const auto& m : ev.missing) lines += (lines.empty() ? "" : ", ") + m;
          verdict += fmt::format(": ruled out by its missing {}", lines);
        } else if (c.status == "rejected" && c.main_peak > 0) {
          verdict += ": its peak is explained by other lines";
        }
      }
      notes.push_back(verdict);
      for (const auto& n : notes) c.evidence += (c.evidence.empty() ? "" : "; ") + n;
      id_.candidates.push_back(std::move(c));
    }
  }

  // "Fe Ka" -> "Ka" inside an element's own evidence.
  static std::string short_label(const std::string& label) {
    auto sp = label.find(' ');
    return sp == std::string::npos ? label : label.substr(sp + 1);
  }

  void assign_peaks() {
    // Height contributions at each peak of every candidate that is not
    // rejected, per cluster or escape of a cluster.
    for (auto& peak : found_) {
      std::map<std::string, std::pair<double, std::string>> parts;  // label -> height, kind
      for (std::size_t k = 0; k < patterns_.size(); ++k) {
        const Pattern& p = patterns_[k];
        const IdentifiedCandidate& c = id_.candidates[k];
        for (const auto& cl : p.clusters)
          if (std::abs(cl.energy_keV - peak.energy_keV) <= peak.tolerance_keV &&
              cl.weight >= kCandidateLine * p.clusters[p.main].weight)
            add_unique(peak.candidates, p.kind == "sum" ? p.name : cl.label);
        if (c.status == "rejected" || c.area <= 0) continue;
        for (const auto& l : p.lines) {
          double h = line_height(p, c.area, l, peak.energy_keV);
          if (h <= 0) continue;
          std::string label = p.kind == "sum" ? sum_label(k) : p.clusters[l.cluster].label;
          std::string kind = p.kind;
          if (l.escape) {
            label += " escape";
            kind = "escape";
            if (std::abs(peak.energy_keV - l.energy_keV) <= peak.tolerance_keV) add_unique(peak.candidates, label);
          }
          parts[label].first += h;
          parts[label].second = kind;
        }
      }
      double total = 0;
      for (auto& [label, hk] : parts) total += hk.first;
      const double observed = peak.net_counts / sigma_keV(peak.energy_keV);
      std::vector<std::pair<std::string, double>> shares;
      for (auto& [label, hk] : parts)
        if (total > 0 && hk.first / total >= 0.02) shares.emplace_back(label, hk.first / total);
      std::sort(shares.begin(), shares.end(), [](auto& a, auto& b) { return a.second > b.second; });
      peak.contributions = shares;
      if (shares.empty() || total < 0.3 * observed) {
        peak.assignment = "?";
        peak.kind = "unexplained";
      } else {
        peak.assignment = shares[0].first;
        peak.kind = parts[shares[0].first].second;
        if (shares.size() > 1 && shares[1].second >= 0.25) peak.assignment += " + " + shares[1].first;
      }
      id_.peaks.push_back(peak);
    }
    // Name pile-up candidates after what their parents turned out to be.
    for (auto& [k, parents] : sum_parents_) {
      id_.candidates[k].main_line = sum_label(k);
      id_.candidates[k].name = sum_label(k);
    }
    for (auto& peak : id_.peaks)
      for (auto& [k, parents] : sum_parents_)
        for (auto& c : peak.candidates)
          if (c == patterns_[k].name) c = sum_label(k);
    std::stable_sort(id_.candidates.begin(), id_.candidates.end(), [](const auto& a, const auto& b) {
      auto rank = [](const std::string& s) { return s == "proposed" ? 0 : s == "possible" ? 1 : 2; };
      if (rank(a.status) != rank(b.status)) return rank(a.status) < rank(b.status);
      return a.main_energy_keV < b.main_energy_keV;
    });
  }

  // "sum Cu Ka + Cu Ka" once the parents are assigned (peak numbers before).
  std::string sum_label(std::size_t k) const {
    auto [a, b] = sum_parents_.at(k);
    auto name = [&](int number) {
      for (const auto& p : id_.peaks)
        if (p.number == number && p.kind != "unexplained") return p.assignment;
      for (const auto& f : found_)
        if (f.number == number) return fmt::format("{:.2f} keV", f.energy_keV);
      return std::string("?");
    };
    return fmt::format("sum {} + {}", name(a), name(b));
  }

  static void add_unique(std::vector<std::string>& v, const std::string& s) {
    if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
  }

  void suggest_elements() {
    std::map<int, std::set<std::string>> by_z;
    for (const auto& c : id_.candidates)
      if (c.status == "proposed" && c.kind == "fluorescence") by_z[xray::atomic_number(c.element)].insert(c.family);
    for (const auto& [Z, fams] : by_z) {
      std::string f;
      for (const char* name : {"K", "L", "M"})
        if (fams.count(name)) f += (f.empty() ? "" : ",") + std::string(name);
      id_.elements.push_back(xray::element_symbol(Z) + " " + f);
    }
  }

  const std::vector<double>& y_;
  const int n_;
  const double min_sig_;
  Identification id_;
  Calibration cal_;
  xray::Detector det_;
  xray::Excitation exc_;
  std::vector<xray::Layer> attenuators_;
  PeakShape shape_;
  Scatter scatter_;
  bool with_scatter_ = false;
  std::vector<double> bg_, F_, V_, G_;
  int c0_ = 0, c1_ = 0;
  std::vector<IdentifiedPeak> found_;
  std::vector<xray::Excitation::Bin> excitation_bins_;
  std::vector<Pattern> patterns_;
  std::map<std::size_t, std::pair<int, int>> sum_parents_;
  std::map<std::size_t, Evidence> veto_evidence_;
  Eigen::MatrixXd design_, escapes_, normal_;  // escapes_: the escape-peak part of design_
  Eigen::VectorXd area_, area_sigma_;
};

nlohmann::json number_or_null(double x) { return std::isfinite(x) ? nlohmann::json(x) : nlohmann::json(nullptr); }

}  // namespace

Identification identify_peaks(const io::Spectrum& spectrum, const FitConfig* config, double min_significance) {
  if (!(min_significance > 0))
    throw usage_error("invalid --min-significance", fmt::format("{:g}", min_significance), "must be > 0");
  return Identifier(spectrum, config, min_significance).run();
}

nlohmann::json identification_to_json(const Identification& id) {
  using nlohmann::json;
  json j;
  j["source"] = id.source;
  j["channels"] = id.channels;
  j["calibration"] = {{"offset_keV", id.calibration.offset_keV},
                      {"gain_keV", id.calibration.gain_keV},
                      {"quadratic_keV", id.calibration.quadratic_keV},
                      {"from", id.calibration_source}};
  j["detector"] = {{"noise_fwhm_keV", id.noise_fwhm_keV}, {"fano", id.fano}, {"from", id.width_source}};
  if (!id.excitation.empty()) j["excitation"] = id.excitation;
  j["min_significance"] = id.min_significance;
  j["energy_range_keV"] = {id.energy_min_keV, id.energy_max_keV};
  j["chi2_reduced"] = id.chi2_reduced;
  json peaks = json::array();
  for (const auto& p : id.peaks) {
    json contributions = json::array();
    for (const auto& [label, share] : p.contributions) contributions.push_back({{"line", label}, {"share", share}});
    peaks.push_back({{"peak", p.number},
                     {"channel", p.channel},
                     {"energy_keV", p.energy_keV},
                     {"significance", p.significance},
                     {"net_counts", p.net_counts},
                     {"net_counts_sigma", p.net_counts_sigma},
                     {"fwhm_keV", number_or_null(p.fwhm_keV)},
                     {"expected_fwhm_keV", p.expected_fwhm_keV},
                     {"tolerance_keV", p.tolerance_keV},
                     {"assignment", p.assignment},
                     {"kind", p.kind},
                     {"contributions", contributions},
                     {"candidates", p.candidates}});
  }
  j["peaks"] = peaks;
  json cands = json::array();
  for (const auto& c : id.candidates) {
    json partners = json::array();
    for (const auto& l : c.partners)
      partners.push_back({{"line", l.line},
                          {"energy_keV", l.energy_keV},
                          {"relative", l.relative},
                          {"expected_counts", l.expected_counts},
                          {"observed_counts", l.observed_counts},
                          {"observed_sigma", l.observed_sigma},
                          {"status", l.status}});
    json jc = {{"name", c.name},
               {"kind", c.kind},
               {"status", c.status},
               {"main_line", c.main_line},
               {"main_energy_keV", c.main_energy_keV},
               {"main_peak", c.main_peak > 0 ? json(c.main_peak) : json(nullptr)},
               {"area", c.area},
               {"area_sigma", number_or_null(c.area_sigma)},
               {"significance", c.significance},
               {"partners", partners},
               {"evidence", c.evidence}};
    if (c.main_peak > 0) jc["main_offset_keV"] = c.main_offset_keV;
    if (c.main_observed_sigma > 0)
      jc["main_observed"] = {{"counts", c.main_observed_counts}, {"sigma", c.main_observed_sigma}};
    if (c.kind == "fluorescence") {
      jc["element"] = c.element;
      jc["family"] = c.family;
    }
    cands.push_back(jc);
  }
  j["candidates"] = cands;
  j["elements"] = id.elements;
  return j;
}

std::string identification_table(const Identification& id) {
  std::string t;
  t += fmt::format("# {}: {} channels, peaks searched {:.2f}-{:.2f} keV above {:g} sigma\n", id.source, id.channels,
                   id.energy_min_keV, id.energy_max_keV, id.min_significance);
  t += fmt::format("# calibration ({}): E = {:.6g} + {:.6g} ch{} keV; detector width ({}): noise {:.3f} keV FWHM, "
                   "Fano {:.3f}{}\n",
                   id.calibration_source, id.calibration.offset_keV, id.calibration.gain_keV,
                   id.calibration.quadratic_keV != 0 ? fmt::format(" + {:.6g} ch^2", id.calibration.quadratic_keV) : "",
                   id.width_source, id.noise_fwhm_keV, id.fano,
                   id.excitation.empty() ? "" : "; excitation: " + id.excitation);
  t += fmt::format("{:>4}  {:>10}  {:>8}  {:>8}  {:>11}  {:>8}  {:<28}  {}\n", "peak", "energy_keV", "channel", "signif",
                   "net_counts", "fwhm_keV", "assignment", "candidates");
  for (const auto& p : id.peaks) {
    std::string cands;
    for (const auto& c : p.candidates) cands += (cands.empty() ? "" : ", ") + c;
    t += fmt::format("{:>4}  {:>10.3f}  {:>8.1f}  {:>8.1f}  {:>11.0f}  {:>8}  {:<28}  {}\n", p.number, p.energy_keV,
                     p.channel, p.significance, p.net_counts,
                     std::isfinite(p.fwhm_keV) ? fmt::format("{:.3f}", p.fwhm_keV) : "-", p.assignment,
                     cands.empty() ? "-" : cands);
  }
  if (id.candidates.empty()) {
    t += "# candidates: none\n";
  } else {
    t += fmt::format("# candidates: all patterns fitted together to the net spectrum (reduced chi-square {:.2f})\n",
                     id.chi2_reduced);
    t += fmt::format("# {:<22}  {:<9}  {}\n", "candidate", "status", "evidence");
    for (const auto& c : id.candidates) t += fmt::format("# {:<22}  {:<9}  {}\n", c.name, c.status, c.evidence);
  }
  t += "\"elements\": " + nlohmann::json(id.elements).dump() + "\n";
  return t;
}

int run_identify(const IdentifyOptions& options) {
  if (options.format != "table" && options.format != "json")
    throw usage_error("invalid --format", options.format, "--identify writes table or json");
  std::optional<FitConfig> config;
  if (!options.config.empty()) config = load_fit_config(find_config(options.config));
  io::Spectrum spectrum = io::read_spectrum(options.input);
  Identification id = identify_peaks(spectrum, config ? &*config : nullptr, options.min_significance);
  if (options.format == "json")
    std::cout << identification_to_json(id).dump(2) << '\n';
  else
    std::cout << identification_table(id);
  std::cout.flush();
  return 0;
}

}  // namespace opx::xrf
