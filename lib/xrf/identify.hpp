#pragma once
// Peak identification (cmx-fit --identify): the peaks of one spectrum and the
// elements, line families and other sources (detector escape, pile-up,
// scatter of the tube's lines) that explain them, with the evidence, so that
// a quick look at an unknown sample needs no prepared configuration.
//
// 1. Peak search. The background is SNIP-stripped; the net spectrum is
//    correlated with the negative second derivative of a Gaussian whose
//    width follows the detector resolution at each channel, made zero-sum so
//    that a locally linear background cancels (the classic second-difference
//    search, Mariscotti, NIM 50 (1967) 309; Van Espen, Handbook of X-Ray
//    Spectrometry, ch. 4). With kernel k, the filter value F = sum k_j y_j
//    has the Poisson variance V = sum k_j^2 y_j; the significance is
//    F / sqrt(V). Peaks are the filter's local maxima above the threshold;
//    their net counts come from a local least-squares fit of Gaussians at
//    the peak and its neighbours, their FWHM from the peak's own shape.
// 2. Candidates. Every element and K, L, M family with a line (at least 5 %
//    of its family's main line) within tolerance of a found peak:
//    tolerance = max(2 x calibration uncertainty, FWHM / 4). Its pattern
//    comes from xraylib: production at the excitation times the detector
//    efficiency (as in the fit model), plus the detector escape peaks. With
//    a configuration that has an excitation, the Rayleigh and Compton
//    scatter of the source's lines are candidates too; pairs of strong peaks
//    whose sum energy meets a weak peak are pile-up candidates.
// 3. Decision. All candidate patterns are fitted together to the net
//    spectrum (non-negative least squares; Poisson variance plus 10 % of the
//    pattern itself, so that a slightly wrong line ratio of a strong peak is
//    not taken for a minor element), so that lines that overlap (Pb
//    L-alpha 10.55 keV and As K-alpha 10.54 keV) are shared out by their
//    partner lines (Pb L-beta 12.61 keV, As K-beta 11.73 keV). Each line of
//    a candidate is then checked against the counts the spectrum holds at
//    its energy (a local fit that takes out neighbouring peaks): present,
//    below the detection limit (absent, as it may be), weak, or missing
//    (clearly below what the candidate needs). A candidate that the fit
//    gave counts but whose main line is not seen or one of whose partner
//    lines is missing is ruled out and the fit repeated without it.
//    A higher-energy family of the same element (Br K for Br L), which any
//    matrix absorbs less, is checked the same way with a generous margin.
//    Proposed: significant fitted counts, the main line at a found peak,
//    and at least one peak that is mostly this candidate's. Possible: at
//    least 3 sigma otherwise (V K-alpha hidden under Ti K-beta), or the
//    anode's own lines, which coincide with the Rayleigh scatter of the
//    tube. Rejected: the rest, with the reason.
// 4. Each peak is assigned to the lines (fluorescence, escape, pile-up,
//    Rayleigh, Compton) that make most of the fitted model at its energy;
//    a peak the model leaves mostly unexplained is "?".
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "io/spectrum_file.hpp"
#include "xrf/config.hpp"

namespace opx::xrf {

struct IdentifiedPeak {
  int number = 0;  // 1-based, in order of energy
  double channel = 0, energy_keV = 0;
  double significance = 0;
  double net_counts = 0, net_counts_sigma = 0;
  double fwhm_keV = 0;           // measured; NaN when the peak's shape could not be measured
  double expected_fwhm_keV = 0;  // the detector's resolution at this energy
  double tolerance_keV = 0;
  std::string assignment;  // "Fe Ka", "Cu Ka escape", "sum Cu Ka + Cu Ka", "Rayleigh Mo Ka", "?"
  std::string kind;        // fluorescence, escape, sum, rayleigh, compton, unexplained
  std::vector<std::pair<std::string, double>> contributions;  // component and its share of the fitted peak
  std::vector<std::string> candidates;  // candidates with a line within tolerance
};

struct PartnerLine {
  std::string line;  // "Kb"
  double energy_keV = 0;
  double relative = 0;  // intensity relative to the main line
  double expected_counts = 0;  // if the main peak were all this candidate's
  double observed_counts = 0, observed_sigma = 0;
  std::string status;  // present, below detection limit, weak, missing
};

struct IdentifiedCandidate {
  std::string name;  // "Fe K", "Rayleigh", "Compton", "sum 8.05 + 8.05 keV"
  std::string kind;  // fluorescence, rayleigh, compton, sum
  std::string element, family;
  std::string main_line;
  double main_energy_keV = 0;
  int main_peak = 0;  // number of the peak the main line sits at, 0 if none
  double main_offset_keV = 0;
  double main_observed_counts = 0, main_observed_sigma = 0;  // when checked against a fitted area
  double area = 0, area_sigma = 0, significance = 0;  // joint fit, counts in the photopeaks
  std::string status;  // proposed, possible, rejected
  std::vector<PartnerLine> partners;
  std::string evidence;  // one line for people
};

struct Identification {
  std::string source;
  int channels = 0;
  Calibration calibration;
  std::string calibration_source;  // "config" or "file"
  double noise_fwhm_keV = 0, fano = 0;
  std::string width_source;  // "config", "estimated from the peaks", "default"
  std::string excitation;    // description, or empty without a configuration
  double min_significance = 0;
  double energy_min_keV = 0, energy_max_keV = 0;  // range searched
  double chi2_reduced = 0;                        // of the joint fit
  std::vector<IdentifiedPeak> peaks;
  std::vector<IdentifiedCandidate> candidates;  // proposed first, then possible, then rejected
  std::vector<std::string> elements;            // ready for a fit configuration: "Mn K", "Pb L,M"
};

// Identifies the peaks of `spectrum`. Calibration: the configuration's when
// `config` is given, else the file's; neither is a usage error. Detector
// width: the configuration's, else estimated from the strongest isolated
// peaks (Fano factor 0.114 assumed). Excitation (line ratios, scatter): the
// configuration's, else a Cu tube at 50 kV for the ratios and no scatter.
Identification identify_peaks(const io::Spectrum& spectrum, const FitConfig* config, double min_significance);

nlohmann::json identification_to_json(const Identification& id);
// A table for people: a '#' header, one row per peak, the candidates with
// their evidence, and a last line "elements": [...] to paste into a fit
// configuration.
std::string identification_table(const Identification& id);

}  // namespace opx::xrf
