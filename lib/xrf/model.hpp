#pragma once
// The spectrum model of cmx-fit:
//   counts(ch) = sum_g area_g * column_g(ch; theta) + background(ch)
// Each group g is one element's line family (or the Rayleigh or Compton
// scatter of the source lines, or pile-up): its lines have fixed relative
// weights from xraylib (production at the excitation, detector efficiency,
// attenuators) normalized so that area_g is the number of counts in the
// group's photopeaks. theta are the nonlinear parameters: energy
// calibration, detector noise and Fano factor, Compton broadening, tails.
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "xrf/config.hpp"

namespace opx::xrf {

struct EscapePeak {
  double energy_keV;  // where the escape peak sits
  double fraction;    // its counts relative to the parent photopeak
};

struct ModelLine {
  double energy_keV;
  double weight;      // share of the group's photopeak counts
  std::string label;  // "Mn KL3"
  std::vector<EscapePeak> escapes{};  // detector escape peaks of this line
};

enum class GroupKind { fluorescence, rayleigh, compton, pileup };

struct PeakGroup {
  std::string name;                  // "Mn K", "Rayleigh", "Compton", "Cu K + Rayleigh"
  GroupKind kind = GroupKind::fluorescence;
  std::vector<ModelLine> lines;
  std::vector<std::string> merged;   // names of groups merged into this one (degenerate)
  bool compton_width = false;        // lines carry the extra Compton broadening
};

// Nonlinear parameters.
struct ResponseParams {
  double offset_keV = 0, gain_keV = 0.01, quadratic_keV = 0;
  double noise_fwhm_keV = 0.1, fano = 0.114;
  double compton_extra_fwhm_keV = 0.15;
  PeakShape shape;
};

// Model columns over the fit range: one dense column per group (zero outside
// its support [lo, hi)), channel-major.
struct Columns {
  Eigen::MatrixXd a;              // [n_fit, n_groups]
  std::vector<int> lo, hi;        // support per column, in fit-range indices
};

class SpectrumModel {
 public:
  // Builds the groups for `cfg` on spectra of `n_channels` channels and
  // fixes the fit range from the configured calibration. Lines whose
  // energy falls outside the spectrum are kept in the normalization but not
  // evaluated. Throws config error when no group lies in the fit range.
  SpectrumModel(const FitConfig& cfg, int n_channels);

  const FitConfig& config() const { return cfg_; }
  int n_channels() const { return n_channels_; }
  int first_channel() const { return first_; }      // fit range [first, last)
  int last_channel() const { return last_; }
  int n_fit() const { return last_ - first_; }
  const std::vector<PeakGroup>& groups() const { return groups_; }
  std::vector<PeakGroup>& groups() { return groups_; }
  ResponseParams initial_params() const;

  // Channel energies and widths over the fit range for a calibration.
  void channel_energies(const ResponseParams& p, std::vector<double>& energy, std::vector<double>& width) const;
  // Fills one column per group.
  void build_columns(const ResponseParams& p, Columns& out) const;

  // Analytic derivatives of the peak model sum_g area_g column_g with
  // respect to the nonlinear parameters, one column of `out` per entry of
  // `which`, for the pure-Gaussian response (returns false, leaving `out`
  // untouched, when the peak shape has tails or a step: use differences).
  enum class Derivative { offset, gain, noise, fano, compton_extra };
  bool peak_derivatives(const ResponseParams& p, const Eigen::VectorXd& areas, const std::vector<Derivative>& which,
                        Eigen::MatrixXd& out) const;

  // Merges groups whose columns are indistinguishable (cosine similarity
  // above cfg.fit.degeneracy_cosine under weights w over the fit range), e.g.
  // Cu K fluorescence and the Rayleigh scatter of a Cu tube's lines. Returns
  // one message per merge for the user.
  std::vector<std::string> merge_degenerate(const ResponseParams& p, const Eigen::VectorXd& w);

 private:
  void add_group_lines(const ResponseParams& p, const PeakGroup& g, const std::vector<double>& energy,
                       const std::vector<double>& width, double* col, int& lo, int& hi) const;
  FitConfig cfg_;
  int n_channels_;
  int first_ = 0, last_ = 0;
  std::vector<PeakGroup> groups_;
};

// Fills each line's escape peaks for the configured detector.
void attach_escape_peaks(std::vector<PeakGroup>& groups, const xray::Detector& det);

}  // namespace opx::xrf
