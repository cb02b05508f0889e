#define BOOST_TEST_MODULE xrf_identify
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include <xraylib/xraylib.h>

#include "core/error.hpp"
#include "io/spectrum_file.hpp"
#include "xrf/cmx_fit.hpp"
#include "xrf/config.hpp"
#include "xrf/identify.hpp"

using namespace opx;
using namespace opx::xrf;
using nlohmann::json;

namespace {

// Synthetic spectra built here, independently of opx's model: Gaussians at
// xraylib's line energies with xraylib's radiative rates (K) or production
// cross sections (L), seen through a 12.5 um Be window by 0.45 mm of Si,
// widths from noise and Fano, a smooth continuum, and Poisson noise with a
// fixed seed.
struct Synthetic {
  double offset = -0.02, gain = 0.01, noise = 0.125, fano = 0.114;
  int channels = 2048;
  std::vector<double> mu = std::vector<double>(2048, 0.0);

  double energy(int ch) const { return offset + gain * ch; }
  double sigma(double e) const { return std::sqrt(std::pow(noise / 2.3548200450309493, 2) + 0.00385 * fano * e); }

  static double efficiency(double e) {
    xrl_error* err = nullptr;
    double be = CS_Total(4, e, &err), si = CS_Photo(14, e, &err);
    return std::exp(-be * 1.848 * 12.5e-4) * (1 - std::exp(-si * 2.33 * 0.045));
  }
  void gaussian(double e, double area, double extra_sigma = 0) {
    double s = std::hypot(sigma(e), extra_sigma);
    for (int c = 0; c < channels; ++c) {
      double z = (energy(c) - e) / s;
      if (std::abs(z) < 8) mu[c] += area * gain * std::exp(-0.5 * z * z) / (s * std::sqrt(2 * M_PI));
    }
  }
  // Lines of codes [first, last] (xraylib's negative line codes) with weights
  // from `weight(code)`, `area` counts in all.
  template <typename W>
  std::vector<std::pair<double, double>> lines(int Z, int first, int last, W weight) {
    std::vector<std::pair<double, double>> out;
    double total = 0;
    for (int code = first; code >= last; --code) {
      xrl_error* e = nullptr;
      double en = LineEnergy(Z, code, &e);
      if (e) {
        xrl_error_free(e);
        continue;
      }
      double w = weight(code);
      if (en <= 0 || w <= 0) continue;
      out.push_back({en, w});
      total += w;
    }
    for (auto& l : out) l.second /= total;
    return out;
  }
  std::vector<std::pair<double, double>> k_lines(int Z) {
    return lines(Z, KL1_LINE, KP5_LINE, [&](int code) {
      xrl_error* e = nullptr;
      double r = RadRate(Z, code, &e);
      if (e) xrl_error_free(e);
      return e ? 0.0 : r;
    });
  }
  void k_family(int Z, double area) {
    for (auto [e, w] : k_lines(Z)) gaussian(e, area * w * efficiency(e));
  }
  void l_family(int Z, double area, double excitation_keV) {
    auto ls = lines(Z, L1L2_LINE, L3Q1_LINE, [&](int code) {
      xrl_error* e = nullptr;
      double r = CS_FluorLine_Kissel_Cascade(Z, code, excitation_keV, &e);
      if (e) xrl_error_free(e);
      return e ? 0.0 : r;
    });
    for (auto [e, w] : ls) gaussian(e, area * w * efficiency(e));
  }
  // A bremsstrahlung-like hump on a flat floor, counts per channel.
  void continuum(double height, double floor) {
    for (int c = 0; c < channels; ++c) {
      double e = energy(c);
      mu[c] += floor + height * std::exp(-std::pow((e - 9.0) / 6.0, 2));
    }
  }
  io::Spectrum draw(unsigned seed, bool calibrated) const {
    std::mt19937 rng(seed);
    io::Spectrum s;
    s.source = "synthetic";
    s.live_time_s = 100;
    for (double m : mu) s.counts.push_back(std::poisson_distribution<long>(m)(rng));
    if (calibrated) {
      s.offset_keV = offset;
      s.gain_keV_per_channel = gain;
    }
    return s;
  }
};

double line_keV(int Z, int code) {
  xrl_error* e = nullptr;
  double v = LineEnergy(Z, code, &e);
  if (e) xrl_error_free(e);
  return v;
}

const IdentifiedPeak* peak_near(const Identification& id, double e, double within = 0.03) {
  const IdentifiedPeak* best = nullptr;
  for (const auto& p : id.peaks)
    if (std::abs(p.energy_keV - e) <= within && (!best || std::abs(p.energy_keV - e) < std::abs(best->energy_keV - e)))
      best = &p;
  return best;
}

const IdentifiedCandidate* candidate(const Identification& id, const std::string& name) {
  for (const auto& c : id.candidates)
    if (c.name == name) return &c;
  return nullptr;
}

bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }

