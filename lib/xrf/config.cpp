#include "xrf/config.hpp"

#include <cmath>
#include <filesystem>

#include <fmt/format.h>

#include "core/config.hpp"
#include "core/error.hpp"
#include "io/json_schema.hpp"

namespace opx::xrf {
using nlohmann::json;

double Calibration::channel(double e) const {
  if (quadratic_keV == 0.0) return (e - offset_keV) / gain_keV;
  // q c^2 + g c + (o - e) = 0, the root near the linear solution.
  double a = quadratic_keV, b = gain_keV, c = offset_keV - e;
  double disc = b * b - 4 * a * c;
  if (disc < 0) return (e - offset_keV) / gain_keV;
  double q = -0.5 * (b + std::copysign(std::sqrt(disc), b));
  double r1 = q / a, r2 = c / q;
  double lin = (e - offset_keV) / gain_keV;
  return std::abs(r1 - lin) < std::abs(r2 - lin) ? r1 : r2;
}

const char* background_method_name(BackgroundMethod m) {
  switch (m) {
    case BackgroundMethod::none: return "none";
    case BackgroundMethod::snip: return "snip";
    case BackgroundMethod::polynomial: return "polynomial";
    case BackgroundMethod::spline: return "spline";
  }
  return "?";
}

namespace {

BackgroundMethod parse_background(const std::string& s, const std::string& where) {
  if (s == "none") return BackgroundMethod::none;
  if (s == "snip") return BackgroundMethod::snip;
  if (s == "polynomial") return BackgroundMethod::polynomial;
  if (s == "spline") return BackgroundMethod::spline;
  throw config_error("invalid fit configuration", where + "/background/method",
                     fmt::format("'{}' is not one of none, snip, polynomial, spline", s));
}

std::vector<xray::Layer> parse_layers(const json& arr, const std::string& where) {
  std::vector<xray::Layer> out;
  for (std::size_t i = 0; i < arr.size(); ++i) {
    const json& l = arr[i];
    std::string here = fmt::format("{}/{}", where, i);
    xray::Layer layer;
    layer.material = l.at("material").get<std::string>();
    xray::check_material(layer.material, here + "/material");
    layer.thickness_um = l.at("thickness_um").get<double>();
    if (l.contains("density_g_cm3")) {
      layer.density_g_cm3 = l["density_g_cm3"].get<double>();
    } else {
      try {
        layer.density_g_cm3 = xray::default_density(layer.material);
      } catch (const Error&) {
        throw config_error("invalid fit configuration", here + "/density_g_cm3",
                           fmt::format("no density known for '{}': give density_g_cm3", layer.material));
      }
    }
    out.push_back(layer);
  }
  return out;
}

json layers_to_json(const std::vector<xray::Layer>& layers) {
  json a = json::array();
  for (const auto& l : layers)
    a.push_back({{"material", l.material}, {"density_g_cm3", l.density_g_cm3}, {"thickness_um", l.thickness_um}});
  return a;
}

// "Mn K", "Pb L", "Mn" (K), "Mn K,L"
ElementLines parse_element(const std::string& text, const std::string& where) {
  ElementLines el;
  auto sp = text.find_first_of(" \t");
  std::string sym = text.substr(0, sp);
  try {
    el.element = xray::element_symbol(xray::atomic_number(sym));
  } catch (const Error&) {
    throw config_error("invalid fit configuration", where,
                       fmt::format("unknown element '{}'", sym));
  }
  std::string fams = sp == std::string::npos ? "K" : text.substr(sp + 1);
  for (char c : fams) {
    if (c == ' ' || c == ',' || c == '\t') continue;
    try {
      el.families.push_back(xray::parse_family(std::string(1, c)));
    } catch (const Error&) {
      throw config_error("invalid fit configuration", where,
                         fmt::format("unknown line family '{}' in '{}': use K, L or M", c, text));
    }
  }
  return el;
}

}  // namespace

FitConfig fit_config_from_json(const json& j, const std::string& source) {
  FitConfig c;
  c.source = source;
  c.description = j.value("description", "");
  const std::string where = source + ":";
  for (std::size_t i = 0; i < j.at("elements").size(); ++i)
    c.elements.push_back(parse_element(j["elements"][i].get<std::string>(), fmt::format("{}/elements/{}", where, i)));

  if (j.contains("calibration")) {
    const json& k = j["calibration"];
    c.calibration.offset_keV = k.value("offset_keV", c.calibration.offset_keV);
    c.calibration.gain_keV = k.value("gain_keV", c.calibration.gain_keV);
    c.calibration.quadratic_keV = k.value("quadratic_keV", c.calibration.quadratic_keV);
    if (c.calibration.gain_keV <= 0)
      throw config_error("invalid fit configuration", where + "/calibration/gain_keV", "must be > 0");
  }
  if (j.contains("detector")) {
    const json& d = j["detector"];
    c.detector.material = d.value("material", c.detector.material);
    xray::check_material(c.detector.material, where + "/detector/material");
    c.detector.density_g_cm3 = d.value("density_g_cm3", c.detector.material == "Si" ? 2.33
                                                        : c.detector.material == "CdTe" ? 5.85
                                                        : c.detector.material == "Ge" ? 5.323
                                                                                      : xray::default_density(c.detector.material));
    c.detector.thickness_mm = d.value("thickness_mm", c.detector.thickness_mm);
    if (d.contains("window")) c.detector.window = parse_layers(d["window"], where + "/detector/window");
    c.detector.noise_fwhm_keV = d.value("noise_fwhm_keV", c.detector.noise_fwhm_keV);
    c.detector.fano = d.value("fano", c.detector.fano);
    c.detector.pair_energy_keV = d.value("pair_energy_keV", xray::Detector::default_pair_energy_keV(c.detector.material));
  }
  if (j.contains("attenuators")) c.attenuators = parse_layers(j["attenuators"], where + "/attenuators");
  if (j.contains("excitation")) {
    const json& e = j["excitation"];
    if (e.value("type", "tube") == "monochromatic") {
      c.excitation.kind = xray::Excitation::Kind::monochromatic;
      c.excitation.energy_keV = e.at("energy_keV").get<double>();
    } else {
      c.excitation.kind = xray::Excitation::Kind::tube;
      c.excitation.anode = e.value("anode", c.excitation.anode);
      try {
        c.excitation.anode = xray::element_symbol(xray::atomic_number(c.excitation.anode));
      } catch (const Error&) {
        throw config_error("invalid fit configuration", where + "/excitation/anode",
                           fmt::format("unknown element '{}'", c.excitation.anode));
      }
      c.excitation.voltage_kV = e.value("voltage_kV", c.excitation.voltage_kV);
      if (e.contains("window")) c.excitation.tube_window = parse_layers(e["window"], where + "/excitation/window");
    }
  }
  if (j.contains("scatter")) {
    const json& s = j["scatter"];
    c.scatter.rayleigh = s.value("rayleigh", c.scatter.rayleigh);
    c.scatter.compton = s.value("compton", c.scatter.compton);
    c.scatter.angle_deg = s.value("angle_deg", c.scatter.angle_deg);
    c.scatter.compton_extra_fwhm_keV = s.value("compton_extra_fwhm_keV", c.scatter.compton_extra_fwhm_keV);
    if (s.contains("lines")) {
      double total = 0;
      for (const auto& l : s["lines"]) {
        double e = l.at("energy_keV").get<double>();
        double w = l.value("relative_intensity", 1.0);
        c.scatter.lines.push_back({e, w, l.value("label", fmt::format("{:.4f} keV", e))});
        total += w;
      }
      for (auto& l : c.scatter.lines) l.relative_intensity /= total;
    }
  }
  if (j.contains("peak_shape")) {
    const json& p = j["peak_shape"];
    c.peak_shape.short_tail_area = p.value("short_tail_area", c.peak_shape.short_tail_area);
    c.peak_shape.short_tail_slope = p.value("short_tail_slope", c.peak_shape.short_tail_slope);
    c.peak_shape.long_tail_area = p.value("long_tail_area", c.peak_shape.long_tail_area);
    c.peak_shape.long_tail_slope = p.value("long_tail_slope", c.peak_shape.long_tail_slope);
    c.peak_shape.step_height = p.value("step_height", c.peak_shape.step_height);
  }
  if (j.contains("background")) {
    const json& b = j["background"];
    c.background.method = parse_background(b.value("method", "snip"), where);
    c.background.snip_width_keV = b.value("snip_width_keV", c.background.snip_width_keV);
    c.background.snip_iterations = b.value("snip_iterations", c.background.snip_iterations);
    c.background.smoothing_keV = b.value("smoothing_keV", c.background.smoothing_keV);
    c.background.polynomial_order = b.value("polynomial_order", c.background.polynomial_order);
    c.background.spline_segments = b.value("spline_segments", c.background.spline_segments);
    c.background.snip_linear_offset = b.value("snip_linear_offset", c.background.snip_linear_offset);
  }
  if (j.contains("fit")) {
    const json& f = j["fit"];
    if (f.contains("energy_range_keV")) {
      c.fit.energy_min_keV = f["energy_range_keV"][0].get<double>();
      c.fit.energy_max_keV = f["energy_range_keV"][1].get<double>();
      if (c.fit.energy_max_keV <= c.fit.energy_min_keV)
        throw config_error("invalid fit configuration", where + "/fit/energy_range_keV",
                           "the upper energy must be above the lower");
    }
    c.fit.refine_calibration = f.value("refine_calibration", c.fit.refine_calibration);
    c.fit.refine_width = f.value("refine_width", c.fit.refine_width);
    c.fit.refine_compton = f.value("refine_compton", c.fit.refine_compton);
    c.fit.refine_tails = f.value("refine_tails", c.fit.refine_tails);
    c.fit.max_iterations = f.value("max_iterations", c.fit.max_iterations);
    c.fit.poisson_weights = f.value("weighting", std::string("poisson")) == "poisson";
    c.fit.escape = f.value("escape", c.fit.escape);
    c.fit.pileup = f.value("pileup", c.fit.pileup);
    c.fit.degeneracy_cosine = f.value("degeneracy_cosine", c.fit.degeneracy_cosine);
    c.fit.min_line_fraction = f.value("min_line_fraction", c.fit.min_line_fraction);
  }
  return c;
}

json FitConfig::to_json() const {
  json j;
  j["schema"] = "opx.fit-config";
  j["schema_version"] = 1;
  if (!description.empty()) j["description"] = description;
  json els = json::array();
  for (const auto& e : elements) {
    std::string fams;
    for (auto f : e.families) fams += xray::family_name(f);
    els.push_back(e.element + " " + fams);
  }
  j["elements"] = els;
  j["calibration"] = {{"offset_keV", calibration.offset_keV}, {"gain_keV", calibration.gain_keV},
                      {"quadratic_keV", calibration.quadratic_keV}};
  j["detector"] = {{"material", detector.material},         {"density_g_cm3", detector.density_g_cm3},
                   {"thickness_mm", detector.thickness_mm}, {"window", layers_to_json(detector.window)},
                   {"noise_fwhm_keV", detector.noise_fwhm_keV}, {"fano", detector.fano},
                   {"pair_energy_keV", detector.pair_energy_keV}};
  j["attenuators"] = layers_to_json(attenuators);
  if (excitation.kind == xray::Excitation::Kind::monochromatic)
    j["excitation"] = {{"type", "monochromatic"}, {"energy_keV", excitation.energy_keV}};
  else
    j["excitation"] = {{"type", "tube"}, {"anode", excitation.anode}, {"voltage_kV", excitation.voltage_kV},
                       {"window", layers_to_json(excitation.tube_window)}};
  j["scatter"] = {{"rayleigh", scatter.rayleigh}, {"compton", scatter.compton},
                  {"angle_deg", scatter.angle_deg}, {"compton_extra_fwhm_keV", scatter.compton_extra_fwhm_keV}};
  if (!scatter.lines.empty()) {
    json lines = json::array();
    for (const auto& l : scatter.lines)
      lines.push_back({{"energy_keV", l.energy_keV}, {"relative_intensity", l.relative_intensity}, {"label", l.label}});
    j["scatter"]["lines"] = lines;
  }
  j["peak_shape"] = {{"short_tail_area", peak_shape.short_tail_area}, {"short_tail_slope", peak_shape.short_tail_slope},
                     {"long_tail_area", peak_shape.long_tail_area},   {"long_tail_slope", peak_shape.long_tail_slope},
                     {"step_height", peak_shape.step_height}};
  j["background"] = {{"method", background_method_name(background.method)},
                     {"snip_width_keV", background.snip_width_keV},
                     {"snip_iterations", background.snip_iterations},
                     {"smoothing_keV", background.smoothing_keV},
                     {"polynomial_order", background.polynomial_order},
                     {"spline_segments", background.spline_segments},
                     {"snip_linear_offset", background.snip_linear_offset}};
  j["fit"] = {{"energy_range_keV", {fit.energy_min_keV, fit.energy_max_keV}},
              {"refine_calibration", fit.refine_calibration},
              {"refine_width", fit.refine_width},
              {"refine_compton", fit.refine_compton},
              {"refine_tails", fit.refine_tails},
              {"max_iterations", fit.max_iterations},
              {"weighting", fit.poisson_weights ? "poisson" : "none"},
              {"escape", fit.escape},
              {"pileup", fit.pileup},
              {"degeneracy_cosine", fit.degeneracy_cosine},
              {"min_line_fraction", fit.min_line_fraction}};
  return j;
}

FitConfig load_fit_config(const std::string& path) {
  std::string label = path == "-" ? "<stdin>" : path;
  nlohmann::json j = read_json_file(path, ExitCode::config);
  validate_json(j, "fit-config", label, ExitCode::config);
  return fit_config_from_json(j, label);
}

std::string find_config(const std::string& name) {
  namespace fs = std::filesystem;
  if (name == "-" || fs::exists(name)) return name;
  for (const char* base : {config::data_dir_build, config::data_dir_install}) {
    for (const std::string& cand : {std::string(base) + "/config/" + name,
                                    std::string(base) + "/config/" + name + ".json"}) {
      if (fs::exists(cand)) return cand;
    }
  }
  throw input_missing("cannot read fit configuration", name,
                      "no such file (ready-made ones are in config/: nmc-coin-cell-cu-tube, m4-tornado-rh)");
}

}  // namespace opx::xrf
