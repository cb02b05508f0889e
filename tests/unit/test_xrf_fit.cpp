#define BOOST_TEST_MODULE xrf_fit
#include <boost/test/unit_test.hpp>

#include <xraylib/xraylib.h>

#include <cmath>
#include <random>
#include <vector>

#include "xrf/config.hpp"
#include "xrf/fit.hpp"
#include "xrf/model.hpp"

using namespace opx;
using namespace opx::xrf;

namespace {

// A configuration whose line weights reduce to xraylib's radiative rates:
// monochromatic excitation above every K edge (K-line ratios do not depend
// on the excitation energy), an ideal detector (no window, a thick crystal),
// no attenuators, no escape peaks, no scatter.
FitConfig ideal_config(std::vector<std::string> elements) {
  nlohmann::json j = {
      {"elements", elements},
      {"calibration", {{"offset_keV", -0.02}, {"gain_keV", 0.01}}},
      {"detector", {{"material", "Si"}, {"thickness_mm", 50.0}, {"window", nlohmann::json::array()},
                    {"noise_fwhm_keV", 0.1}, {"fano", 0.114}}},
      {"excitation", {{"type", "monochromatic"}, {"energy_keV", 17.0}}},
      {"scatter", {{"rayleigh", false}, {"compton", false}}},
      {"background", {{"method", "polynomial"}, {"polynomial_order", 1}}},
      {"fit", {{"energy_range_keV", {2.0, 11.0}}, {"escape", false}, {"min_line_fraction", 0.0}}}};
  return fit_config_from_json(j, "test");
}

// K lines straight from xraylib: energy and share of the K family's
// radiative rate (what the config of ideal_config() gives each line).
std::vector<std::pair<double, double>> k_lines(int Z) {
  std::vector<std::pair<double, double>> lines;
  double total = 0;
  for (int code = -1; code >= -29; --code) {
    xrl_error* e1 = nullptr;
    xrl_error* e2 = nullptr;
    double en = LineEnergy(Z, code, &e1);
    double rate = RadRate(Z, code, &e2);
    bool bad = e1 || e2;
    if (e1) xrl_error_free(e1);
    if (e2) xrl_error_free(e2);
    if (bad || en <= 0 || rate <= 0) continue;
    lines.push_back({en, rate});
    total += rate;
  }
  for (auto& l : lines) l.second /= total;
  return lines;
}

// Independent forward model: K lines from xraylib (energy, radiative rate),
// Gaussians of sigma^2 = (noise/2.3548)^2 + 0.00385 fano E, evaluated per
// channel, plus a linear background. Lines above 1e-3 of the family only.
std::vector<double> analytic_spectrum(const std::vector<std::pair<int, double>>& z_area, int channels,
                                      double offset, double gain, double bg0, double bg1) {
  std::vector<double> y(channels);
  for (int c = 0; c < channels; ++c) y[c] = bg0 + bg1 * (offset + gain * c);
  for (auto [Z, area] : z_area) {
    for (auto [en, fraction] : k_lines(Z)) {
      double sigma = std::sqrt(std::pow(0.1 / 2.3548200450309493, 2) + 0.00385 * 0.114 * en);
      for (int c = 0; c < channels; ++c) {
        double z = (offset + gain * c - en) / sigma;
        y[c] += area * fraction * gain / (sigma * std::sqrt(2 * M_PI)) * std::exp(-0.5 * z * z);
      }
    }
  }
  return y;
}

}  // namespace

BOOST_AUTO_TEST_CASE(isolated_and_overlapping_k_groups_recovered) {
  // Mn Kb (6.49 keV) sits on Fe Ka (6.40 keV); Co Kb (7.65) on Ni Ka (7.48).
  FitConfig cfg = ideal_config({"Ti K", "Mn K", "Fe K", "Co K", "Ni K", "Cu K"});
  const std::vector<std::pair<int, double>> truth = {{22, 2.0e4}, {25, 5.0e5}, {26, 3.0e4},
                                                     {27, 2.0e5}, {28, 4.0e5}, {29, 8.0e4}};
  auto y = analytic_spectrum(truth, 2048, -0.02, 0.01, 50.0, -2.0);
  SpectrumModel model(cfg, 2048);
  SpectrumFit fit = fit_spectrum(model, y);
  BOOST_TEST_MESSAGE("iterations " << fit.iterations << " chi2_red " << fit.chi2_reduced);
  for (std::size_t g = 0; g < truth.size(); ++g) {
    double rel = fit.area(g) / truth[g].second - 1.0;
    BOOST_TEST_INFO(fit.group_names[g] << " area " << fit.area(g) << " truth " << truth[g].second);
    BOOST_TEST(std::abs(rel) < 0.005);
  }
  BOOST_TEST(std::abs(fit.params.offset_keV + 0.02) < 1e-3);
  BOOST_TEST(std::abs(fit.params.gain_keV - 0.01) < 1e-5);
}

