#include "xrf/peak_shape.hpp"

#include <algorithm>
#include <cmath>

namespace opx::xrf {
namespace {
constexpr double kInvSqrt2Pi = 0.3989422804014327;
constexpr double kInvSqrt2 = 0.7071067811865476;

// First index with energy[i] >= e (energies increase with channel).
int lower_index(const double* energy, int n, double e) {
  return static_cast<int>(std::lower_bound(energy, energy + n, e) - energy);
}
}  // namespace

void response_window(const double* energy, int n, double center, double sigma, const PeakShape& shape,
                     int& lo, int& hi) {
  double below = 6.5 * sigma, above = 6.5 * sigma;
  if (shape.short_tail_area > 0) below = std::max(below, 6.5 * sigma + 12.0 * shape.short_tail_slope * sigma);
  if (shape.long_tail_area > 0) below = std::max(below, 6.5 * sigma + 12.0 * shape.long_tail_slope * sigma);
  lo = shape.step_height > 0 ? 0 : lower_index(energy, n, center - below);
  hi = std::min(n, lower_index(energy, n, center + above) + 1);
  if (hi < lo) hi = lo;
}

void add_line_response(double* col, const double* energy, const double* width, int lo, int hi,
                       double center, double sigma, double counts, const PeakShape& shape) {
  const double inv_s = 1.0 / sigma;
  const double gauss_norm = counts * kInvSqrt2Pi * inv_s;
  if (hi - lo > 2) {
    // Channel energies are (almost) equally spaced, so exp(-z^2/2) follows a
    // recurrence: g(i+1) = g(i) r(i), r(i+1) = r(i) c with c = exp(-dz^2),
    // one exp per line instead of one per channel. The spacing varies with
    // a quadratic calibration term; restart the recurrence from an exact
    // exp every 16 channels so that never accumulates.
    for (int i0 = lo; i0 < hi; i0 += 16) {
      int i1 = std::min(hi, i0 + 16);
      double z = (energy[i0] - center) * inv_s;
      double dz = (i1 - i0 > 1) ? (energy[i0 + 1] - energy[i0]) * inv_s : 0.0;
      double g = std::exp(-0.5 * z * z);
      double r = std::exp(-z * dz - 0.5 * dz * dz);
      const double c = std::exp(-dz * dz);
      for (int i = i0; i < i1; ++i) {
        col[i] += gauss_norm * g * width[i];
        g *= r;
        r *= c;
      }
    }
  } else {
    for (int i = lo; i < hi; ++i) {
      double z = (energy[i] - center) * inv_s;
      col[i] += gauss_norm * std::exp(-0.5 * z * z) * width[i];
    }
  }
  if (!shape.has_tails() && shape.step_height <= 0) return;
  // Tail: (r / (2 beta)) exp(x/beta + sigma^2/(2 beta^2)) erfc(x/(sqrt2 sigma) + sigma/(sqrt2 beta)),
  // x = E - center; a unit-area exponential convolved with the Gaussian.
  auto add_tail = [&](double ratio, double slope_ratio) {
    if (ratio <= 0) return;
    double beta = slope_ratio * sigma;
    double a = counts * ratio / (2.0 * beta);
    double c = sigma / beta;
    for (int i = lo; i < hi; ++i) {
      double x = energy[i] - center;
      double arg = x * kInvSqrt2 * inv_s + c * kInvSqrt2;
      // exp(x/beta + c^2/2) erfc(arg) computed stably as exp(... - arg^2) erfcx(arg) when arg is large.
      double v;
      if (arg < 5.0) {
        v = std::exp(x / beta + 0.5 * c * c) * std::erfc(arg);
      } else {
        double e = x / beta + 0.5 * c * c - arg * arg;  // = -x^2/(2 sigma^2)
        // erfc(t) ~ exp(-t^2)/(t sqrt(pi)) (1 - 1/(2t^2) + 3/(4t^4))
        double t2 = arg * arg;
        v = std::exp(e) / (arg * 1.7724538509055159) * (1.0 - 0.5 / t2 + 0.75 / (t2 * t2));
      }
      col[i] += a * v * width[i];
    }
  };
  add_tail(shape.short_tail_area, shape.short_tail_slope);
  add_tail(shape.long_tail_area, shape.long_tail_slope);
  if (shape.step_height > 0) {
    double h = counts * shape.step_height * kInvSqrt2Pi * inv_s * 0.5;
    for (int i = lo; i < hi; ++i)
      col[i] += h * std::erfc((energy[i] - center) * kInvSqrt2 * inv_s) * width[i];
  }
}

}  // namespace opx::xrf
