#include "xrf/fit.hpp"

#include <algorithm>
#include <cmath>
#include <functional>
#include <limits>
#include <optional>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/log.hpp"
#include "xrf/background.hpp"
#include "xrf/nnls.hpp"

namespace opx::xrf {
namespace {

// A refinable nonlinear parameter: how to read and write it in
// ResponseParams, its bounds and its finite-difference step.
struct ParamSpec {
  std::string name;
  std::function<double&(ResponseParams&)> ref;
  double lower, upper, step;
  std::optional<SpectrumModel::Derivative> analytic{};  // derivative the model computes itself
};

std::vector<ParamSpec> refinable(const SpectrumModel& model) {
  const FitConfig& c = model.config();
  std::vector<ParamSpec> specs;
  const double gain0 = c.calibration.gain_keV;
  if (c.fit.refine_calibration) {
    specs.push_back({"offset_keV", [](ResponseParams& p) -> double& { return p.offset_keV; },
                     c.calibration.offset_keV - 30 * gain0, c.calibration.offset_keV + 30 * gain0, 1e-3 * gain0, SpectrumModel::Derivative::offset});
    specs.push_back({"gain_keV", [](ResponseParams& p) -> double& { return p.gain_keV; }, 0.95 * gain0,
                     1.05 * gain0, 1e-6 * gain0, SpectrumModel::Derivative::gain});
  }
  if (c.fit.refine_width) {
    specs.push_back({"noise_fwhm_keV", [](ResponseParams& p) -> double& { return p.noise_fwhm_keV; }, 0.005, 0.6,
                     1e-5, SpectrumModel::Derivative::noise});
    specs.push_back({"fano", [](ResponseParams& p) -> double& { return p.fano; }, 0.02, 0.4, 1e-5,
                     SpectrumModel::Derivative::fano});
  }
  bool has_compton = std::any_of(model.groups().begin(), model.groups().end(),
                                 [](const PeakGroup& g) { return g.compton_width; });
  if (c.fit.refine_compton && has_compton)
    specs.push_back({"compton_extra_fwhm_keV", [](ResponseParams& p) -> double& { return p.compton_extra_fwhm_keV; },
                     0.0, 2.0, 1e-4, SpectrumModel::Derivative::compton_extra});
  if (c.fit.refine_tails) {
    if (c.peak_shape.short_tail_area > 0) {
      specs.push_back({"short_tail_area", [](ResponseParams& p) -> double& { return p.shape.short_tail_area; }, 0.0,
                       0.5, 1e-5});
      // Slopes in units of sigma; PyMca's defaults (0.5 and 10 keV decay
      // lengths, imported with --import-pymca) are about 7 and 140 sigma.
      specs.push_back({"short_tail_slope", [](ResponseParams& p) -> double& { return p.shape.short_tail_slope; },
                       0.2, 20.0, 1e-4});
    }
    if (c.peak_shape.long_tail_area > 0) {
      specs.push_back({"long_tail_area", [](ResponseParams& p) -> double& { return p.shape.long_tail_area; }, 0.0,
                       0.5, 1e-5});
      specs.push_back({"long_tail_slope", [](ResponseParams& p) -> double& { return p.shape.long_tail_slope; }, 2.0,
                       300.0, 1e-3});
    }
    if (c.peak_shape.step_height > 0)
      specs.push_back({"step_height", [](ResponseParams& p) -> double& { return p.shape.step_height; }, 0.0, 0.05,
                       1e-6});
  }
  return specs;
}

// State of one evaluation of the variable-projection objective.
struct Evaluation {
  Columns cols;
  Eigen::MatrixXd d;       // design [n, coefficients]
  Eigen::MatrixXd normal;  // D'WD
  Eigen::VectorXd x;       // [areas..., background coefficients...]
  Eigen::VectorXd r;       // weighted residual
  std::vector<bool> at_bound;
  double chi2 = 0;
};

class Problem {
 public:
  Problem(const SpectrumModel& model, const Eigen::VectorXd& y, const Eigen::VectorXd& fixed_bg,
          const Eigen::MatrixXd& basis)
      : model_(model), y_(y - fixed_bg), basis_(basis) {
    m_ = static_cast<int>(model.groups().size());
    pileup_index_ = -1;
    for (int g = 0; g < m_; ++g)
      if (model.groups()[g].kind == GroupKind::pileup) pileup_index_ = g;
    column_extents(basis_, basis_lo_, basis_hi_);
  }