BOOST_AUTO_TEST_CASE(calibration_and_width_refined_from_wrong_start) {
  FitConfig cfg = ideal_config({"Mn K", "Fe K", "Cu K"});
  cfg.calibration.offset_keV = 0.0;   // truth -0.02 keV (2 channels)
  cfg.calibration.gain_keV = 0.01005; // truth 0.01
  cfg.detector.noise_fwhm_keV = 0.13; // truth 0.10
  auto y = analytic_spectrum({{25, 1e5}, {26, 5e4}, {29, 2e5}}, 2048, -0.02, 0.01, 10.0, 0.0);
  SpectrumModel model(cfg, 2048);
  SpectrumFit fit = fit_spectrum(model, y);
  BOOST_TEST(std::abs(fit.params.offset_keV + 0.02) < 2e-3);
  BOOST_TEST(std::abs(fit.params.gain_keV - 0.01) < 2e-5);
  BOOST_TEST(std::abs(fit.params.noise_fwhm_keV - 0.10) < 0.01);
  BOOST_TEST(std::abs(fit.area(0) / 1e5 - 1) < 0.005);
  BOOST_TEST(std::abs(fit.area(2) / 2e5 - 1) < 0.005);
}

namespace {

struct PullStats {
  double mean = 0, sd = 0;
};

PullStats pull_stats(const std::vector<double>& pulls) {
  PullStats s;
  for (double p : pulls) s.mean += p;
  s.mean /= pulls.size();
  for (double p : pulls) s.sd += (p - s.mean) * (p - s.mean);
  s.sd = std::sqrt(s.sd / (pulls.size() - 1));
  return s;
}

}  // namespace

#include "xrf/stack_fit.hpp"

BOOST_AUTO_TEST_CASE(uncertainties_are_honest_over_poisson_realizations) {
  // The NMC cell's transition metals on a sloping continuum, counts of a
  // 30 s confocal spectrum: Mn, Co and Ni strong, Fe weak under Mn Kb.
  FitConfig cfg = ideal_config({"Ti K", "Mn K", "Fe K", "Co K", "Ni K", "Cu K"});
  const std::vector<std::pair<int, double>> truth = {{22, 800}, {25, 2.0e4}, {26, 600},
                                                     {27, 8.0e3}, {28, 2.5e4}, {29, 5.0e3}};
  auto mu = analytic_spectrum(truth, 2048, -0.02, 0.01, 6.0, -0.3);
  for (double& v : mu) v = std::max(v, 0.05);
  SpectrumModel model(cfg, 2048);
  SpectrumFit ref = fit_spectrum(model, mu);
  Eigen::VectorXd reference = Eigen::Map<Eigen::VectorXd>(ref.model.data(), ref.model.size());
  const int realizations = 1000;
  std::mt19937_64 rng(20261122);
  std::vector<float> stack(std::size_t(realizations) * 2048);
  std::vector<std::vector<double>> spectra(realizations, std::vector<double>(2048));
  for (int r = 0; r < realizations; ++r)
    for (int c = 0; c < 2048; ++c) {
      std::poisson_distribution<int> pd(mu[c]);
      spectra[r][c] = pd(rng);
      stack[std::size_t(r) * 2048 + c] = static_cast<float>(spectra[r][c]);
    }

  // Fast linear engine with the sum spectrum's weights.
  StackFitter fitter(model, ref.params, reference, Eigen::VectorXd(), StackWeights::sum_spectrum);
  StackResults res;
  res.resize(realizations, fitter.n_groups(), fitter.n_fit(), false);
  fitter.fit(stack.data(), realizations, 2048, res, 0);
  for (std::size_t g = 0; g < truth.size(); ++g) {
    std::vector<double> pulls;
    for (int r = 0; r < realizations; ++r)
      pulls.push_back((res.area[r * fitter.n_groups() + g] - truth[g].second) / res.sigma[r * fitter.n_groups() + g]);
    auto s = pull_stats(pulls);
    BOOST_TEST_MESSAGE("linear " << fitter.group_names()[g] << " pull mean " << s.mean << " sd " << s.sd);
    BOOST_TEST(std::abs(s.mean) < 0.1);
    BOOST_TEST((s.sd > 0.9 && s.sd < 1.1));
  }

  // Nonlinear engine (calibration and width refined per spectrum).
  std::vector<std::vector<double>> pulls(truth.size());
  for (int r = 0; r < realizations; ++r) {
    SpectrumModel m2(cfg, 2048);
    SpectrumFit f = fit_spectrum(m2, spectra[r]);
    for (std::size_t g = 0; g < truth.size(); ++g) pulls[g].push_back((f.area(g) - truth[g].second) / f.area_sigma(g));
  }
  for (std::size_t g = 0; g < truth.size(); ++g) {
    auto s = pull_stats(pulls[g]);
    BOOST_TEST_MESSAGE("nonlinear " << ref.group_names[g] << " pull mean " << s.mean << " sd " << s.sd);
    BOOST_TEST(std::abs(s.mean) < 0.1);
    BOOST_TEST((s.sd > 0.9 && s.sd < 1.1));
  }
}

