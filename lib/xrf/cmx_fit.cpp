#include "xrf/cmx_fit.hpp"

#include <glob.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <iostream>
#include <memory>
#include <optional>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/atomic_file.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/error.hpp"
#include "core/log.hpp"
#include "core/progress.hpp"
#include "core/run_tool.hpp"
#include "core/units.hpp"
#include "io/hdf5.hpp"
#include "io/manifest.hpp"
#include "io/nexus.hpp"
#include "io/spectrum_file.hpp"
#include "xrf/config.hpp"
#include "xrf/fit.hpp"
#include "xrf/model.hpp"
#include "xrf/stack_fit.hpp"

namespace opx::xrf {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// ---------------------------------------------------------------- inputs --

std::vector<std::string> expand_inputs(const std::vector<std::string>& inputs) {
  std::vector<std::string> out;
  for (const auto& in : inputs) {
    // FILE.h5:/path addresses are taken as they are; shell patterns are
    // expanded here too, for quoted globs and for Makefiles.
    if (in.find(":/") == std::string::npos && in.find_first_of("*?[") != std::string::npos) {
      glob_t g{};
      int rc = ::glob(in.c_str(), 0, nullptr, &g);
      if (rc == GLOB_NOMATCH) {
        globfree(&g);
        throw input_missing("cannot read spectra", in, "no file matches this pattern");
      }
      for (std::size_t i = 0; i < g.gl_pathc; ++i) out.emplace_back(g.gl_pathv[i]);
      globfree(&g);
    } else {
      out.push_back(in);
    }
  }
  return out;
}

bool looks_like_hdf5(const std::string& input) {
  if (input.find(":/") != std::string::npos) return true;
  std::string ext = fs::path(input).extension().string();
  std::transform(ext.begin(), ext.end(), ext.begin(), ::tolower);
  if (ext == ".h5" || ext == ".hdf5" || ext == ".nxs" || ext == ".hdf" || ext == ".nx5") return true;
  std::ifstream f(input, std::ios::binary);
  char sig[8] = {};
  return f.read(sig, 8) && std::string(sig, 8) == std::string("\x89HDF\r\n\x1a\n", 8);
}

// NeXus/HDF5 names: letters, digits and underscores ("Cu K + Rayleigh" -> "Cu_K_Rayleigh").
std::string nexus_name(const std::string& group) {
  std::string out;
  for (char c : group) {
    if (std::isalnum(static_cast<unsigned char>(c))) out += c;
    else if (!out.empty() && out.back() != '_') out += '_';
  }
  while (!out.empty() && out.back() == '_') out.pop_back();
  return out;
}

Error invalid_live_time(const std::string& where, double seconds) {
  return data_error("invalid live time", where,
                    fmt::format("{} s: a live time must be positive (use --live-time to override)", seconds));
}

double parse_live_time_option(const std::string& text) {
  double t = units::parse_as(text, "s", "--live-time");
  if (!(t > 0)) throw usage_error("invalid --live-time", text, "the live time must be positive");
  return t;
}

// A stack of spectra in an HDF5 dataset of shape [..., channels].
struct StackInput {
  std::string label;                  // FILE.h5:/path for messages
  fs::path file;
  std::string dataset;
  h5::Shape leading;                  // shape without the channel axis
  std::size_t count = 0, channels = 0;
  std::vector<double> live_time;      // per spectrum; empty: none known
  std::string live_time_source;
  std::vector<std::string> axes;      // one per leading dimension ("." when none)
  std::string nxdata_path;            // where the axes live
  std::vector<double> calibration;    // [offset, gain, quadratic] keV, when the file has one
  std::string calibration_source;
};

// A dataset `name` beside the spectra (in their NXdata group) or in an
// NXdetector of /<entry>/instrument: live_time, calibration.
std::optional<std::string> find_detector_dataset(const h5::File& file, const std::string& nxdata_path,
                                                 const std::string& name) {
  if (!nxdata_path.empty()) {
    std::string p = nxdata_path + "/" + name;
    if (file.kind(p) == h5::Kind::dataset) return p;
  }
  for (const auto& entry : file.children()) {
    if (file.kind("/" + entry) != h5::Kind::group) continue;
    h5::Group e = file.open_group("/" + entry);
    if (!e.exists("instrument") || e.kind("instrument") != h5::Kind::group) continue;
    h5::Group inst = e.open_group("instrument");
    for (const auto& det : inst.children()) {
      std::string p = fmt::format("/{}/instrument/{}/{}", entry, det, name);
      if (file.kind(p) == h5::Kind::dataset) return p;
    }
  }
  return std::nullopt;
}

StackInput open_stack(const std::string& text, const CmxFitOptions& opt) {
  StackInput in;
  // FILE.h5 alone: the NeXus default NXdata's signal.
  h5::Address addr = text.find(":/") != std::string::npos ? h5::parse_address(text) : h5::Address{text, ""};
  in.file = addr.file;
  h5::File f = h5::File::open(addr.file);
  if (addr.dataset.empty()) {
    nexus::DataInfo info;
    try {
      info = nexus::find_default_data(f);
    } catch (const Error&) {
      throw data_error("no spectra found", addr.file.string(),
                       "the file has no NXdata group to take the spectra from: name the dataset, e.g. FILE.h5:/path/to/counts");
    }
    in.dataset = info.path + "/" + info.signal;
    in.nxdata_path = info.path;
    in.axes = info.axes;
  } else {
    in.dataset = addr.dataset;
    auto slash = in.dataset.rfind('/');
    std::string parent = slash == 0 ? "/" : in.dataset.substr(0, slash);
    if (f.kind(parent) == h5::Kind::group) {
      h5::Group g = f.open_group(parent);
      if (nexus::nx_class(g) == "NXdata") {
        in.nxdata_path = parent;
        in.axes = nexus::read_data_info(g).axes;
      }
    }
  }
  in.label = fmt::format("{}:{}", addr.file.string(), in.dataset);
  h5::Dataset ds = f.open_dataset(in.dataset);
  h5::Shape shape = ds.shape();
  if (shape.size() < 2 && !(shape.size() == 1 && shape[0] >= 16))
    throw data_error("cannot read spectra", in.label,
                     fmt::format("expected a dataset of shape [..., channels], found {} dimensions", shape.size()));
  if (shape.back() < 16)
    throw data_error("cannot read spectra", in.label,
                     fmt::format("spectra of {} channels: at least 16 are needed", shape.back()));
  in.channels = shape.back();
  in.leading.assign(shape.begin(), shape.end() - 1);
  if (in.leading.empty()) in.leading = {1};
  in.count = 1;
  for (auto d : in.leading) in.count *= d;
  if (in.count == 0) throw data_error("cannot read spectra", in.label, "the dataset holds no spectra");
  if (in.axes.size() != shape.size()) in.axes.assign(shape.size(), ".");
  in.axes.resize(in.leading.size());

  if (auto p = opt.use_file_calibration ? find_detector_dataset(f, in.nxdata_path, "calibration") : std::nullopt) {
    h5::Dataset cal = f.open_dataset(*p);
    if (cal.size() >= 2 && cal.size() <= 3) {
      in.calibration = cal.read<double>();
      in.calibration.resize(3, 0.0);
      in.calibration_source = fmt::format("{}:{}", addr.file.string(), *p);
      const auto& c = in.calibration;
      if (!std::isfinite(c[0]) || !std::isfinite(c[1]) || !std::isfinite(c[2]) || !(c[1] > 0))
        throw data_error("invalid energy calibration", in.calibration_source,
                         fmt::format("[{}, {}, {}] keV: the values must be finite and the gain positive (or use "
                                     "--ignore-file-calibration)",
                                     c[0], c[1], c[2]));
    }
  }
  if (!opt.live_time.empty()) {
    in.live_time.assign(in.count, parse_live_time_option(opt.live_time));
    in.live_time_source = "--live-time " + opt.live_time;
  } else {
    std::optional<h5::Address> lt_addr;
    if (!opt.live_time_dataset.empty()) {
      lt_addr = h5::parse_address(opt.live_time_dataset);
    } else if (auto p = find_detector_dataset(f, in.nxdata_path, "live_time")) {
      lt_addr = h5::Address{addr.file, *p};
    }
    if (lt_addr) {
      h5::File lf = h5::File::open(lt_addr->file);
      h5::Dataset lds = lf.open_dataset(lt_addr->dataset);
      std::string where = h5::to_string(*lt_addr);
      if (lds.size() != in.count && lds.size() != 1)
        throw data_error("invalid live time", where,
                         fmt::format("{} values for {} spectra", lds.size(), in.count));
      in.live_time = lds.read<double>();
      if (in.live_time.size() == 1) in.live_time.assign(in.count, in.live_time[0]);
      for (std::size_t i = 0; i < in.count; ++i)
        if (!(in.live_time[i] > 0) || !std::isfinite(in.live_time[i]))
          throw invalid_live_time(fmt::format("{}[{}]", where, i), in.live_time[i]);
      in.live_time_source = where;
    }
  }
  return in;
}

void check_counts(const float* row, std::size_t channels, const std::string& label, std::size_t index) {
  for (std::size_t c = 0; c < channels; ++c) {
    float v = row[c];
    if (!std::isfinite(v))
      throw data_error("invalid spectrum", fmt::format("{}[{}, {}]", label, index, c), "count is not a finite number");
    if (v < 0)
      throw data_error("invalid spectrum", fmt::format("{}[{}, {}]", label, index, c),
                       fmt::format("negative count {}", v));
  }
}

// Refined parameters; an undetermined uncertainty is null (JSON has no NaN).
json refined_json(const SpectrumFit& fit) {
  json refined = json::object();
  for (const auto& r : fit.refined)
    refined[r.name] = {{"value", r.value}, {"sigma", std::isfinite(r.sigma) ? json(r.sigma) : json(nullptr)}};
  return refined;
}

// --------------------------------------------------------------- output --

// Writes the NeXus result file: one NXdata per line group with net area,
// net count rate and their uncertainties, shaped like the input's leading
// dimensions, with the input's position axes copied.
class ResultFile {
 public:
  ResultFile(const fs::path& target, const std::vector<std::string>& groups, const h5::Shape& leading,
             bool with_rate, int n_fit, bool with_model, int first_channel, const std::string& title)
      : out_(target), groups_(groups), leading_(leading), with_rate_(with_rate), n_fit_(n_fit) {
    h5::CreateOptions co;
    co.label = target.string();
    file_ = h5::File::create(out_.temp_path(), co);
    nexus::EntryInfo info;
    info.title = title;
    info.program_name = log::program();
    entry_ = nexus::make_entry(file_, "entry", info);
    row_shape_.assign(leading_.begin() + 1, leading_.end());
    row_size_ = 1;
    for (auto d : row_shape_) row_size_ *= d;
    // Chunks of at most 64 k values, and no larger than the whole result.
    h5::Storage st;
    st.chunk_rows = std::clamp<std::size_t>(65536 / std::max<std::size_t>(1, row_size_), 1, leading_[0]);
    for (const auto& g : groups_) {
      std::string name = nexus_name(g);
      std::vector<std::string> axes(leading_.size(), ".");
      h5::Group d = nexus::make_data(entry_, name, with_rate_ ? "net_count_rate" : "area", axes);
      d.write_attribute("line_group", g);
      GroupSets s;
      s.area = d.create_extendable<float>("area", row_shape_, st);
      nexus::set_units(s.area, "counts");
      s.area_err = d.create_extendable<float>("area_errors", row_shape_, st);
      nexus::set_units(s.area_err, "counts");
      if (with_rate_) {
        s.rate = d.create_extendable<float>("net_count_rate", row_shape_, st);
        nexus::set_units(s.rate, "counts/s");
        s.rate_err = d.create_extendable<float>("net_count_rate_errors", row_shape_, st);
        nexus::set_units(s.rate_err, "counts/s");
      }
      data_groups_.push_back(std::move(d));
      sets_.push_back(std::move(s));
    }
    results_ = nexus::make_group(entry_, "results", "NXcollection");
    chi2_ = results_.create_extendable<float>("chi2_reduced", row_shape_, st);
    if (with_rate_) {
      live_ = results_.create_extendable<double>("live_time", row_shape_, st);
      nexus::set_units(live_, "s");
    }
    results_.write_strings("group_names", groups_);
    if (with_model) {
      h5::Shape ms = {static_cast<std::size_t>(n_fit)};
      h5::Storage mst;
      mst.chunk_rows = std::clamp<std::size_t>(leading_[0] * row_size_, 1, 64);
      mst.gzip_level = 1;
      mst.shuffle = true;
      model_ = results_.create_extendable<float>("model", ms, mst);
      background_ = results_.create_extendable<float>("background", ms, mst);
      residual_ = results_.create_extendable<float>("residual", ms, mst);
      nexus::set_units(*model_, "counts");
      nexus::set_units(*background_, "counts");
      nexus::set_units(*residual_, "counts");
      results_.write_scalar("model_first_channel", static_cast<std::int32_t>(first_channel));
    }
  }

