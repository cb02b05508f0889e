#include "xrf/background.hpp"

#include <algorithm>
#include <cmath>

namespace opx::xrf {

template <typename T>
void snip_background(const T* y, int n, int width, int smooth, T* out, T* work) {
  if (n <= 0) return;
  const std::size_t len = static_cast<std::size_t>(n);
  T* v = out;
  T* tmp = work;
  // LLS transform: v = ln(ln(sqrt(y + 1) + 1) + 1).
#pragma omp simd
  for (int i = 0; i < n; ++i) {
    T yi = y[i] > T(0) ? y[i] : T(0);
    v[i] = std::log(std::log(std::sqrt(yi + T(1)) + T(1)) + T(1));
  }
  if (smooth > 0) {
    // Moving average of half-width `smooth` with a running sum (edges use the
    // part of the window that exists).
    T* s = work + n;
    T acc = 0;
    int lo = 0, hi = 0;  // window [lo, hi)
    for (int i = 0; i < n; ++i) {
      int want_lo = std::max(0, i - smooth), want_hi = std::min(n, i + smooth + 1);
      while (hi < want_hi) acc += v[hi++];
      while (lo < want_lo) acc -= v[lo++];
      s[i] = acc / T(hi - lo);
    }
    std::copy_n(s, len, v);
  }
  width = std::min(width, (n - 1) / 2);
  for (int p = width; p >= 1; --p) {
    std::copy_n(v, len, tmp);
#pragma omp simd
    for (int i = p; i < n - p; ++i) {
      T mean = T(0.5) * (tmp[i - p] + tmp[i + p]);
      v[i] = tmp[i] < mean ? tmp[i] : mean;
    }
  }
  // Inverse transform: y = (exp(exp(v) - 1) - 1)^2 - 1.
#pragma omp simd
  for (int i = 0; i < n; ++i) {
    T a = std::exp(std::exp(v[i]) - T(1)) - T(1);
    out[i] = a * a - T(1);
  }
}

template void snip_background<float>(const float*, int, int, int, float*, float*);
template void snip_background<double>(const double*, int, int, int, double*, double*);

std::vector<double> snip_background(const std::vector<double>& y, int width, int smooth) {
  int n = static_cast<int>(y.size());
  std::vector<double> out(n), work(2 * n);
  snip_background<double>(y.data(), n, width, smooth, out.data(), work.data());
  return out;
}

Eigen::MatrixXd polynomial_basis(int n, int order) {
  Eigen::MatrixXd b(n, order + 1);
  for (int i = 0; i < n; ++i) {
    double x = n > 1 ? 2.0 * i / (n - 1) - 1.0 : 0.0;
    double p0 = 1, p1 = x;
    b(i, 0) = 1;
    if (order >= 1) b(i, 1) = x;
    for (int k = 2; k <= order; ++k) {  // Bonnet's recursion
      double pk = ((2 * k - 1) * x * p1 - (k - 1) * p0) / k;
      b(i, k) = pk;
      p0 = p1;
      p1 = pk;
    }
  }
  return b;
}

void column_extents(const Eigen::MatrixXd& basis, std::vector<int>& lo, std::vector<int>& hi) {
  const int n = static_cast<int>(basis.rows());
  for (int j = 0; j < basis.cols(); ++j) {
    int l = 0, h = n;
    while (l < n && basis(l, j) == 0.0) ++l;
    while (h > l && basis(h - 1, j) == 0.0) --h;
    lo.push_back(l);
    hi.push_back(h);
  }
}

Eigen::MatrixXd spline_basis(int n, int segments) {
  segments = std::max(1, segments);
  Eigen::MatrixXd b = Eigen::MatrixXd::Zero(n, segments + 3);
  const double h = double(n - 1) / segments;
  for (int i = 0; i < n; ++i) {
    double t = i / h;
    int k = std::min(static_cast<int>(t), segments - 1);
    double u = t - k;
    // Uniform cubic B-spline blending functions on segment k.
    double u2 = u * u, u3 = u2 * u;
    b(i, k) += (1 - 3 * u + 3 * u2 - u3) / 6.0;
    b(i, k + 1) += (4 - 6 * u2 + 3 * u3) / 6.0;
    b(i, k + 2) += (1 + 3 * u + 3 * u2 - 3 * u3) / 6.0;
    b(i, k + 3) += u3 / 6.0;
  }
  return b;
}

}  // namespace opx::xrf