  void set_weights(const Eigen::VectorXd& w) {
    w_ = w;
    sqrt_w_ = w.cwiseSqrt();
  }
  const Eigen::VectorXd& weights() const { return w_; }
  void set_pileup(const Eigen::VectorXd& shape) { pileup_ = shape; }
  int n_groups() const { return m_; }
  int n_coef() const { return m_ + static_cast<int>(basis_.cols()); }

  // Design matrix over the fit range for params p.
  void design(const ResponseParams& p, Columns& cols, Eigen::MatrixXd& d) const {
    model_.build_columns(p, cols);
    if (pileup_index_ >= 0 && pileup_.size() == cols.a.rows()) cols.a.col(pileup_index_) = pileup_;
    d.resize(cols.a.rows(), n_coef());
    d.leftCols(m_) = cols.a;
    if (basis_.cols() > 0) d.rightCols(basis_.cols()) = basis_;
  }

  void evaluate(const ResponseParams& p, Evaluation& ev) const {
    Eigen::MatrixXd& d = ev.d;
    design(p, ev.cols, d);
    Eigen::MatrixXd wd = w_.asDiagonal() * d;
    // Normal equations over the overlap of the columns' supports only: a
    // peak group spans a few hundred channels of the fit range.
    const int nc = n_coef();
    std::vector<int> lo(nc), hi(nc);
    for (int j = 0; j < nc; ++j) {
      bool peak = j < m_;
      lo[j] = peak ? ev.cols.lo[j] : basis_lo_[j - m_];
      hi[j] = peak ? ev.cols.hi[j] : basis_hi_[j - m_];
      if (peak && j == pileup_index_) {
        lo[j] = 0;
        hi[j] = static_cast<int>(d.rows());
      }
    }
    Eigen::MatrixXd n(nc, nc);
    Eigen::VectorXd b(nc);
    for (int i = 0; i < nc; ++i) {
      b(i) = hi[i] > lo[i] ? wd.col(i).segment(lo[i], hi[i] - lo[i]).dot(y_.segment(lo[i], hi[i] - lo[i])) : 0.0;
      for (int j = i; j < nc; ++j) {
        int a = std::max(lo[i], lo[j]), e = std::min(hi[i], hi[j]);
        n(i, j) = n(j, i) = e > a ? wd.col(i).segment(a, e - a).dot(d.col(j).segment(a, e - a)) : 0.0;
      }
    }
    std::vector<bool> constrained(n_coef(), false);
    for (int g = 0; g < m_; ++g) constrained[g] = true;
    // A tiny ridge keeps columns that vanish in the range (e.g. a group whose
    // lines all fall outside) from making the system singular.
    for (int i = 0; i < n.rows(); ++i) n(i, i) += 1e-12 * std::max(n(i, i), 1e-300) + 1e-300;
    ev.x.resize(n_coef());
    auto res = nnls_normal(n, b, constrained, ev.x);
    ev.at_bound = res.at_bound;
    ev.normal = std::move(n);
    ev.r = sqrt_w_.cwiseProduct(y_ - d * ev.x);
    ev.chi2 = ev.r.squaredNorm();
  }

  // Residual with the coefficients held at x (for the covariance).
  Eigen::VectorXd residual_fixed(const ResponseParams& p, const Eigen::VectorXd& x) const {
    Columns cols;
    Eigen::MatrixXd d;
    design(p, cols, d);
    return sqrt_w_.cwiseProduct(y_ - d * x);
  }