  std::size_t row_size() const { return row_size_; }
  h5::Group& entry() { return entry_; }

  // Appends `count` spectra's results (a whole number of rows).
  void append(const StackResults& r, int count, const double* live_time) {
    const int m = static_cast<int>(groups_.size());
    std::vector<float> a(count), e(count), rate(count), rate_e(count);
    for (int g = 0; g < m; ++g) {
      for (int i = 0; i < count; ++i) {
        a[i] = r.area[std::size_t(i) * r.groups + g];
        e[i] = r.sigma[std::size_t(i) * r.groups + g];
        if (with_rate_) {
          rate[i] = static_cast<float>(a[i] / live_time[i]);
          rate_e[i] = static_cast<float>(e[i] / live_time[i]);
        }
      }
      sets_[g].area.append(a);
      sets_[g].area_err.append(e);
      if (with_rate_) {
        sets_[g].rate.append(rate);
        sets_[g].rate_err.append(rate_e);
      }
    }
    chi2_.append(std::vector<float>(r.chi2_reduced.begin(), r.chi2_reduced.begin() + count));
    if (with_rate_) live_.append(std::vector<double>(live_time, live_time + count));
    if (model_) {
      model_->append(std::vector<float>(r.model.begin(), r.model.begin() + std::size_t(count) * n_fit_));
      background_->append(std::vector<float>(r.background.begin(), r.background.begin() + std::size_t(count) * n_fit_));
      residual_->append(std::vector<float>(r.residual.begin(), r.residual.begin() + std::size_t(count) * n_fit_));
    }
  }

