#include "xrf/stack_fit.hpp"

#include <algorithm>
#include <cmath>

#include <omp.h>

#include "core/error.hpp"
#include "xrf/background.hpp"

namespace opx::xrf {

void StackResults::resize(int c, int g, int n_fit, bool with_model) {
  count = c;
  groups = g;
  area.assign(std::size_t(c) * g, 0.f);
  sigma.assign(std::size_t(c) * g, 0.f);
  chi2_reduced.assign(c, 0.f);
  if (with_model) {
    model.assign(std::size_t(c) * n_fit, 0.f);
    background.assign(std::size_t(c) * n_fit, 0.f);
    residual.assign(std::size_t(c) * n_fit, 0.f);
  } else {
    model.clear();
    background.clear();
    residual.clear();
  }
}

StackFitter::StackFitter(const SpectrumModel& model, const ResponseParams& params, const Eigen::VectorXd& reference,
                         const Eigen::VectorXd& pileup, StackWeights weights) {
  const FitConfig& cfg = model.config();
  n_ = model.n_fit();
  first_ = model.first_channel();
  m_ = static_cast<int>(model.groups().size());
  for (const auto& g : model.groups()) names_.push_back(g.name);
  Columns cols;
  model.build_columns(params, cols);
  for (int g = 0; g < m_; ++g)
    if (model.groups()[g].kind == GroupKind::pileup && pileup.size() == n_) {
      cols.a.col(g) = pileup;
      cols.lo[g] = 0;
      cols.hi[g] = n_;
    }
  Eigen::MatrixXd basis = background_basis(model);
  k_ = static_cast<int>(basis.cols());
  p_ = m_ + k_;
  d_.resize(n_, p_);
  d_.leftCols(m_) = cols.a;
  if (k_ > 0) d_.rightCols(k_) = basis;
  lo_ = cols.lo;
  hi_ = cols.hi;
  column_extents(basis, lo_, hi_);  // background columns after the peak groups
  snip_ = cfg.background.method == BackgroundMethod::snip;
  snip_width_ = snip_width_channels(model);
  snip_smooth_ = snip_smooth_channels(model);

  w_ = Eigen::VectorXd::Ones(n_);
  if (weights == StackWeights::sum_spectrum && reference.size() == n_) {
    // Poisson weights up to a common scale, floored so that empty channels
    // at the ends do not dominate.
    double mean = reference.cwiseMax(0.0).mean();
    Eigen::VectorXd var = reference.cwiseMax(std::max(1e-3 * mean, 1e-12));
    w_ = (mean / var.array()).matrix();
  }
  Eigen::MatrixXd wd = w_.asDiagonal() * d_;
  normal_ = d_.transpose() * wd;
  for (int i = 0; i < p_; ++i) normal_(i, i) *= 1.0 + 1e-12;
  Eigen::LDLT<Eigen::MatrixXd> ldlt(normal_);
  if (ldlt.info() != Eigen::Success)
    throw internal_error("cannot set up the stack fit", cfg.source, "the design matrix is singular");
  n_inv_ = ldlt.solve(Eigen::MatrixXd::Identity(p_, p_));
  Eigen::MatrixXd g = n_inv_ * wd.transpose();
  g_ = g.cast<float>();
  h_ = g.cwiseProduct(g);
  k_mat_ = h_ * d_;
  t_.resize(p_);
  for (int j = 0; j < p_; ++j) t_[j] = g * d_.col(j).asDiagonal() * g.transpose();
  if (snip_) {
    Eigen::MatrixXd b = spline_basis(n_, 16);
    Eigen::MatrixXd proj = (b.transpose() * b).ldlt().solve(b.transpose());
    snip_proj_ = proj.cast<float>();
    t_snip_.resize(b.cols());
    for (int q = 0; q < b.cols(); ++q) t_snip_[q] = g * b.col(q).asDiagonal() * g.transpose();
  }
}

void StackFitter::fit(const float* spectra, int count, int n_channels, StackResults& out, int row0) const {
  if (n_channels < first_ + n_)
    throw data_error("cannot fit stack", "", "spectra have fewer channels than the model");
  constexpr int kBlock = 256;
  const int blocks = (count + kBlock - 1) / kBlock;
#pragma omp parallel for schedule(dynamic) if (blocks > 1 && !omp_in_parallel())
  for (int b = 0; b < blocks; ++b) {
    int s0 = b * kBlock;
    int c = std::min(kBlock, count - s0);
    fit_block(spectra + std::size_t(s0) * n_channels, c, n_channels, out, row0 + s0);
  }
}

void StackFitter::fit_block(const float* spectra, int count, int n_channels, StackResults& out, int row0) const {
  const int n = n_, p = p_, m = m_;
  // Fit-range data of the block, background-stripped when SNIP is used.
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> y(count, n);
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> s;
  if (snip_) {
    s.resize(count, n);
    // SNIP over the fit range only, as in the nonlinear fit (fit.cpp).
    std::vector<float> work(2 * n);
    for (int i = 0; i < count; ++i) {
      const float* row = spectra + std::size_t(i) * n_channels + first_;
      snip_background<float>(row, n, snip_width_, snip_smooth_, s.row(i).data(), work.data());
      for (int j = 0; j < n; ++j) y(i, j) = row[j] - s(i, j);
    }
  } else {
    for (int i = 0; i < count; ++i)
      std::copy_n(spectra + std::size_t(i) * n_channels + first_, n, y.row(i).data());
  }
  // Unconstrained solution of every spectrum of the block at once.
  Eigen::MatrixXf x_all = g_ * y.transpose();  // [p, count]
  Eigen::MatrixXf hs;
  if (snip_) hs = h_.cast<float>() * s.transpose();  // variance from the stripped background

  const bool with_model = !out.model.empty();
  Eigen::VectorXd x(p), xu(p), mu(n), var(p), nu(p), rhs(p);
  Eigen::MatrixXd sigma(p, p), czz(p, p), rmap(p, p);
  std::vector<int> zero_set;
  zero_set.reserve(p);
  std::vector<char> in_z(p);
  for (int i = 0; i < count; ++i) {
    xu = x_all.col(i).cast<double>();
    x = xu;
    // Active set: the areas held at zero.
    zero_set.clear();
    std::fill(in_z.begin(), in_z.end(), 0);
    for (int iter = 0; iter < 2 * m + 2; ++iter) {
      bool changed = false;
      for (int g = 0; g < m; ++g)
        if (!in_z[g] && x(g) < 0) {
          in_z[g] = 1;
          zero_set.push_back(g);
          changed = true;
        }
      if (!changed && !zero_set.empty()) {
        // Release the constraint whose multiplier has the wrong sign.
        int worst = -1;
        double worst_nu = 0;
        for (std::size_t a = 0; a < zero_set.size(); ++a)
          if (nu(a) < worst_nu) {
            worst_nu = nu(a);
            worst = static_cast<int>(a);
          }
        if (worst < 0) break;
        in_z[zero_set[worst]] = 0;
        zero_set.erase(zero_set.begin() + worst);
        changed = true;
      }
      if (!changed) break;
      const int z = static_cast<int>(zero_set.size());
      if (z == 0) {
        x = xu;
        continue;
      }
      for (int a = 0; a < z; ++a) {
        rhs(a) = xu(zero_set[a]);
        for (int c = 0; c < z; ++c) czz(a, c) = n_inv_(zero_set[a], zero_set[c]);
      }
      // nu = -C_ZZ^-1 x_u[Z]; x = x_u + C[:,Z] nu.
      nu.head(z) = -czz.topLeftCorner(z, z).ldlt().solve(rhs.head(z));
      x = xu;
      for (int a = 0; a < z; ++a) x += n_inv_.col(zero_set[a]) * nu(a);
      for (int a = 0; a < z; ++a) x(zero_set[a]) = 0.0;
    }
    const bool constrained = !zero_set.empty();
    // Model over the fit range, accumulated over each column's support.
    mu.setZero();
    if (snip_) mu = s.row(i).transpose().cast<double>();
    for (int j = 0; j < p; ++j) {
      if (x(j) == 0.0) continue;
      const double xj = x(j);
      const double* col = d_.col(j).data();
      for (int rr = lo_[j]; rr < hi_[j]; ++rr) mu(rr) += xj * col[rr];
    }
    const int n_free = p - static_cast<int>(zero_set.size());
    if (!constrained) {
      var = k_mat_ * x;
      if (snip_) var += hs.col(i).cast<double>();
    } else {
      // Full covariance of the unconstrained solution under V = diag(model),
      // mapped through x = R x_u with R = I - C[:,Z] C[Z,Z]^-1 E_Z'.
      sigma.setZero();
      for (int j = 0; j < p; ++j)
        if (x(j) != 0.0) sigma.noalias() += x(j) * t_[j];
      if (snip_) {
        Eigen::VectorXf c = snip_proj_ * s.row(i).transpose();
        for (int q = 0; q < c.size(); ++q) sigma.noalias() += double(c(q)) * t_snip_[q];
      }
      const int z = static_cast<int>(zero_set.size());
      rmap.setIdentity();
      Eigen::MatrixXd czz_inv = czz.topLeftCorner(z, z).inverse();
      for (int a = 0; a < z; ++a)
        for (int b = 0; b < z; ++b) rmap.col(zero_set[b]) -= n_inv_.col(zero_set[a]) * czz_inv(a, b);
      for (int k = 0; k < p; ++k) var(k) = rmap.row(k) * sigma * rmap.row(k).transpose();
      // Areas held at zero: their unconstrained variance, as an upper-limit scale.
      for (int a = 0; a < z; ++a) var(zero_set[a]) = (k_mat_.row(zero_set[a]) * x)(0);
    }
    double chi2 = 0;
    const float* row = spectra + std::size_t(i) * n_channels + first_;
    for (int r = 0; r < n; ++r) {
      double d = row[r] - mu(r);
      chi2 += d * d / std::max(mu(r), 1.0);
    }
    const std::size_t o = std::size_t(row0 + i) * m;
    for (int g = 0; g < m; ++g) {
      out.area[o + g] = static_cast<float>(x(g));
      out.sigma[o + g] = static_cast<float>(std::sqrt(std::max(var(g), 0.0)));
    }
    out.chi2_reduced[row0 + i] = static_cast<float>(chi2 / std::max(1, n - n_free));
    if (with_model) {
      const std::size_t mo = std::size_t(row0 + i) * n;
      for (int r = 0; r < n; ++r) {
        out.model[mo + r] = static_cast<float>(mu(r));
        out.residual[mo + r] = static_cast<float>(row[r] - mu(r));
        double bg = snip_ ? s(i, r) : 0.0;
        for (int j = m; j < p; ++j) bg += x(j) * d_(r, j);
        out.background[mo + r] = static_cast<float>(bg);
      }
    }
  }
}

}  // namespace opx::xrf
