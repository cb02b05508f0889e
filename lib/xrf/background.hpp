#pragma once
// Continuum background under the fluorescence peaks.
//  - SNIP (Ryan et al., NIM B 34 (1988) 396; Morhac et al., NIM A 401 (1997)
//    113): iterative clipping on the log-log-square-root (LLS) transform of
//    the spectrum, which compresses the dynamic range so that the clipping
//    follows a steep continuum under the low-energy lines.
//  - Smooth bases (Legendre polynomials or cubic B-splines over the fit
//    range) whose coefficients are fitted together with the peak areas.
#include <vector>

#include <Eigen/Dense>

namespace opx::xrf {

// SNIP background of y[0..n) with a clipping window of `width` channels,
// written to out[0..n). The window shrinks from `width` to 1 (Ryan's
// decreasing-window variant), which leaves a smooth estimate. `smooth` > 0
// first applies a moving average of that half-width to the transformed data.
// `work` must hold 2n elements; no allocation takes place.
template <typename T>
void snip_background(const T* y, int n, int width, int smooth, T* out, T* work);

// Convenience overload that allocates.
std::vector<double> snip_background(const std::vector<double>& y, int width, int smooth = 0);

// Background basis over n channels: Legendre polynomials P0..P_order of the
// scaled channel index in [-1, 1].
Eigen::MatrixXd polynomial_basis(int n, int order);

// The rows [lo, hi) outside which column j of a basis is zero (B-splines
// are local), one pair per column: the loops over a column's support.
void column_extents(const Eigen::MatrixXd& basis, std::vector<int>& lo, std::vector<int>& hi);

// Cubic B-spline basis with `segments` uniform segments over n channels
// (segments + 3 columns); non-negative, sums to one at every channel.
Eigen::MatrixXd spline_basis(int n, int segments);

}  // namespace opx::xrf
