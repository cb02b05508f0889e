#include "sim/cmx_sim.hpp"

#include <cstdio>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "core/log.hpp"
#include "core/units.hpp"
#include "io/manifest.hpp"
#include "io/xrf_scan.hpp"
#include "sim/coin_cell.hpp"
#include "xrf/config.hpp"

namespace opx::sim {

int run_cmx_sim(const CmxSimOptions& opt) {
  if (opt.output.empty() || opt.output == "-")
    throw usage_error("no output file", "-o", "give -o SCAN.h5 (HDF5 needs a real file)");
  if (opt.points < 1) throw usage_error("invalid --points", std::to_string(opt.points), "must be at least 1");
  if (opt.channels < 256 || opt.channels > 65536)
    throw usage_error("invalid --channels", std::to_string(opt.channels), "use 256 to 65536");
  Manifest manifest = Manifest::begin(log::program());
  std::string cfg_path = xrf::find_config(opt.config);
  xrf::FitConfig cfg = xrf::load_fit_config(cfg_path);
  manifest.add_input(cfg_path);
  cfg.calibration.gain_keV *= 2048.0 / opt.channels;  // same energy range whatever the channel count

  CoinCell cell = CoinCell::nmc622();
  cell.shift_um = units::parse_as(opt.shift, "um", "--shift");
  cell.anode_mn_factor = opt.anode_mn_factor;
  DepthScan scan;
  scan.start_um = units::parse_as(opt.start, "um", "--start");
  scan.step_um = units::parse_as(opt.step, "um", "--step");
  scan.points = opt.points;
  scan.real_time_s = units::parse_as(opt.real_time, "s", "--real-time");
  if (!(scan.real_time_s > 0)) throw usage_error("invalid --real-time", opt.real_time, "must be positive");
  scan.seed = opt.seed;
  scan.noise = opt.noise;
  SimulatedScan s = simulate_depth_scan(cell, scan, cfg, opt.channels);

  io::XrfScan out;
  out.title = fmt::format("simulated confocal depth scan of an NMC622 coin cell ({} points)", opt.points);
  out.sample = "virtual NMC622/graphite coin cell";
  out.axis = s.depth_um;
  out.counts = std::move(s.counts);
  out.channels = s.channels;
  out.live_time_s = s.live_time_s;
  out.real_time_s = s.real_time_s;
  out.offset_keV = cfg.calibration.offset_keV;
  out.gain_keV = cfg.calibration.gain_keV;
  out.source_anode = cfg.excitation.anode;
  out.source_voltage_kV = cfg.excitation.voltage_kV;
  out.source_current_uA = 600;
  io::write_xrf_scan(opt.output, out, log::program());
  manifest.set_parameters({{"config", cfg_path}, {"points", opt.points}, {"start", opt.start}, {"step", opt.step},
                           {"real_time", opt.real_time}, {"shift", opt.shift},
                           {"anode_mn_factor", opt.anode_mn_factor}, {"channels", opt.channels},
                           {"seed", opt.seed}, {"noise", opt.noise}});
  manifest.set_summary({{"points", opt.points}, {"channels", opt.channels}});
  manifest.write(opt.output);
  std::string line = nlohmann::json{{"output", opt.output}, {"points", opt.points}, {"channels", opt.channels}}.dump() + "\n";
  std::fputs(line.c_str(), stdout);
  return 0;
}

}  // namespace opx::sim