void log_identification(const Identification& id) { BOOST_TEST_MESSAGE(identification_table(id)); }

FitConfig config_from(const json& j) { return fit_config_from_json(j, "test-config"); }

}  // namespace

BOOST_AUTO_TEST_CASE(transition_metals_without_configuration) {
  Synthetic s;
  s.continuum(150, 20);
  const std::vector<std::pair<int, double>> truth = {{22, 5e4}, {25, 1e5}, {26, 2e5}, {28, 8e4}, {29, 1.5e5}};
  for (auto [Z, area] : truth) s.k_family(Z, area);
  Identification id = identify_peaks(s.draw(1, true), nullptr, 5.0);
  log_identification(id);

  BOOST_TEST(id.calibration_source == "file");
  BOOST_TEST(id.elements == (std::vector<std::string>{"Ti K", "Mn K", "Fe K", "Ni K", "Cu K"}),
             boost::test_tools::per_element());
  // The detector width is measured from the peaks, not assumed.
  BOOST_TEST(id.width_source.find("estimated") != std::string::npos);
  BOOST_TEST(std::abs(id.noise_fwhm_keV - s.noise) < 0.15 * s.noise);
  for (auto [Z, area] : truth) {
    const double ka = line_keV(Z, KL3_LINE);
    const IdentifiedPeak* p = peak_near(id, ka);
    BOOST_TEST_INFO("Z " << Z << " K-alpha " << ka);
    BOOST_REQUIRE(p);
    const std::string sym = Z == 22 ? "Ti" : Z == 25 ? "Mn" : Z == 26 ? "Fe" : Z == 28 ? "Ni" : "Cu";
    BOOST_TEST(p->assignment.rfind(sym + " Ka", 0) == 0u);
    BOOST_TEST(p->kind == "fluorescence");
    // Net counts of K-alpha (KL2 + KL3 share of the family) within 10 %.
    double share = 0;
    for (auto [e, w] : s.k_lines(Z))
      if (std::abs(e - ka) < 0.05) share += w * Synthetic::efficiency(e);
    BOOST_TEST(std::abs(p->net_counts / (area * share) - 1) < 0.10);
    // Its K-beta is evidence: present.
    const IdentifiedCandidate* c = candidate(id, sym + " K");
    BOOST_REQUIRE(c);
    BOOST_TEST(c->status == "proposed");
    bool kb_present = std::any_of(c->partners.begin(), c->partners.end(),
                                  [](const PartnerLine& l) { return l.line == "Kb" && l.status == "present"; });
    BOOST_TEST(kb_present);
  }
  // Nothing unexplained among the strong peaks.
  for (const auto& p : id.peaks)
    if (p.significance > 20) BOOST_TEST(p.kind != "unexplained", "peak at " << p.energy_keV << " keV unexplained");
}

