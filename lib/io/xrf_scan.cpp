#include "io/xrf_scan.hpp"

#include <fmt/format.h>

#include "core/atomic_file.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "io/hdf5.hpp"
#include "io/nexus.hpp"

namespace opx::io {

void write_xrf_scan(const std::filesystem::path& path, const XrfScan& scan, const std::string& program) {
  const std::size_t points = scan.axis.size();
  if (scan.channels <= 0 || scan.counts.size() != points * std::size_t(scan.channels) ||
      scan.live_time_s.size() != points || scan.real_time_s.size() != points)
    throw internal_error("cannot write scan", path.string(), "inconsistent array sizes");
  AtomicOutput out(path);
  {
    h5::CreateOptions co;
    co.label = path.string();
    h5::File f = h5::File::create(out.temp_path(), co);
    nexus::EntryInfo info;
    info.title = scan.title;
    info.program_name = program;
    h5::Group entry = nexus::make_entry(f, "entry", info);
    h5::Group inst = nexus::make_group(entry, "instrument", "NXinstrument");
    h5::Group mca = nexus::make_group(inst, "mca", "NXdetector");
    h5::Storage st;
    st.chunk_rows = 16;
    st.gzip_level = 1;
    st.shuffle = true;
    nexus::write_quantity(mca, "data", scan.counts, "counts", {points, std::size_t(scan.channels)}, st);
    nexus::write_quantity(mca, "live_time", scan.live_time_s, "s");
    nexus::write_quantity(mca, "real_time", scan.real_time_s, "s");
    nexus::write_quantity(mca, "calibration", std::vector<double>{scan.offset_keV, scan.gain_keV, scan.quadratic_keV},
                          "keV");
    if (!scan.source_anode.empty()) {
      h5::Group src = nexus::make_group(inst, "source", "NXsource");
      src.write_string("type", "Fixed Tube X-ray");
      src.write_string("target_material", scan.source_anode);
      nexus::write_quantity(src, "voltage", std::vector<double>{scan.source_voltage_kV}, "kV");
      nexus::write_quantity(src, "current", std::vector<double>{scan.source_current_uA}, "uA");
    }
    h5::Group sample = nexus::make_group(entry, "sample", "NXsample");
    sample.write_string("name", scan.sample);
    h5::Group data = nexus::make_data(entry, "data", "counts", {scan.axis_name, "."});
    data.link_hard("counts", "/entry/instrument/mca/data");
    nexus::write_quantity(data, scan.axis_name, scan.axis, scan.axis_units);
    nexus::write_end_time(entry, clock::now_iso8601());
    f.close();
  }
  out.commit();
}

}  // namespace opx::io