  Eigen::VectorXd model_counts(const ResponseParams& p, const Eigen::VectorXd& x) const {
    Columns cols;
    Eigen::MatrixXd d;
    design(p, cols, d);
    return d * x;
  }
  Eigen::VectorXd peaks_only(const ResponseParams& p, const Eigen::VectorXd& x) const {
    Columns cols;
    model_.build_columns(p, cols);
    Eigen::VectorXd out = Eigen::VectorXd::Zero(cols.a.rows());
    for (int g = 0; g < m_; ++g)
      if (g != pileup_index_) out += x(g) * cols.a.col(g);
    return out;
  }

  const Eigen::VectorXd& data() const { return y_; }

  // Jacobian of the variable-projection residual by Kaufman's
  // approximation: J_k = -P W^1/2 (dA/dtheta_k) x, with P the projector
  // onto the complement of the weighted design's free columns (Kaufman,
  // BIT 15 (1975) 49; Golub & Pereyra, Inverse Problems 19 (2003) R1).
  // Needs analytic derivatives for every parameter; false otherwise.
  bool kaufman_jacobian(const ResponseParams& p, const Evaluation& ev, const std::vector<ParamSpec>& specs,
                        Eigen::MatrixXd& j) const {
    std::vector<SpectrumModel::Derivative> which;
    for (const auto& s : specs) {
      if (!s.analytic) return false;
      which.push_back(*s.analytic);
    }
    Eigen::MatrixXd dm;
    if (!model_.peak_derivatives(p, ev.x.head(m_), which, dm)) return false;
    j = -(sqrt_w_.asDiagonal() * dm);
    std::vector<int> free_idx;
    for (int c = 0; c < n_coef(); ++c)
      if (!ev.at_bound[c]) free_idx.push_back(c);
    const int q = static_cast<int>(free_idx.size());
    if (q == 0) return true;
    Eigen::MatrixXd ds(ev.d.rows(), q), np(q, q);
    for (int a = 0; a < q; ++a) {
      ds.col(a) = sqrt_w_.cwiseProduct(ev.d.col(free_idx[a]));
      for (int b = 0; b < q; ++b) np(a, b) = ev.normal(free_idx[a], free_idx[b]);
    }
    Eigen::MatrixXd coef = np.ldlt().solve(ds.transpose() * j);
    j -= ds * coef;
    return true;
  }

