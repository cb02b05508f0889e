#pragma once
// The fast linear fit of a stack of spectra (depth profiles, maps, volumes)
// with the nonlinear parameters fixed, typically from a nonlinear fit of the
// stack's sum spectrum.
//
// All spectra share one design matrix D = [peak groups | background basis]
// and one weight vector w (from the sum spectrum's model: Poisson variance
// up to a scale, or uniform), so the normal matrix N = D'WD is factorized
// once and each spectrum costs one product with G = N^-1 D'W. Areas that
// come out negative are set to zero by an active-set method on C = N^-1:
// holding the set Z at zero gives x = x_u - C[:,Z] C[Z,Z]^-1 x_u[Z], and the
// multipliers -C[Z,Z]^-1 x_u[Z] say which constraints stay active (a few
// |Z| x |Z| solves, no refactorization). Standard uncertainties are the
// Poisson sandwich G V G' with V = diag(model), which is exact for any fixed
// weights: with model = D x it is sum_j x_j T_j, T_j = G diag(d_j) G'
// precomputed, so a spectrum costs O(p^2) (its diagonal, K x with
// K = (G o G) D) or O(p^3) when constraints are active.
#include <string>
#include <vector>

#include <Eigen/Dense>

#include "xrf/fit.hpp"
#include "xrf/model.hpp"

namespace opx::xrf {

enum class StackWeights { none, sum_spectrum };

struct StackResults {
  int count = 0, groups = 0;
  std::vector<float> area, sigma;  // [count * groups]
  std::vector<float> chi2_reduced; // [count]
  std::vector<float> model, background, residual;  // [count * n_fit] when requested
  void resize(int count, int groups, int n_fit, bool with_model);
};

class StackFitter {
 public:
  // `reference` is the model of the sum spectrum over the fit range (for
  // the weights) and `pileup` the pile-up shape (if the model has that group).
  StackFitter(const SpectrumModel& model, const ResponseParams& params, const Eigen::VectorXd& reference,
              const Eigen::VectorXd& pileup, StackWeights weights);

  int n_groups() const { return m_; }
  int n_fit() const { return n_; }
  const std::vector<std::string>& group_names() const { return names_; }

  // Fits spectra[s * n_channels + ch] for s in [0, count) and writes results
  // at rows [row0, row0 + count) of `out`. Thread-safe (const); uses OpenMP
  // over blocks of spectra when called outside a parallel region.
  void fit(const float* spectra, int count, int n_channels, StackResults& out, int row0) const;

 private:
  void fit_block(const float* spectra, int count, int n_channels, StackResults& out, int row0) const;
  int m_ = 0, k_ = 0, p_ = 0, n_ = 0, first_ = 0;
  bool snip_ = false;
  int snip_width_ = 0, snip_smooth_ = 0;
  std::vector<std::string> names_;
  Eigen::MatrixXd d_;                       // [n, p] design
  std::vector<int> lo_, hi_;                // support of each design column
  Eigen::VectorXd w_;                       // [n]
  Eigen::MatrixXd normal_;                  // [p, p] normal matrix D'WD
  Eigen::MatrixXd n_inv_;                   // [p, p]
  Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor> g_;  // [p, n] = N^-1 D'W
  Eigen::MatrixXd h_;                       // [p, n] = G o G
  Eigen::MatrixXd k_mat_;                   // [p, p] = H D
  std::vector<Eigen::MatrixXd> t_;          // p x [p, p]: G diag(d_j) G'
  // SNIP background in the sandwich of constrained spectra: projected on a
  // smooth spline basis (its coefficients c = P s), T_q = G diag(b_q) G'.
  Eigen::MatrixXf snip_proj_;               // [q, n]
  std::vector<Eigen::MatrixXd> t_snip_;     // q x [p, p]
};

}  // namespace opx::xrf