// Pb L-alpha (10.551 keV) and As K-alpha (10.544 keV) are one peak; the
// partners decide: Pb L-beta (12.61 keV) and L-gamma (14.76 keV) against
// As K-beta (11.73 keV).
BOOST_AUTO_TEST_CASE(lead_l_against_arsenic_k) {
  const json cfg = {
      {"elements", {"Fe K"}},
      {"calibration", {{"offset_keV", -0.02}, {"gain_keV", 0.01}}},
      {"detector", {{"material", "Si"}, {"thickness_mm", 0.45}, {"noise_fwhm_keV", 0.125}, {"fano", 0.114}}},
      {"excitation", {{"type", "monochromatic"}, {"energy_keV", 17.48}}},
      {"scatter", {{"rayleigh", false}, {"compton", false}}}};
  FitConfig config = config_from(cfg);

  Synthetic pb;
  pb.continuum(100, 10);
  pb.l_family(82, 3e5, 17.48);
  Identification id = identify_peaks(pb.draw(2, false), &config, 5.0);
  log_identification(id);
  BOOST_TEST(id.calibration_source == "config");
  const IdentifiedPeak* la = peak_near(id, line_keV(82, L3M5_LINE));
  BOOST_REQUIRE(la);
  BOOST_TEST(has(la->candidates, "Pb La"));
  BOOST_TEST(has(la->candidates, "As Ka"));  // both reported
  BOOST_TEST(la->assignment.rfind("Pb La", 0) == 0u);
  const IdentifiedCandidate* pbl = candidate(id, "Pb L");
  const IdentifiedCandidate* ask = candidate(id, "As K");
  BOOST_REQUIRE(pbl);
  BOOST_REQUIRE(ask);
  BOOST_TEST(pbl->status == "proposed");
  BOOST_TEST(ask->status == "rejected");
  bool kb_missing = std::any_of(ask->partners.begin(), ask->partners.end(),
                                [](const PartnerLine& l) { return l.line == "Kb" && l.status == "missing"; });
  BOOST_TEST(kb_missing);
  bool lb_present = std::any_of(pbl->partners.begin(), pbl->partners.end(),
                                [](const PartnerLine& l) { return l.line.rfind("Lb", 0) == 0 && l.status == "present"; });
  BOOST_TEST(lb_present);
  BOOST_TEST(id.elements == (std::vector<std::string>{"Pb L"}), boost::test_tools::per_element());

  // And the other way round: an arsenic spectrum is As K, not Pb L.
  Synthetic as;
  as.continuum(100, 10);
  as.k_family(33, 2e5);
  Identification id_as = identify_peaks(as.draw(3, false), &config, 5.0);
  log_identification(id_as);
  BOOST_TEST(id_as.elements == (std::vector<std::string>{"As K"}), boost::test_tools::per_element());
  const IdentifiedCandidate* pb_in_as = candidate(id_as, "Pb L");
  BOOST_REQUIRE(pb_in_as);
  BOOST_TEST(pb_in_as->status == "rejected");
}

// Escape and pile-up peaks of strong lines and the tube's scatter are
// recognized as such, not taken for elements.
BOOST_AUTO_TEST_CASE(escape_sum_and_scatter_peaks_are_not_elements) {
  const json cfg = {
      {"elements", {"Fe K"}},
      {"calibration", {{"offset_keV", -0.02}, {"gain_keV", 0.01}}},
      {"detector", {{"material", "Si"}, {"thickness_mm", 0.45}, {"noise_fwhm_keV", 0.125}, {"fano", 0.114}}},
      {"excitation", {{"type", "tube"}, {"anode", "Mo"}, {"voltage_kV", 40}}},
      {"scatter", {{"rayleigh", true}, {"compton", true}, {"angle_deg", 90}, {"compton_extra_fwhm_keV", 0.15}}}};
  FitConfig config = config_from(cfg);

  Synthetic s;
  s.continuum(60, 10);
  const double si_ka = line_keV(14, KL3_LINE);
  const double escape_fraction = 0.002;  // Si escape of 6-9 keV photons: 0.1-0.3 % (Reed & Ware 1972)
  for (auto [Z, area] : std::vector<std::pair<int, double>>{{29, 1e6}, {22, 1e5}}) {
    s.k_family(Z, area);
    for (auto [e, w] : s.k_lines(Z)) s.gaussian(e - si_ka, area * w * Synthetic::efficiency(e) * escape_fraction);
  }
  const double cu_ka = line_keV(29, KL3_LINE);
  s.gaussian(2 * cu_ka, 2500);  // pile-up of two Cu K-alpha photons: 0.3 % of them
  const double mo_ka = line_keV(42, KL3_LINE);
  const double compton_sigma = 0.15 / 2.3548200450309493;
  for (auto [e, w] : s.k_lines(42)) {  // Mo tube's K lines
    double compton = e / (1 + e / 510.999);  // 90 degrees
    s.gaussian(e, 4e4 * w * Synthetic::efficiency(e));
    s.gaussian(compton, 6e4 * w * Synthetic::efficiency(compton), compton_sigma);
  }
  Identification id = identify_peaks(s.draw(4, false), &config, 5.0);
  log_identification(id);

  BOOST_TEST(id.elements == (std::vector<std::string>{"Ti K", "Cu K"}), boost::test_tools::per_element());
  // Mo K fluorescence and the Rayleigh scatter of the Mo tube's lines are one pattern.
  const IdentifiedCandidate* mo = candidate(id, "Mo K");
  BOOST_REQUIRE(mo);
  BOOST_TEST(mo->status == "possible");
  BOOST_TEST(mo->evidence.find("Rayleigh Mo K") != std::string::npos);
  const IdentifiedPeak* esc = peak_near(id, cu_ka - si_ka);
  BOOST_REQUIRE(esc);
  BOOST_TEST(esc->kind == "escape");
  BOOST_TEST(esc->assignment.rfind("Cu Ka escape", 0) == 0u);
  const IdentifiedPeak* sum = peak_near(id, 2 * cu_ka, 0.05);
  BOOST_REQUIRE(sum);
  BOOST_TEST(sum->kind == "sum");
  BOOST_TEST(sum->assignment.find("Cu Ka") != std::string::npos);
  const IdentifiedPeak* rayleigh = peak_near(id, mo_ka, 0.05);
  BOOST_REQUIRE(rayleigh);
  BOOST_TEST(rayleigh->kind == "rayleigh");
  const IdentifiedPeak* compton = peak_near(id, mo_ka / (1 + mo_ka / 510.999), 0.08);
  BOOST_REQUIRE(compton);
  BOOST_TEST(compton->kind == "compton");
}

