#pragma once
// Fitting engines of cmx-fit.
//  fit_spectrum():  nonlinear least squares of one spectrum (bounded
//     Levenberg-Marquardt over calibration, detector width, Compton
//     broadening and tails, with the areas and background coefficients
//     solved exactly at every step: variable projection).
//  StackFitter:     the fast linear fit of every spectrum of a stack with
//     those nonlinear parameters fixed (see stack_fit.hpp).
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "xrf/model.hpp"

namespace opx::xrf {

// One refined nonlinear parameter with its standard uncertainty (NaN when
// the spectrum does not determine it).
struct RefinedParam {
  std::string name;
  double value, sigma;
};

struct SpectrumFit {
  ResponseParams params;
  std::vector<RefinedParam> refined;
  std::vector<std::string> group_names;
  Eigen::VectorXd area, area_sigma;    // counts, per group
  std::vector<bool> at_bound;          // area held at zero by the non-negativity constraint
  Eigen::VectorXd background_coef;     // smooth-basis coefficients (empty for SNIP)
  std::vector<double> model;           // over the fit range: peaks + background
  std::vector<double> background;      // over the fit range
  int first_channel = 0;
  double chi2 = 0, chi2_reduced = 0;
  int dof = 0, iterations = 0;
  bool converged = false;
  std::vector<std::string> messages;   // degeneracy merges and other notes
  Eigen::MatrixXd correlation;         // of [refined..., areas...]
};

// Fits one spectrum. `model` may be changed: degenerate groups are merged
// and a pile-up group is added when the configuration asks for it. The
// nonlinear parameters start from `start` when given (e.g. the sum
// spectrum's fit), else from the configuration.
// `merge` = false keeps the model's groups as they are (a model already
// merged for the sum spectrum of a stack, whose output has those groups).
SpectrumFit fit_spectrum(SpectrumModel& model, const std::vector<double>& counts,
                         const ResponseParams* start = nullptr, bool merge = true);

// The background of one spectrum over the fit range when the configuration
// uses SNIP (empty otherwise), from the counts over the whole spectrum.
std::vector<double> snip_over_fit_range(const SpectrumModel& model, const double* counts);

// Smooth background basis over the fit range (polynomial or spline), or an
// empty matrix; with SNIP, the optional constant+linear offset terms.
Eigen::MatrixXd background_basis(const SpectrumModel& model);

// SNIP parameters in channels from the configuration's keV values.
int snip_width_channels(const SpectrumModel& model);
int snip_smooth_channels(const SpectrumModel& model);

// Self-convolution of a peak model over the fit range, normalized to unit
// sum: the shape of random-summing (pile-up) peaks.
Eigen::VectorXd pileup_shape(const SpectrumModel& model, const ResponseParams& p, const Eigen::VectorXd& peaks);

}  // namespace opx::xrf
