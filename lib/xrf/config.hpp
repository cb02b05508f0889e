#pragma once
// The fit configuration of cmx-fit: what is in the spectrum (elements and
// line families, scatter of the source lines), how the instrument responds
// (energy calibration, detector, peak shape) and how the fit is done
// (background, energy range, engines). Read from JSON validated against
// schemas/fit-config.schema.json; written back into every output's manifest.
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "xray/detector.hpp"
#include "xray/excitation.hpp"
#include "xray/xraylib.hpp"

namespace opx::xrf {

struct ElementLines {
  std::string element;                 // "Mn"
  std::vector<xray::Family> families;  // K, L, M
};

struct Calibration {
  double offset_keV = 0.0;
  double gain_keV = 0.01;        // keV per channel
  double quadratic_keV = 0.0;    // keV per channel^2
  double energy(double channel) const { return offset_keV + channel * (gain_keV + channel * quadratic_keV); }
  double channel(double energy_keV) const;  // inverse (quadratic solved exactly)
};

// Hypermet-like detector response (Van Espen's formulation): a Gaussian
// photopeak plus low-energy tails and a step. Tails are exponentials of
// slope beta = slope_ratio * sigma convolved with the Gaussian; their
// areas are area_ratio times the Gaussian's. The step's height is
// height_ratio times the Gaussian's peak height.
struct PeakShape {
  double short_tail_area = 0.0, short_tail_slope = 1.0;
  double long_tail_area = 0.0, long_tail_slope = 10.0;
  double step_height = 0.0;
  bool has_tails() const { return short_tail_area > 0 || long_tail_area > 0; }
};

enum class BackgroundMethod { none, snip, polynomial, spline };

struct Background {
  BackgroundMethod method = BackgroundMethod::snip;
  double snip_width_keV = 0.25;   // SNIP clipping window (about 2-3 FWHM of the peaks)
  int snip_iterations = 0;        // 0: one pass per window width (full SNIP)
  double smoothing_keV = 0.0;     // optional smoothing before clipping
  int polynomial_order = 1;       // polynomial: order; also the offset terms added after SNIP
  int spline_segments = 8;        // spline: number of cubic B-spline segments
  bool snip_linear_offset = false;  // add constant + linear columns after SNIP stripping
};

struct Scatter {
  bool rayleigh = true;
  bool compton = true;
  // Scattered source lines given explicitly; empty: the excitation's own
  // (a tube's characteristic lines, or the monochromatic energy).
  std::vector<xray::SourceLine> lines;
  double angle_deg = 90.0;            // scattering angle sample-to-detector
  double compton_extra_fwhm_keV = 0.15;  // Doppler and angular broadening of the Compton peak
};

struct FitSettings {
  double energy_min_keV = 1.0;
  double energy_max_keV = 20.0;
  bool refine_calibration = true;
  bool refine_width = true;          // noise and Fano
  bool refine_compton = true;
  bool refine_tails = false;
  int max_iterations = 40;
  bool poisson_weights = true;
  bool escape = true;
  bool pileup = false;
  double pileup_time_s = 0.0;        // for information; amplitude is fitted
  double degeneracy_cosine = 0.998;  // columns closer than this are merged
  double min_line_fraction = 0.002;  // lines weaker than this share of a group are dropped
};

struct FitConfig {
  std::string description;
  std::vector<ElementLines> elements;
  Calibration calibration;
  xray::Detector detector;
  std::vector<xray::Layer> attenuators;   // between sample and detector (air, foils)
  xray::Excitation excitation;
  Scatter scatter;
  PeakShape peak_shape;
  Background background;
  FitSettings fit;
  std::string source;                     // file the config came from, for messages

  nlohmann::json to_json() const;
};

// Parses a configuration that already passed schema validation; semantic
// errors (unknown element, missing density) name `source` and the field.
FitConfig fit_config_from_json(const nlohmann::json& j, const std::string& source);
// Reads, validates against the schema and parses a config file ("-" = stdin).
FitConfig load_fit_config(const std::string& path);
// Looks a config name up as a path, then in the installed config/ folders.
std::string find_config(const std::string& name);

const char* background_method_name(BackgroundMethod m);

}  // namespace opx::xrf
