#include "xrf/nnls.hpp"

#include <cmath>
#include <limits>

namespace opx::xrf {
namespace {

// Solves N_PP z_P = b_P for the passive set P; other entries of z are zero.
void solve_passive(const Eigen::MatrixXd& N, const Eigen::VectorXd& b, const std::vector<bool>& passive,
                   Eigen::VectorXd& z) {
  const int p = static_cast<int>(b.size());
  std::vector<int> idx;
  for (int i = 0; i < p; ++i)
    if (passive[i]) idx.push_back(i);
  const int k = static_cast<int>(idx.size());
  z.setZero(p);
  if (k == 0) return;
  Eigen::MatrixXd sub(k, k);
  Eigen::VectorXd rhs(k);
  for (int i = 0; i < k; ++i) {
    rhs(i) = b(idx[i]);
    for (int j = 0; j < k; ++j) sub(i, j) = N(idx[i], idx[j]);
  }
  Eigen::VectorXd sol = sub.ldlt().solve(rhs);
  for (int i = 0; i < k; ++i) z(idx[i]) = sol(i);
}

}  // namespace

NnlsResult nnls_normal(const Eigen::MatrixXd& N, const Eigen::VectorXd& b, const std::vector<bool>& constrained,
                       Eigen::VectorXd& x) {
  const int p = static_cast<int>(b.size());
  NnlsResult res;
  std::vector<bool> passive(p);
  for (int i = 0; i < p; ++i) passive[i] = !constrained[i];
  solve_passive(N, b, passive, x);
  // Tolerance on the gradient relative to the problem's scale.
  double scale = 0;
  for (int i = 0; i < p; ++i) scale = std::max(scale, std::abs(b(i)));
  const double tol = 1e-12 * std::max(scale, 1.0);
  Eigen::VectorXd z(p);
  const int max_iter = 3 * p + 10;
  while (res.iterations < max_iter) {
    Eigen::VectorXd grad = b - N * x;
    int best = -1;
    double best_g = tol;
    for (int i = 0; i < p; ++i)
      if (!passive[i] && grad(i) > best_g) {
        best_g = grad(i);
        best = i;
      }
    if (best < 0) break;
    passive[best] = true;
    ++res.iterations;
    for (;;) {
      solve_passive(N, b, passive, z);
      double alpha = std::numeric_limits<double>::infinity();
      for (int i = 0; i < p; ++i)
        if (constrained[i] && passive[i] && z(i) <= 0) alpha = std::min(alpha, x(i) / (x(i) - z(i)));
      if (!std::isfinite(alpha)) break;
      x += alpha * (z - x);
      bool removed = false;
      for (int i = 0; i < p; ++i)
        if (constrained[i] && passive[i] && x(i) <= tol * 1e-3) {
          passive[i] = false;
          x(i) = 0;
          removed = true;
        }
      if (!removed) break;  // numerical safety: avoid cycling
    }
    x = z;
    for (int i = 0; i < p; ++i)
      if (!passive[i]) x(i) = 0;
  }
  res.converged = res.iterations < max_iter;
  res.at_bound.resize(p);
  for (int i = 0; i < p; ++i) res.at_bound[i] = constrained[i] && !passive[i];
  return res;
}

}  // namespace opx::xrf
