#pragma once
// The NeXus layout of a confocal micro-XRF scan, as cmx-acquire writes it and
// cmx-fit reads it:
//   /entry                      NXentry (title, start_time, end_time, program_name)
//   /entry/instrument/mca       NXdetector: data [points, channels] (counts),
//                               live_time, real_time [points] (s), calibration [3] (keV)
//   /entry/instrument/source    NXsource: anode, voltage, current
//   /entry/sample               NXsample: name, description
//   /entry/data                 NXdata: counts -> mca/data, depth [points] (um)
//                               @signal=counts @axes=[depth, .]
#include <filesystem>
#include <string>
#include <vector>

namespace opx::io {

struct XrfScan {
  std::string title, sample;
  std::string axis_name = "depth";       // position axis of the points
  std::string axis_units = "um";
  std::vector<double> axis;              // [points]
  std::vector<float> counts;             // [points, channels]
  int channels = 0;
  std::vector<double> live_time_s, real_time_s;
  double offset_keV = 0, gain_keV = 0.01, quadratic_keV = 0;
  std::string source_anode;
  double source_voltage_kV = 0, source_current_uA = 0;
};

// Writes `scan` to `path` atomically (temporary name, renamed when complete).
void write_xrf_scan(const std::filesystem::path& path, const XrfScan& scan, const std::string& program);

}  // namespace opx::io
