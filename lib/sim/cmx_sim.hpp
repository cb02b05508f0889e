#pragma once
// cmx-sim: writes a simulated confocal micro-XRF depth scan of the virtual
// coin cell, in the layout cmx-acquire writes (io/xrf_scan.hpp).
#include <cstdint>
#include <string>

namespace opx::sim {

struct CmxSimOptions {
  std::string output;
  std::string config = "nmc-coin-cell-cu-tube";  // spectral response
  int points = 150;
  std::string start = "0 um", step = "5 um", real_time = "30 s", shift = "0 um";
  double anode_mn_factor = 1.0;
  int channels = 2048;
  std::uint64_t seed = 1;
  bool noise = true;
};

int run_cmx_sim(const CmxSimOptions& options);

}  // namespace opx::sim