 private:
  const SpectrumModel& model_;
  Eigen::VectorXd y_, w_, sqrt_w_, pileup_;
  Eigen::MatrixXd basis_;
  std::vector<int> basis_lo_, basis_hi_;
  int m_ = 0, pileup_index_ = -1;
};

// Forward difference of a residual with respect to one parameter, stepping
// backwards at the upper bound.
template <typename Residual>
Eigen::VectorXd forward_difference(const ParamSpec& spec, const ResponseParams& p, const Eigen::VectorXd& r0,
                                   Residual&& residual) {
  ResponseParams q = p;
  double& v = spec.ref(q);
  double h = spec.step;
  if (v + h > spec.upper) h = -h;
  v += h;
  return (residual(q) - r0) / h;
}

// Bounded Levenberg-Marquardt over the nonlinear parameters; the linear
// coefficients are re-solved at every evaluation (variable projection), and
// the Jacobian of that projected residual is taken by forward differences.
int levenberg_marquardt(const Problem& prob, const std::vector<ParamSpec>& specs, ResponseParams& p,
                        Evaluation& ev, int max_iter, bool& converged) {
  const int k = static_cast<int>(specs.size());
  prob.evaluate(p, ev);
  converged = k == 0;
  if (k == 0) return 0;
  double lambda = 1e-3;
  int it = 0;
  Evaluation trial;
  for (; it < max_iter; ++it) {
    Eigen::MatrixXd j(ev.r.size(), k);
    if (!prob.kaufman_jacobian(p, ev, specs, j)) {
      // Tails or a step in the response: forward differences of the
      // projected residual (each re-solves the linear coefficients).
      for (int c = 0; c < k; ++c)
        j.col(c) = forward_difference(specs[c], p, ev.r, [&](const ResponseParams& q) {
          Evaluation e2;
          prob.evaluate(q, e2);
          return e2.r;
        });
    }
    Eigen::MatrixXd h = j.transpose() * j;
    Eigen::VectorXd g = j.transpose() * ev.r;
    bool improved = false;
    while (lambda < 1e7) {
      Eigen::MatrixXd a = h;
      for (int c = 0; c < k; ++c) a(c, c) += lambda * std::max(h(c, c), 1e-30);
      Eigen::VectorXd delta = a.ldlt().solve(-g);
      ResponseParams q = p;
      for (int c = 0; c < k; ++c) {
        double& v = specs[c].ref(q);
        v = std::clamp(v + delta(c), specs[c].lower, specs[c].upper);
      }
      prob.evaluate(q, trial);
      if (trial.chi2 < ev.chi2) {
        // chi2 is in units of variance: a decrease below 0.01 means the
        // parameters moved by about a tenth of their uncertainty or less.
        double decrease = ev.chi2 - trial.chi2;
        p = q;
        std::swap(ev, trial);
        lambda = std::max(lambda / 5.0, 1e-9);
        improved = true;
        if (decrease < 1e-2) {
          converged = true;
          return it + 1;
        }
        break;
      }
      lambda *= 5.0;
    }
    if (!improved) {  // no downhill step: at a minimum within the bounds
      converged = true;
      return it + 1;
    }
  }
  return it;
}

Eigen::VectorXd model_weights(const Eigen::VectorXd& mu) {
  return mu.cwiseMax(1.0).cwiseInverse();
}

}  // namespace

int snip_width_channels(const SpectrumModel& model) {
  const FitConfig& c = model.config();
  return std::max(1, static_cast<int>(std::lround(c.background.snip_width_keV / c.calibration.gain_keV)));
}

int snip_smooth_channels(const SpectrumModel& model) {
  const FitConfig& c = model.config();
  return std::max(0, static_cast<int>(std::lround(c.background.smoothing_keV / c.calibration.gain_keV)));
}

std::vector<double> snip_over_fit_range(const SpectrumModel& model, const double* counts) {
  // SNIP runs on the fit range only: outside it the spectrum may bend or
  // fall steeply (absorption edges of air and window, the detector's
  // threshold), and a clipping window straddling that would drag the
  // background estimate down at the range's ends.
  if (model.config().background.method != BackgroundMethod::snip) return {};
  const int n = model.n_fit();
  std::vector<double> bg(n), work(2 * n);
  snip_background<double>(counts + model.first_channel(), n, snip_width_channels(model), snip_smooth_channels(model),
                          bg.data(), work.data());
  return bg;
}

Eigen::MatrixXd background_basis(const SpectrumModel& model) {
  const Background& b = model.config().background;
  switch (b.method) {
    case BackgroundMethod::polynomial: return polynomial_basis(model.n_fit(), b.polynomial_order);
    case BackgroundMethod::spline: return spline_basis(model.n_fit(), b.spline_segments);
    case BackgroundMethod::snip: return b.snip_linear_offset ? polynomial_basis(model.n_fit(), 1) : Eigen::MatrixXd();
    case BackgroundMethod::none: return {};
  }
  return {};
}

Eigen::VectorXd pileup_shape(const SpectrumModel& model, const ResponseParams& p, const Eigen::VectorXd& peaks) {
  // Two photons of E_i and E_j arriving together are recorded at E_i + E_j,
  // i.e. at channel i + j + offset/gain (linear calibration).
  const int n = static_cast<int>(peaks.size());
  const int first = model.first_channel();
  const int shift = static_cast<int>(std::lround(p.offset_keV / p.gain_keV)) + first;
  Eigen::VectorXd out = Eigen::VectorXd::Zero(n);
  for (int i = 0; i < n; ++i) {
    if (peaks(i) <= 0) continue;
    for (int j = i; j < n; ++j) {
      int k = i + j + shift;  // fit-range index of the sum channel
      if (k >= n) break;
      if (k < 0 || peaks(j) <= 0) continue;
      out(k) += (i == j ? 1.0 : 2.0) * peaks(i) * peaks(j);
    }
  }
  double s = out.sum();
  if (s > 0) out /= s;
  return out;
}

SpectrumFit fit_spectrum(SpectrumModel& model, const std::vector<double>& counts, const ResponseParams* start,
                         bool merge) {
  const FitConfig& cfg = model.config();
  if (static_cast<int>(counts.size()) != model.n_channels())
    throw data_error("cannot fit spectrum", cfg.source,
                     fmt::format("spectrum has {} channels, the model {}", counts.size(), model.n_channels()));
  SpectrumFit out;
  const int n = model.n_fit();
  const int first = model.first_channel();
  Eigen::VectorXd y = Eigen::Map<const Eigen::VectorXd>(counts.data() + first, n);
  std::vector<double> snip = snip_over_fit_range(model, counts.data());
  Eigen::VectorXd fixed_bg = Eigen::VectorXd::Zero(n);
  if (!snip.empty()) fixed_bg = Eigen::Map<Eigen::VectorXd>(snip.data(), n);
  Eigen::MatrixXd basis = background_basis(model);

  // First weights from the data smoothed over +-2 channels (raw counts would
  // pull the fit towards low fluctuations).
  Eigen::VectorXd w = Eigen::VectorXd::Ones(n);
  if (cfg.fit.poisson_weights) {
    Eigen::VectorXd smooth(n);
    for (int i = 0; i < n; ++i) {
      int lo = std::max(0, i - 2), hi = std::min(n, i + 3);
      smooth(i) = y.segment(lo, hi - lo).mean();
    }
    w = model_weights(smooth);
  }
  ResponseParams p = start ? *start : model.initial_params();
  if (merge) {
    out.messages = model.merge_degenerate(p, w);
    for (const auto& m : out.messages) log::warn("{}", m);
  }
  if (cfg.fit.pileup && std::none_of(model.groups().begin(), model.groups().end(),
                                     [](const PeakGroup& g) { return g.kind == GroupKind::pileup; }))
    model.groups().push_back({"Pile-up", GroupKind::pileup, {}, {}, false});

  Problem prob(model, y, fixed_bg, basis);
  prob.set_weights(w);
  auto specs = refinable(model);
  Evaluation ev;
  bool converged = false;
  int iterations = 0;
  if (cfg.fit.pileup) {
    prob.evaluate(p, ev);
    prob.set_pileup(pileup_shape(model, p, prob.peaks_only(p, ev.x)));
  }
  iterations += levenberg_marquardt(prob, specs, p, ev, cfg.fit.max_iterations, converged);
  if (cfg.fit.poisson_weights || cfg.fit.pileup) {
    // Second stage: weights from the model (Poisson variance = expectation),
    // pile-up shape from the fitted peaks; a few more steps from there.
    for (int round = 0; round < 2; ++round) {
      Eigen::VectorXd mu = prob.model_counts(p, ev.x) + fixed_bg;
      if (cfg.fit.poisson_weights) prob.set_weights(model_weights(mu));
      if (cfg.fit.pileup) prob.set_pileup(pileup_shape(model, p, prob.peaks_only(p, ev.x)));
      bool conv2 = false;
      iterations += levenberg_marquardt(prob, specs, p, ev, std::max(5, cfg.fit.max_iterations / 4), conv2);
      converged = converged && conv2;
    }
  }

  // Covariance of [refined params, coefficients not held at zero] from the
  // Jacobian of the weighted residual at the solution.
  const int k = static_cast<int>(specs.size());
  const int nc = prob.n_coef();
  Eigen::MatrixXd jac(n, k + nc);
  std::vector<SpectrumModel::Derivative> which;
  for (const auto& sp : specs)
    if (sp.analytic) which.push_back(*sp.analytic);
  Eigen::MatrixXd dm;
  if (static_cast<int>(which.size()) == k && k > 0 && model.peak_derivatives(p, ev.x.head(prob.n_groups()), which, dm)) {
    jac.leftCols(k) = -(prob.weights().cwiseSqrt().asDiagonal() * dm);
  } else {
    for (int c = 0; c < k; ++c)
      jac.col(c) = forward_difference(specs[c], p, ev.r,
                                      [&](const ResponseParams& q) { return prob.residual_fixed(q, ev.x); });
  }
  {
    Columns cols;
    Eigen::MatrixXd d;
    prob.design(p, cols, d);
    jac.rightCols(nc) = -(prob.weights().cwiseSqrt().asDiagonal() * d);
  }
  // A parameter the data do not constrain (the Compton broadening when there
  // is no Compton peak) has a zero Jacobian column: it is left out of the
  // covariance and reported as undetermined (NaN).
  std::vector<bool> determined(k, true);
  const double jac_scale = k > 0 ? jac.leftCols(k).cwiseAbs().maxCoeff() : 0.0;
  for (int c = 0; c < k; ++c) determined[c] = jac.col(c).norm() > 1e-9 * std::max(jac_scale, 1e-300);
  std::vector<int> free_idx;
  for (int c = 0; c < k + nc; ++c)
    if ((c < k && determined[c]) || (c >= k && !(c - k < static_cast<int>(ev.at_bound.size()) && ev.at_bound[c - k])))
      free_idx.push_back(c);
  Eigen::MatrixXd jt = jac.transpose() * jac;
  Eigen::MatrixXd full_cov = jt.ldlt().solve(Eigen::MatrixXd::Identity(k + nc, k + nc));
  Eigen::MatrixXd jf(n, free_idx.size());
  for (std::size_t c = 0; c < free_idx.size(); ++c) jf.col(c) = jac.col(free_idx[c]);
  Eigen::MatrixXd cov_free = (jf.transpose() * jf).ldlt().solve(Eigen::MatrixXd::Identity(free_idx.size(), free_idx.size()));
  Eigen::VectorXd var = full_cov.diagonal();  // bound areas: unconstrained variance
  for (std::size_t c = 0; c < free_idx.size(); ++c) var(free_idx[c]) = cov_free(c, c);

  const int m = prob.n_groups();
  out.params = p;
  for (int c = 0; c < k; ++c)
    out.refined.push_back({specs[c].name, specs[c].ref(p),
                           determined[c] ? std::sqrt(std::max(var(c), 0.0)) : std::numeric_limits<double>::quiet_NaN()});
  for (const auto& g : model.groups()) out.group_names.push_back(g.name);
  out.area = ev.x.head(m);
  out.area_sigma.resize(m);
  for (int g = 0; g < m; ++g) out.area_sigma(g) = std::sqrt(std::max(var(k + g), 0.0));
  out.at_bound.assign(ev.at_bound.begin(), ev.at_bound.begin() + m);
  out.background_coef = ev.x.tail(nc - m);
  Eigen::VectorXd mu = prob.model_counts(p, ev.x) + fixed_bg;
  out.model.assign(mu.data(), mu.data() + n);
  Eigen::VectorXd bg = fixed_bg;
  if (basis.cols() > 0) bg += basis * out.background_coef;
  out.background.assign(bg.data(), bg.data() + n);
  out.first_channel = first;
  out.chi2 = ev.chi2;
  out.dof = std::max(1, n - static_cast<int>(free_idx.size()));
  out.chi2_reduced = ev.chi2 / out.dof;
  out.iterations = iterations;
  out.converged = converged;
  Eigen::VectorXd sd = cov_free.diagonal().cwiseMax(1e-300).cwiseSqrt();
  out.correlation = sd.cwiseInverse().asDiagonal() * cov_free * sd.cwiseInverse().asDiagonal();
  return out;
}

}  // namespace opx::xrf
