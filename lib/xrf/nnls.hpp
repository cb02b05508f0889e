#pragma once
// Least squares with non-negativity on some unknowns, in normal-equation
// form: minimize x'Nx - 2b'x subject to x_i >= 0 for constrained i.
// Lawson & Hanson, "Solving Least Squares Problems" (1974), ch. 23, with
// unconstrained (free) variables always in the passive set. Works on the
// small p x p system only, so one factorization of the design per stack is
// enough and each spectrum costs O(p^3) at worst.
#include <vector>

#include <Eigen/Dense>

namespace opx::xrf {

struct NnlsResult {
  int iterations = 0;
  bool converged = true;
  std::vector<bool> at_bound;  // constrained variables held at zero
};

NnlsResult nnls_normal(const Eigen::MatrixXd& N, const Eigen::VectorXd& b, const std::vector<bool>& constrained,
                       Eigen::VectorXd& x);

}  // namespace opx::xrf