#include "xrf/nnls.hpp"

BOOST_AUTO_TEST_CASE(stack_constraints_agree_with_lawson_hanson) {
  // Absent elements fluctuate around zero; the stack fitter's active set on
  // N^-1 must reach the same constrained optimum as Lawson-Hanson on the
  // full normal equations (a second, independent method).
  FitConfig cfg = ideal_config({"Ti K", "Cr K", "Mn K", "Fe K", "Co K", "Ni K", "Cu K"});
  auto mu = analytic_spectrum({{25, 3000}, {28, 5000}, {29, 1000}}, 2048, -0.02, 0.01, 4.0, -0.2);
  for (double& v : mu) v = std::max(v, 0.05);
  SpectrumModel model(cfg, 2048);
  SpectrumFit ref = fit_spectrum(model, mu);
  Eigen::VectorXd reference = Eigen::Map<Eigen::VectorXd>(ref.model.data(), ref.model.size());
  StackFitter fitter(model, ref.params, reference, Eigen::VectorXd(), StackWeights::sum_spectrum);
  const int count = 300;
  std::mt19937_64 rng(7);
  std::vector<float> stack(std::size_t(count) * 2048);
  for (int r = 0; r < count; ++r)
    for (int c = 0; c < 2048; ++c) {
      std::poisson_distribution<int> pd(mu[c]);
      stack[std::size_t(r) * 2048 + c] = static_cast<float>(pd(rng));
    }
  StackResults res;
  res.resize(count, fitter.n_groups(), fitter.n_fit(), false);
  fitter.fit(stack.data(), count, 2048, res, 0);

  // The same problem in normal-equation form, solved by Lawson-Hanson.
  Columns cols;
  model.build_columns(ref.params, cols);
  Eigen::MatrixXd basis = background_basis(model);
  const int m = fitter.n_groups(), n = model.n_fit(), p = m + static_cast<int>(basis.cols());
  Eigen::MatrixXd d(n, p);
  d.leftCols(m) = cols.a;
  d.rightCols(basis.cols()) = basis;
  Eigen::VectorXd w = reference.cwiseMax(1e-3 * reference.cwiseMax(0.0).mean()).cwiseInverse();
  Eigen::MatrixXd nm = d.transpose() * w.asDiagonal() * d;
  std::vector<bool> constrained(p, false);
  for (int g = 0; g < m; ++g) constrained[g] = true;
  int with_constraints = 0;
  for (int r = 0; r < count; ++r) {
    Eigen::VectorXd y(n);
    for (int i = 0; i < n; ++i) y(i) = stack[std::size_t(r) * 2048 + model.first_channel() + i];
    Eigen::VectorXd b = d.transpose() * w.asDiagonal() * y, x(p);
    auto lh = nnls_normal(nm, b, constrained, x);
    bool any = false;
    for (int g = 0; g < m; ++g) {
      any = any || lh.at_bound[g];
      double scale = std::max(1.0, std::abs(x(g)));
      BOOST_TEST(std::abs(res.area[r * m + g] - x(g)) / scale < 2e-3);
    }
    with_constraints += any ? 1 : 0;
  }
  BOOST_TEST_MESSAGE("spectra with active constraints: " << with_constraints << " of " << count);
  // The present lines keep honest uncertainties when others are held at zero.
  const std::vector<std::pair<int, double>> present = {{2, 3000}, {5, 5000}, {6, 1000}};  // Mn, Ni, Cu
  for (auto [g, truth] : present) {
    std::vector<double> pulls;
    for (int r = 0; r < count; ++r) pulls.push_back((res.area[r * m + g] - truth) / res.sigma[r * m + g]);
    auto st = pull_stats(pulls);
    BOOST_TEST_MESSAGE("constrained fits, " << fitter.group_names()[g] << ": pull mean " << st.mean << " sd " << st.sd);
    BOOST_TEST(std::abs(st.mean) < 0.2);
    BOOST_TEST((st.sd > 0.85 && st.sd < 1.15));
  }
  BOOST_TEST(with_constraints > count / 4);  // the test exercises the constrained path
}