  // Copies the input's position axes into every NXdata group.
  void copy_axes(const StackInput& in) {
    if (in.nxdata_path.empty()) return;
    h5::File src = h5::File::open(in.file);
    for (std::size_t d = 0; d < in.axes.size(); ++d) {
      const std::string& name = in.axes[d];
      if (name == "." || name.empty()) continue;
      std::string path = in.nxdata_path + "/" + name;
      if (src.kind(path) != h5::Kind::dataset) continue;
      h5::Dataset ax = src.open_dataset(path);
      if (ax.rank() != 1 || ax.size() != in.leading[d]) continue;
      for (auto& g : data_groups_) {
        g.copy_dataset(ax, name);
        std::vector<std::string> axes = nexus::read_data_info(g).axes;
        axes[d] = name;
        g.write_attribute("axes", axes);
        g.write_attribute(name + "_indices", static_cast<std::int32_t>(d));
      }
    }
  }

  void write_fit_process(const FitConfig& cfg, const SpectrumFit& sum_fit, const SpectrumModel& model,
                         const std::vector<double>& sum_counts, double sum_live_time) {
    h5::Group proc = nexus::make_group(entry_, "process", "NXprocess");
    proc.write_string("program", log::program());
    proc.write_string("version", config::version);
    proc.write_string("date", clock::now_iso8601());
    proc.write_string("configuration", cfg.to_json().dump(2));
    proc.write_string("refined_parameters", refined_json(sum_fit).dump(2));
    proc.write_scalar("sum_chi2_reduced", sum_fit.chi2_reduced);
    json groups = json::array();
    for (const auto& g : model.groups()) {
      json lines = json::array();
      for (const auto& l : g.lines) lines.push_back({{"label", l.label}, {"energy_keV", l.energy_keV}, {"weight", l.weight}});
      groups.push_back({{"name", g.name}, {"merged", g.merged}, {"lines", lines}});
    }
    proc.write_string("line_groups", groups.dump(2));
    // The sum spectrum with its fit, for a look at the fit quality.
    std::vector<double> energy, width;
    model.channel_energies(sum_fit.params, energy, width);
    std::vector<double> counts(sum_counts.begin() + model.first_channel(), sum_counts.begin() + model.last_channel());
    h5::Group s = nexus::make_data(entry_, "sum_spectrum", "counts", {"energy"});
    nexus::write_quantity(s, "counts", counts, "counts");
    nexus::write_quantity(s, "model", sum_fit.model, "counts");
    nexus::write_quantity(s, "background", sum_fit.background, "counts");
    nexus::write_quantity(s, "energy", energy, "keV");
    s.write_attribute("auxiliary_signals", std::vector<std::string>{"model", "background"});
    if (sum_live_time > 0) s.write_scalar("live_time", sum_live_time);
    if (!data_groups_.empty()) nexus::set_default(entry_, nexus_name(groups_.front()));
  }