BOOST_AUTO_TEST_CASE(command_line_entry_point) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("opx-identify-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  Synthetic s;
  s.continuum(100, 10);
  s.k_family(26, 1e5);
  s.k_family(30, 5e4);
  io::write_spectrum(s.draw(5, true), dir / "fe-zn.csv");
  io::write_spectrum(s.draw(5, false), dir / "uncalibrated.csv");

  auto capture = [](const IdentifyOptions& o) {
    std::stringstream out;
    std::streambuf* old = std::cout.rdbuf(out.rdbuf());
    try {
      run_identify(o);
    } catch (...) {
      std::cout.rdbuf(old);
      throw;
    }
    std::cout.rdbuf(old);
    return out.str();
  };
  IdentifyOptions o;
  o.input = (dir / "fe-zn.csv").string();
  o.format = "json";
  json j = json::parse(capture(o));
  BOOST_TEST(j["elements"] == json({"Fe K", "Zn K"}));
  BOOST_TEST(j["calibration"]["from"] == "file");
  BOOST_TEST(j["peaks"].size() >= 4u);

  o.format = "table";
  std::string table = capture(o);
  BOOST_TEST(table.find("\"elements\": [\"Fe K\",\"Zn K\"]\n") != std::string::npos);
  BOOST_TEST(table.substr(table.rfind('\n', table.size() - 2) + 1).rfind("\"elements\":", 0) == 0u);

  // Without a calibration anywhere: a usage error that says what to give.
  o.input = (dir / "uncalibrated.csv").string();
  try {
    capture(o);
    BOOST_ERROR("no error");
  } catch (const Error& e) {
    BOOST_TEST((e.code() == ExitCode::usage));
    BOOST_TEST(e.why().find("--config") != std::string::npos);
  }
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(featureless_spectrum_and_bad_threshold) {
  Synthetic s;
  s.continuum(200, 50);
  Identification id = identify_peaks(s.draw(6, true), nullptr, 5.0);
  log_identification(id);
  BOOST_TEST(id.elements.empty());
  BOOST_TEST(id.peaks.size() <= 1u);  // at 5 sigma over ~2000 channels, a noise peak is rare
  BOOST_TEST(id.width_source.find("default") == 0u);
  try {
    identify_peaks(s.draw(6, true), nullptr, 0.0);
    BOOST_ERROR("no error");
  } catch (const Error& e) {
    BOOST_TEST((e.code() == ExitCode::usage));
  }
}
