#pragma once
// cmx-fit: deconvolution of XRF spectra into net peak intensities.
// The program's whole behaviour behind one call, so tests and other programs
// can run it without a shell (GDAL's *_lib.cpp pattern).
#include <cstddef>
#include <string>
#include <vector>

namespace opx::xrf {

struct CmxFitOptions {
  std::vector<std::string> inputs;  // spectrum files, globs, or FILE.h5[:/dataset]
  std::string config;               // fit configuration (path or ready-made name)
  std::string output;               // -o: HDF5 result (+ manifest); empty: table on stdout
  std::string live_time;            // "30 s": overrides the files' live time
  std::string live_time_dataset;    // FILE.h5:/path with per-spectrum live times
  std::string engine = "auto";      // auto | linear | nonlinear
  std::string weights = "sum";      // linear engine: sum (Poisson, from the sum spectrum) | none
  std::string format = "auto";      // stdout for single spectra: auto | table | json
  bool save_model = false;          // write model and background per spectrum
  bool use_file_calibration = true; // start from a spectrum file's own calibration
  std::size_t chunk = 4096;         // spectra per chunk when streaming a stack
  int threads = 0;                  // 0: OpenMP's default
};

int run_cmx_fit(const CmxFitOptions& options);

// cmx-fit --identify: peaks found in a spectrum and the elements proposed.
struct IdentifyOptions {
  std::string input;
  std::string config;        // optional: calibration and detector from here
  double min_significance = 5.0;
  std::string format = "table";  // table | json
};
int run_identify(const IdentifyOptions& options);

// cmx-fit --import-pymca FILE.cfg: converts a PyMca fit configuration.
int run_import_pymca(const std::string& cfg_path, const std::string& output);

}  // namespace opx::xrf