  void commit() {
    nexus::write_end_time(entry_, clock::now_iso8601());
    data_groups_.clear();
    sets_.clear();
    model_.reset();
    background_.reset();
    residual_.reset();
    chi2_ = {};
    live_ = {};
    results_ = {};
    entry_ = {};
    file_.close();
    out_.commit();
  }

 private:
  struct GroupSets {
    h5::Dataset area, area_err, rate, rate_err;
  };
  AtomicOutput out_;
  std::vector<std::string> groups_;
  h5::Shape leading_, row_shape_;
  std::size_t row_size_ = 1;
  bool with_rate_;
  int n_fit_;
  h5::File file_;
  h5::Group entry_, results_;
  std::vector<h5::Group> data_groups_;
  std::vector<GroupSets> sets_;
  h5::Dataset chi2_, live_;
  std::optional<h5::Dataset> model_, background_, residual_;
};

// ------------------------------------------------------------- printing --

void print_table(const std::string& source, const SpectrumFit& fit, double live_time, std::size_t channels) {
  std::string head = fmt::format("# {}: {} channels", source, channels);
  if (live_time > 0) head += fmt::format(", live time {:.2f} s", live_time);
  head += fmt::format(", chi2/dof {:.3f} ({} iterations{})\n", fit.chi2_reduced, fit.iterations,
                      fit.converged ? "" : ", not converged");
  std::fputs(head.c_str(), stdout);
  std::fputs(fmt::format("{:<24} {:>14} {:>12} {:>8}{}\n", "group", "area", "sigma", "rel%",
                         live_time > 0 ? fmt::format(" {:>12} {:>10}", "cps", "cps_sigma") : "")
                 .c_str(),
             stdout);
  for (std::size_t g = 0; g < fit.group_names.size(); ++g) {
    double a = fit.area(g), s = fit.area_sigma(g);
    std::string rel = a > 0 ? fmt::format("{:8.2f}", 100.0 * s / a) : fmt::format("{:>8}", "-");
    std::string line = fmt::format("{:<24} {:14.1f} {:12.1f} {}", fit.group_names[g], a, s, rel);
    if (live_time > 0) line += fmt::format(" {:12.3f} {:10.3f}", a / live_time, s / live_time);
    if (fit.at_bound[g]) line += "  (at zero)";
    std::fputs((line + "\n").c_str(), stdout);
  }
  for (const auto& r : fit.refined)
    std::fputs((std::isfinite(r.sigma) ? fmt::format("# {} = {:.6g} +- {:.2g}\n", r.name, r.value, r.sigma)
                                       : fmt::format("# {} = {:.6g} (not determined by this spectrum)\n", r.name, r.value))
                   .c_str(),
               stdout);
}

json fit_to_json(const std::string& source, const SpectrumFit& fit, double live_time) {
  json groups = json::array();
  for (std::size_t g = 0; g < fit.group_names.size(); ++g) {
    json e = {{"group", fit.group_names[g]}, {"area", fit.area(g)}, {"area_sigma", fit.area_sigma(g)},
              {"at_zero", static_cast<bool>(fit.at_bound[g])}};
    if (live_time > 0) {
      e["net_count_rate"] = fit.area(g) / live_time;
      e["net_count_rate_sigma"] = fit.area_sigma(g) / live_time;
    }
    groups.push_back(e);
  }
  json j = {{"source", source},         {"chi2_reduced", fit.chi2_reduced}, {"iterations", fit.iterations},
            {"converged", fit.converged}, {"groups", groups},               {"refined", refined_json(fit)}};
  if (live_time > 0) j["live_time_s"] = live_time;
  return j;
}

void print_json_line(const json& j) {
  std::string s = j.dump() + "\n";
  std::fwrite(s.data(), 1, s.size(), stdout);
}

// The spectra must reach the configured fit range; a mismatch is a problem
// of the data (wrong file, rebinned spectra) or of its calibration.
void check_channels(const FitConfig& cfg, std::size_t channels, const std::string& label) {
  double first = cfg.calibration.channel(cfg.fit.energy_min_keV);
  if (first + 16 >= double(channels))
    throw data_error("spectra do not reach the fit range", label,
                     fmt::format("{} channels end at {:.2f} keV, but the fit starts at {:g} keV (channel {:.0f} at "
                                 "{:g} + {:g} keV/channel)",
                                 channels, cfg.calibration.energy(double(channels) - 1), cfg.fit.energy_min_keV,
                                 first, cfg.calibration.offset_keV, cfg.calibration.gain_keV));
}

void warn_poor_fit(const SpectrumFit& fit, const std::string& label) {
  if (fit.chi2_reduced > 5.0)
    log::warn("{}: the fit is poor (chi2/dof = {:.1f}): check the energy calibration, the elements and the fit range "
              "(cmx-fit --identify proposes elements)",
              label, fit.chi2_reduced);
}

void check_output(const CmxFitOptions& opt) {
  if (opt.output.empty()) return;
  if (opt.output == "-")
    throw usage_error("cannot write HDF5 to standard output", "-o -", "HDF5 needs a real file: give -o RESULT.h5");
  AtomicOutput::check_target(opt.output);
}

// The configuration file as an input of the manifest ("-": its content is
// in the manifest's parameters already).
void add_config_input(Manifest& manifest, const std::string& config) {
  std::string path = find_config(config);
  if (path != "-") manifest.add_input(path);
}

FitConfig load_config(const CmxFitOptions& opt) {
  if (opt.config.empty())
    throw usage_error("no fit configuration", "--config",
                      "give one, e.g. --config nmc-coin-cell-cu-tube (see config/ and cmx-fit --identify)");
  return load_fit_config(find_config(opt.config));
}

// --------------------------------------------------- single spectra files --

int fit_spectrum_files(const std::vector<std::string>& files, const CmxFitOptions& opt, Manifest& manifest) {
  check_output(opt);
  const bool to_file = !opt.output.empty();
  FitConfig cfg = load_config(opt);
  if (to_file) add_config_input(manifest, opt.config);
  std::vector<io::Spectrum> spectra;
  for (const auto& f : files) {
    if (f == "-") {
      // Standard input: keep the bytes, so the manifest can hash what was read.
      std::string content((std::istreambuf_iterator<char>(std::cin)), std::istreambuf_iterator<char>());
      spectra.push_back(io::parse_spectrum(content, "<stdin>"));
      if (to_file) manifest.add_input_data("<stdin>", content);
    } else {
      spectra.push_back(io::read_spectrum(f));
      if (to_file) manifest.add_input(f);
    }
  }
  const std::size_t channels = spectra.front().counts.size();
  double forced_live = opt.live_time.empty() ? 0.0 : parse_live_time_option(opt.live_time);
  // Check every file before fitting any, so a bad one never leaves half a table.
  std::vector<double> live(spectra.size());
  for (std::size_t i = 0; i < spectra.size(); ++i) {
    const auto& sp = spectra[i];
    if (sp.counts.size() != channels)
      throw data_error("spectra differ in length", sp.source,
                       fmt::format("{} channels, but {} has {}", sp.counts.size(), spectra.front().source, channels));
    live[i] = forced_live > 0 ? forced_live : sp.live_time_s;
    if (!(live[i] > 0)) {
      if (std::isfinite(live[i])) throw invalid_live_time(sp.source, live[i]);
      live[i] = 0;  // not recorded: no count rates
    }
  }
  std::vector<SpectrumFit> fits;
  std::unique_ptr<SpectrumModel> first_model;
  const bool as_json = opt.format == "json";
  for (std::size_t i = 0; i < spectra.size(); ++i) {
    FitConfig c = cfg;
    if (opt.use_file_calibration && spectra[i].has_calibration()) {
      c.calibration.offset_keV = *spectra[i].offset_keV;
      c.calibration.gain_keV = *spectra[i].gain_keV_per_channel;
      c.calibration.quadratic_keV = spectra[i].quadratic_keV.value_or(0.0);
      log::info("{}: starting from the file's calibration E = {:g} + {:g} ch keV", spectra[i].source,
                c.calibration.offset_keV, c.calibration.gain_keV);
    }
    check_channels(c, channels, spectra[i].source);
    auto model = std::make_unique<SpectrumModel>(c, static_cast<int>(channels));
    fits.push_back(fit_spectrum(*model, spectra[i].counts));
    warn_poor_fit(fits.back(), spectra[i].source);
    if (!to_file) {
      if (as_json) print_json_line(fit_to_json(spectra[i].source, fits.back(), live[i]));
      else {
        if (i > 0) std::fputs("\n", stdout);
        print_table(spectra[i].source, fits.back(), live[i], channels);
      }
    }
    if (!first_model) first_model = std::move(model);
  }
  if (!to_file) return 0;
  // Group names may differ between spectra after degeneracy merges; the
  // file takes the first spectrum's groups and requires the others to match.
  for (std::size_t i = 1; i < fits.size(); ++i)
    if (fits[i].group_names != fits[0].group_names)
      throw data_error("spectra need different models", spectra[i].source,
                       "line groups differ from the first spectrum's; fit them separately");
  const bool with_rate = std::all_of(live.begin(), live.end(), [](double t) { return t > 0; });
  ResultFile out(opt.output, fits[0].group_names, {spectra.size()}, with_rate, first_model->n_fit(), false, 0,
                 fmt::format("cmx-fit of {} spectra", spectra.size()));
  StackResults r;
  r.resize(static_cast<int>(fits.size()), static_cast<int>(fits[0].group_names.size()), first_model->n_fit(), false);
  for (std::size_t i = 0; i < fits.size(); ++i) {
    for (std::size_t g = 0; g < fits[i].group_names.size(); ++g) {
      r.area[i * r.groups + g] = static_cast<float>(fits[i].area(g));
      r.sigma[i * r.groups + g] = static_cast<float>(fits[i].area_sigma(g));
    }
    r.chi2_reduced[i] = static_cast<float>(fits[i].chi2_reduced);
  }
  out.append(r, static_cast<int>(fits.size()), live.data());
  out.entry().write_strings("source_files", files);
  out.write_fit_process(first_model->config(), fits[0], *first_model, spectra[0].counts, live[0]);
  out.commit();
  manifest.add_output(opt.output);
  manifest.set_parameters({{"config", cfg.to_json()}, {"engine", "nonlinear"}});
  json per = json::array();
  for (std::size_t i = 0; i < fits.size(); ++i) per.push_back(fit_to_json(spectra[i].source, fits[i], live[i]));
  manifest.set_summary({{"spectra", fits.size()}, {"groups", fits[0].group_names}, {"fits", per}});
  manifest.write(opt.output);
  print_json_line({{"output", opt.output}, {"spectra", fits.size()}, {"groups", fits[0].group_names}});
  return 0;
}

// ------------------------------------------------------------- a stack --

int fit_stack(const std::string& input, const CmxFitOptions& opt, Manifest& manifest) {
  if (opt.output.empty())
    throw usage_error("no output file", "-o", "a stack of spectra needs an output: -o RESULT.h5");
  check_output(opt);
  FitConfig cfg = load_config(opt);
  add_config_input(manifest, opt.config);
  const double t0 = clock::monotonic();
  StackInput in = open_stack(input, opt);
  manifest.add_input(in.file);
  if (!opt.live_time_dataset.empty()) {
    h5::Address lt = h5::parse_address(opt.live_time_dataset);
    if (lt.file != in.file) manifest.add_input(lt.file);
  }
  if (!in.calibration.empty() && opt.use_file_calibration) {
    cfg.calibration.offset_keV = in.calibration[0];
    cfg.calibration.gain_keV = in.calibration[1];
    cfg.calibration.quadratic_keV = in.calibration[2];
    log::info("starting from the file's calibration E = {:g} + {:g} ch keV ({})", in.calibration[0],
              in.calibration[1], in.calibration_source);
  }
  check_channels(cfg, in.channels, in.label);
  h5::File f = h5::File::open(in.file);
  h5::Dataset ds = f.open_dataset(in.dataset);
  const std::size_t channels = in.channels;
  const std::size_t row = std::max<std::size_t>(1, in.count / in.leading[0]);
  // Spectra per chunk: a whole number of output rows, about opt.chunk spectra.
  const std::size_t chunk = std::max<std::size_t>(1, std::max<std::size_t>(opt.chunk, 1) / row) * row;
  const std::size_t rows_per_chunk = chunk / row;
  const std::size_t n_rows = in.leading[0];

  // Pass 1: validate every spectrum and sum them (the sum spectrum fixes the
  // nonlinear parameters and the weights). Nothing is written before the
  // whole input has been checked.
  std::vector<double> sum(channels, 0.0);
  std::vector<float> buf;
  {
    Progress progress("checking and summing", in.count, progress_mode());
    for (std::size_t r0 = 0; r0 < n_rows; r0 += rows_per_chunk) {
      std::size_t nr = std::min(rows_per_chunk, n_rows - r0);
      ds.read_rows(r0, nr, buf);
      std::size_t ns = nr * row;
      for (std::size_t s = 0; s < ns; ++s) {
        const float* p = buf.data() + s * channels;
        check_counts(p, channels, in.label, r0 * row + s);
        for (std::size_t c = 0; c < channels; ++c) sum[c] += p[c];
      }
      progress.advance(ns);
    }
  }
  double sum_live = 0;
  for (double t : in.live_time) sum_live += t;
  if (in.live_time.empty())
    log::warn("{}: no live time found: writing net areas only (give --live-time or --live-time-dataset for count rates)",
              in.label);

  SpectrumModel model(cfg, static_cast<int>(channels));
  SpectrumFit sum_fit = fit_spectrum(model, sum);
  warn_poor_fit(sum_fit, in.label + " (sum spectrum)");
  log::info("sum spectrum: chi2/dof {:.3f} after {} iterations", sum_fit.chi2_reduced, sum_fit.iterations);
  for (const auto& r : sum_fit.refined) log::info("  {} = {:.6g} +- {:.2g}", r.name, r.value, r.sigma);

  const bool nonlinear_each = opt.engine == "nonlinear";
  Eigen::VectorXd reference = Eigen::Map<Eigen::VectorXd>(sum_fit.model.data(), sum_fit.model.size());
  Eigen::VectorXd pileup;
  for (const auto& g : model.groups())
    if (g.kind == GroupKind::pileup) {
      Columns c;
      model.build_columns(sum_fit.params, c);
      Eigen::VectorXd peaks = Eigen::VectorXd::Zero(model.n_fit());
      for (std::size_t k = 0; k < model.groups().size(); ++k)
        if (model.groups()[k].kind != GroupKind::pileup) peaks += sum_fit.area(k) * c.a.col(k);
      pileup = pileup_shape(model, sum_fit.params, peaks);
    }
  StackFitter fitter(model, sum_fit.params, reference, pileup,
                     opt.weights == "none" ? StackWeights::none : StackWeights::sum_spectrum);

  const bool with_rate = !in.live_time.empty();
  ResultFile out(opt.output, fitter.group_names(), in.leading, with_rate, fitter.n_fit(), opt.save_model,
                 model.first_channel(),
                 fmt::format("cmx-fit of {}", in.label));
  // Pass 2: fit chunk by chunk; memory is bounded by the chunk size.
  StackResults res;
  double chi2_sum = 0;
  double fit_seconds = 0;
  {
    Progress progress("fitting", in.count, progress_mode());
    for (std::size_t r0 = 0; r0 < n_rows; r0 += rows_per_chunk) {
      std::size_t nr = std::min(rows_per_chunk, n_rows - r0);
      ds.read_rows(r0, nr, buf);
      int ns = static_cast<int>(nr * row);
      res.resize(ns, fitter.n_groups(), fitter.n_fit(), opt.save_model);
      double tf = clock::monotonic();
      if (nonlinear_each) {
        // Exceptions must not leave an OpenMP region: keep the first, rethrow after.
        std::exception_ptr failure;
#pragma omp parallel for schedule(dynamic)
        for (int s = 0; s < ns; ++s) {
          try {
          SpectrumModel m = model;  // already merged: the groups stay those of the output file
          std::vector<double> y(buf.begin() + std::size_t(s) * channels, buf.begin() + std::size_t(s + 1) * channels);
          SpectrumFit fs1 = fit_spectrum(m, y, &sum_fit.params, /*merge=*/false);
          if (static_cast<int>(fs1.group_names.size()) != res.groups)
            throw internal_error("cannot fit spectrum", fmt::format("{}[{}]", in.label, r0 * row + s),
                                 "its line groups differ from the sum spectrum's");
          for (int g = 0; g < res.groups; ++g) {
            res.area[std::size_t(s) * res.groups + g] = static_cast<float>(fs1.area(g));
            res.sigma[std::size_t(s) * res.groups + g] = static_cast<float>(fs1.area_sigma(g));
          }
          res.chi2_reduced[s] = static_cast<float>(fs1.chi2_reduced);
          if (opt.save_model)
            for (int k = 0; k < fitter.n_fit(); ++k) {
              const std::size_t o = std::size_t(s) * fitter.n_fit() + k;
              res.model[o] = static_cast<float>(fs1.model[k]);
              res.background[o] = static_cast<float>(fs1.background[k]);
              res.residual[o] = static_cast<float>(y[model.first_channel() + k] - fs1.model[k]);
            }
          } catch (...) {
#pragma omp critical(opx_cmx_fit_failure)
            if (!failure) failure = std::current_exception();
          }
        }
        if (failure) std::rethrow_exception(failure);
      } else {
        fitter.fit(buf.data(), ns, static_cast<int>(channels), res, 0);
      }
      fit_seconds += clock::monotonic() - tf;
      for (int s = 0; s < ns; ++s) chi2_sum += res.chi2_reduced[s];
      out.append(res, ns, with_rate ? in.live_time.data() + r0 * row : nullptr);
      progress.advance(ns);
    }
  }
  out.copy_axes(in);
  out.write_fit_process(cfg, sum_fit, model, sum, sum_live);
  out.commit();
  const double seconds = clock::monotonic() - t0;

  manifest.add_output(opt.output);
  manifest.set_parameters({{"config", cfg.to_json()},
                           {"engine", nonlinear_each ? "nonlinear" : "linear"},
                           {"weights", opt.weights},
                           {"live_time_source", in.live_time_source},
                           {"chunk_spectra", chunk}});
  json refined = refined_json(sum_fit);
  json summary = {{"input", in.label},
                  {"spectra", in.count},
                  {"channels", channels},
                  {"groups", fitter.group_names()},
                  {"sum_spectrum", {{"chi2_reduced", sum_fit.chi2_reduced}, {"refined", refined}}},
                  {"mean_chi2_reduced", chi2_sum / double(in.count)},
                  {"seconds", seconds},
                  {"fit_spectra_per_s", fit_seconds > 0 ? double(in.count) / fit_seconds : 0.0}};
  if (!sum_fit.messages.empty()) summary["warnings"] = sum_fit.messages;
  manifest.set_summary(summary);
  manifest.write(opt.output);
  print_json_line({{"output", opt.output},
                   {"spectra", in.count},
                   {"groups", fitter.group_names()},
                   {"sum_chi2_reduced", sum_fit.chi2_reduced},
                   {"seconds", seconds}});
  return 0;
}

}  // namespace

int run_cmx_fit(const CmxFitOptions& opt) {
  if (opt.threads > 0) omp_set_num_threads(opt.threads);
  if (opt.inputs.empty()) throw usage_error("no input", "", "give spectrum files or a stack FILE.h5[:/dataset]");
  if (opt.engine != "auto" && opt.engine != "linear" && opt.engine != "nonlinear")
    throw usage_error("invalid --engine", opt.engine, "use auto, linear or nonlinear");
  Manifest manifest = Manifest::begin(log::program());
  std::vector<std::string> inputs = expand_inputs(opt.inputs);
  std::size_t n_h5 = std::count_if(inputs.begin(), inputs.end(), looks_like_hdf5);
  if (n_h5 > 0) {
    if (inputs.size() > 1)
      throw usage_error("too many inputs", inputs[1],
                        "fit one HDF5 stack per run (use make -j or a shell loop for several)");
    return fit_stack(inputs[0], opt, manifest);
  }
  if (opt.engine == "linear")
    log::warn("single spectra are fitted with the nonlinear engine; --engine linear applies to stacks");
  check_output(opt);
  return fit_spectrum_files(inputs, opt, manifest);
}

}  // namespace opx::xrf