BOOST_AUTO_TEST_CASE(low_energy_tails_match_a_numerical_convolution) {
  // Each line: a Gaussian plus a low-energy tail of area ratio 0.08 whose
  // shape is an exponential of slope beta = 1.5 sigma convolved with the
  // Gaussian. The test builds that convolution numerically on a fine grid
  // (an independent route to the closed form in peak_shape.cpp) and fits
  // with the tails fixed and the calibration and width refined (the
  // finite-difference Jacobian path).
  FitConfig cfg = ideal_config({"Mn K", "Fe K", "Cu K"});
  cfg.peak_shape.short_tail_area = 0.08;
  cfg.peak_shape.short_tail_slope = 1.5;
  const std::vector<std::pair<int, double>> truth = {{25, 2e5}, {26, 5e4}, {29, 1e5}};
  std::vector<double> y = analytic_spectrum(truth, 2048, -0.02, 0.01, 20.0, 0.0);
  for (auto [Z, area] : truth) {
    for (auto [en, fraction] : k_lines(Z)) {
      double sigma = std::sqrt(std::pow(0.1 / 2.3548200450309493, 2) + 0.00385 * 0.114 * en);
      double beta = 1.5 * sigma, tail_area = 0.08 * area * fraction;
      const double dt = sigma / 50;  // exponential sampled below the line, folded with the Gaussian
      for (int c = 0; c < 2048; ++c) {
        double e = -0.02 + 0.01 * c;
        if (e < en - 40 * sigma || e > en + 8 * sigma) continue;
        double acc = 0;
        for (double t = dt / 2; t < 30 * beta; t += dt) {
          double z = (e - (en - t)) / sigma;
          acc += std::exp(-t / beta) / beta * std::exp(-0.5 * z * z) / (sigma * std::sqrt(2 * M_PI)) * dt;
        }
        y[c] += tail_area * acc * 0.01;
      }
    }
  }
  SpectrumModel model(cfg, 2048);
  SpectrumFit fit = fit_spectrum(model, y);
  for (std::size_t g = 0; g < truth.size(); ++g) {
    BOOST_TEST_INFO(fit.group_names[g] << " area " << fit.area(g) << " truth " << truth[g].second);
    BOOST_TEST(std::abs(fit.area(g) / truth[g].second - 1.0) < 0.005);
  }
  BOOST_TEST(fit.chi2_reduced < 1e-3);
}

BOOST_AUTO_TEST_CASE(pileup_peaks_are_fitted_as_the_self_convolution) {
  // Random summing puts a copy of the peak spectrum convolved with itself at
  // the sum energies. The test convolves its own analytic peaks (channel
  // i + j holds the pairs of i and j; offset -0.02 keV shifts the sum by -2
  // channels) and adds 3000 pile-up counts.
  FitConfig cfg = ideal_config({"Mn K", "Fe K", "Cu K"});
  cfg.fit.pileup = true;
  cfg.fit.energy_max_keV = 18.0;
  const std::vector<std::pair<int, double>> truth = {{25, 4e5}, {26, 1e5}, {29, 3e5}};
  std::vector<double> peaks = analytic_spectrum(truth, 2048, -0.02, 0.01, 0.0, 0.0);
  std::vector<double> sum(2048, 0.0);
  double total = 0;
  for (int i = 0; i < 2048; ++i)
    for (int j = 0; j < 2048; ++j) {
      int k = i + j - 2;
      if (k < 0 || k >= 2048) continue;
      sum[k] += peaks[i] * peaks[j];
      total += peaks[i] * peaks[j];
    }
  std::vector<double> y(2048);
  for (int c = 0; c < 2048; ++c) y[c] = peaks[c] + 3000.0 * sum[c] / total + 5.0;
  SpectrumModel model(cfg, 2048);
  SpectrumFit fit = fit_spectrum(model, y);
  BOOST_REQUIRE(fit.group_names.back() == "Pile-up");
  for (std::size_t g = 0; g < truth.size(); ++g)
    BOOST_TEST(std::abs(fit.area(g) / truth[g].second - 1.0) < 0.005);
  // The pile-up column covers the fit range only: the share of the summed
  // spectrum that falls inside it.
  double inside = 0;
  for (int c = model.first_channel(); c < model.last_channel(); ++c) inside += 3000.0 * sum[c] / total;
  BOOST_TEST_MESSAGE("pile-up area " << fit.area(truth.size()) << " expected " << inside);
  BOOST_TEST(std::abs(fit.area(truth.size()) / inside - 1.0) < 0.02);
}
