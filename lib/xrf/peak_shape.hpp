#pragma once
// Detector response to a monoenergetic line, evaluated on channel energies.
#include "xrf/config.hpp"

namespace opx::xrf {

// Adds `counts` x response(E) x dE to col[i] for i in [lo, hi), where
// energy[i] is channel i's energy and dE its width (both keV). The response
// is a unit-area Gaussian of `sigma` centred at `center` plus, from `shape`,
// low-energy tails (exponential of slope beta = slope_ratio*sigma convolved
// with the Gaussian, area = area_ratio, in addition to the Gaussian's) and a
// step under the peak (height = step_height x Gaussian peak height).
void add_line_response(double* col, const double* energy, const double* width, int lo, int hi,
                       double center, double sigma, double counts, const PeakShape& shape);

// The channel window [lo, hi) outside which a line's response is negligible
// (< 1e-9 of its peak for the Gaussian; tails and the step extend further).
void response_window(const double* energy, int n, double center, double sigma, const PeakShape& shape,
                     int& lo, int& hi);

}  // namespace opx::xrf
