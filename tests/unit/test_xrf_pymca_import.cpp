#define BOOST_TEST_MODULE xrf_pymca_import
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>

#include <xraylib/xraylib.h>

#include "core/error.hpp"
#include "xrf/cmx_fit.hpp"
#include "xrf/config.hpp"
#include "xrf/peak_shape.hpp"
#include "xrf/pymca_import.hpp"

using namespace opx;
using namespace opx::xrf;
using nlohmann::json;

namespace {

const std::string kDir = std::string(OPX_TEST_DATA_DIR) + "/pymca/";

PymcaImport import_text(const std::string& text) { return import_pymca_config(parse_pymca_config(text, "test.cfg")); }

bool mentions(const std::vector<std::string>& messages, const std::string& what) {
  for (const auto& m : messages)
    if (m.find(what) != std::string::npos) return true;
  return false;
}

bool close(double a, double b, double rel = 1e-9) { return std::abs(a - b) <= rel * std::max(std::abs(a), std::abs(b)); }

// xraylib directly, independent of opx's wrapper.
double line_keV(int Z, int line) {
  xrl_error* e = nullptr;
  double v = LineEnergy(Z, line, &e);
  if (e) xrl_error_free(e);
  return v;
}
double mass_att(const std::string& material, double keV) {
  xrl_error* e = nullptr;
  double v = CS_Total_CP(material.c_str(), keV, &e);
  if (e) xrl_error_free(e);
  return v;
}

// PyMca's detector width: FWHM^2 = noise^2 + 0.00385 E fano 2.3548^2
// (ClassMcaTheory.mcatheory), sigma = FWHM / (2 sqrt(2 ln 2)) (SpecfitFuns.c).
double pymca_sigma(double noise, double fano, double e) {
  return std::sqrt(noise * noise + 0.00385 * e * fano * 2.3548 * 2.3548) / (2 * std::sqrt(2 * std::log(2.0)));
}

// PyMca's hypermet tail and step (SpecfitFuns.c ahypermet) for a Gaussian of
// area A at x0: b, the "slope ratio", is a decay length in the units of x (keV).
double pymca_tail(double x, double x0, double A, double sigma, double r, double b) {
  double z0 = x - x0, z1 = sigma * std::sqrt(2.0);
  return (A * r * 0.5 * std::erfc(z0 / z1 + 0.5 * z1 / b) / b) * std::exp(0.5 * (sigma / b) * (sigma / b) + z0 / b);
}
double pymca_step(double x, double x0, double A, double sigma, double h) {
  return h * (A / (sigma * std::sqrt(2 * M_PI))) * 0.5 * std::erfc((x - x0) / (sigma * std::sqrt(2.0)));
}

template <typename F>
void check_error(F&& f, ExitCode code, const std::string& where_has, const std::string& why_has) {
  try {
    f();
    BOOST_ERROR("no error thrown");
  } catch (const Error& e) {
    BOOST_TEST_INFO(e.what());
    BOOST_TEST((e.code() == code));
    BOOST_TEST(e.where().find(where_has) != std::string::npos);
    BOOST_TEST(e.why().find(why_has) != std::string::npos);
  }
}

}  // namespace

BOOST_AUTO_TEST_CASE(configdict_syntax) {
  const std::string text =
      "# comment\n"
      "[fit]\n"
      "energy = 17.48, None, 10\n"
      "single: 5\n"
      "; another comment\n"
      "one = Si1,\n"
      "arr = [ 1.5 2 3e-2 ]\n"
      "pct = 50%%\n"
      "multi = 1, 2\n"
      "\t3, 4\n"
      "\n"
      "[materials.A_|_B]\n"
      "CompoundList = C1, N1\n";
  PymcaConfig c = parse_pymca_config(text, "x.cfg");
  BOOST_TEST(c.sections.size() == 2u);
  const PymcaSection* fit = c.section("fit");
  BOOST_REQUIRE(fit);
  const PymcaValue* e = fit->find("energy");
  BOOST_REQUIRE(e);
  BOOST_TEST(e->is_list);
  BOOST_TEST(e->items.size() == 3u);
  BOOST_TEST(e->items[1] == "None");
  BOOST_TEST(e->line == 3);
  BOOST_TEST(fit->find("single")->items.front() == "5");
  BOOST_TEST(!fit->find("single")->is_list);
  BOOST_TEST(fit->find("one")->is_list);
  BOOST_TEST(fit->find("one")->items.size() == 1u);
  BOOST_TEST(fit->find("arr")->items.size() == 3u);
  BOOST_TEST(fit->find("arr")->items[2] == "3e-2");
  BOOST_TEST(fit->find("pct")->text == "50%");
  BOOST_TEST(fit->find("multi")->items.size() == 4u);
  BOOST_TEST(c.section("materials.A_|_B") != nullptr);
}

BOOST_AUTO_TEST_CASE(malformed_files_name_the_line) {
  check_error([] { parse_pymca_config("[fit]\nxmin = 1\nthis is not an entry\n", "bad.cfg"); },
              ExitCode::data_error, "bad.cfg:3", "neither");
  check_error([] { parse_pymca_config("xmin = 1\n", "bad.cfg"); }, ExitCode::data_error, "bad.cfg:1",
              "before the first [section]");
  check_error([] { parse_pymca_config("[fit\nxmin = 1\n", "bad.cfg"); }, ExitCode::data_error, "bad.cfg:1",
              "section header");
  const std::string base = "[detector]\nzero = 0\ngain = 0.01\nnoise = 0.1\nfano = 0.114\n";
  check_error([&] { import_text(base + "[peaks]\nXx = K\n"); }, ExitCode::data_error, "test.cfg:7",
              "not a chemical element");
  check_error([&] { import_text(base + "[peaks]\nFe = Q\n"); }, ExitCode::data_error, "test.cfg:7",
              "not a line family");
  check_error([&] { import_text("[detector]\nzero = 0\ngain = abc\n[peaks]\nFe = K\n"); }, ExitCode::data_error,
              "test.cfg:3", "'abc' is not a number");
  check_error([&] { import_text(base); }, ExitCode::data_error, "test.cfg", "[peaks]");
  check_error([&] { import_text(base + "[peaks]\nFe = K\n[attenuators]\nwindow = 1, Unobtainium, 1, 0.1\n"); },
              ExitCode::data_error, "test.cfg:9", "neither a chemical formula");
  check_error([] { import_pymca_file(kDir + "does-not-exist.cfg"); }, ExitCode::no_input, "does-not-exist.cfg",
              "no such file");
}

// PyMca's own example configuration, shipped in /usr/share/pymca.
BOOST_AUTO_TEST_CASE(pymca_steel_example) {
  PymcaImport r = import_pymca_file(kDir + "steel.cfg");
  const json& j = r.config;
  BOOST_TEST_MESSAGE(j.dump(2));
  for (const auto& a : r.approximations) BOOST_TEST_MESSAGE("approximated: " << a);
  for (const auto& u : r.unmapped) BOOST_TEST_MESSAGE("not mapped: " << u);

  std::vector<std::string> elements = j["elements"];
  BOOST_TEST(elements == (std::vector<std::string>{"V K", "Cr K", "Mn K", "Fe K", "Ni K", "Cu K", "As K", "W L",
                                                   "Pb LM"}),
             boost::test_tools::per_element());
  BOOST_TEST(mentions(r.approximations, "[peaks] Fe: PyMca fits Ka, Kb"));
  BOOST_TEST(mentions(r.approximations, "[peaks] W: PyMca fits L1, L2, L3"));

  BOOST_TEST(j["calibration"]["offset_keV"].get<double>() == -0.00612446976449);
  BOOST_TEST(j["calibration"]["gain_keV"].get<double>() == 0.0119281593146);
  BOOST_TEST(j["detector"]["noise_fwhm_keV"].get<double>() == 0.127439);
  BOOST_TEST(j["detector"]["fano"].get<double>() == 0.101156);
  BOOST_TEST(j["detector"]["pair_energy_keV"].get<double>() == 0.00385);
  BOOST_TEST(j["detector"]["material"] == "Si");
  BOOST_TEST(j["detector"]["density_g_cm3"].get<double>() == 2.33);
  BOOST_TEST(j["detector"]["thickness_mm"].get<double>() == 0.35);  // 0.035 cm
  BOOST_REQUIRE(j["detector"]["window"].size() == 1u);
  BOOST_TEST(j["detector"]["window"][0]["material"] == "Be");
  BOOST_TEST(j["detector"]["window"][0]["thickness_um"].get<double>() == 20.0);  // 0.002 cm
  BOOST_REQUIRE(j["attenuators"].size() == 1u);                                // atmosphere: 5 cm of Air
  BOOST_TEST(j["attenuators"][0]["thickness_um"].get<double>() == 5e4);
  BOOST_TEST(j["attenuators"][0]["density_g_cm3"].get<double>() == 0.0012048);

  // Air from [materials.Air] mass fractions: the same attenuation as the
  // fraction-weighted sum over its compounds.
  std::string air = j["attenuators"][0]["material"];
  const double w[] = {0.000124, 0.75527, 0.23178, 0.012827, 3.2e-06};
  const char* parts[] = {"C", "N", "O", "Ar", "Kr"};
  double sum_w = 0;
  for (double x : w) sum_w += x;
  for (double keV : {2.0, 3.5, 8.0, 20.0}) {
    double mix = 0;
    for (int i = 0; i < 5; ++i) mix += w[i] / sum_w * mass_att(parts[i], keV);
    BOOST_TEST_INFO(air << " at " << keV << " keV");
    BOOST_TEST(close(mass_att(air, keV), mix, 1e-3));
  }

  BOOST_TEST(j["excitation"]["type"] == "monochromatic");
  BOOST_TEST(j["excitation"]["energy_keV"].get<double>() == 16.0);
  BOOST_TEST(j["scatter"]["rayleigh"] == true);
  BOOST_TEST(j["scatter"]["compton"] == true);
  BOOST_TEST(j["scatter"]["angle_deg"].get<double>() == 90.0);

  // Strip algorithm 0 with snipwidth 30 -> SNIP of 30 channels, approximated.
  BOOST_TEST(j["background"]["method"] == "snip");
  BOOST_TEST(close(j["background"]["snip_width_keV"].get<double>(), 30 * 0.0119281593146, 1e-9));
  BOOST_TEST(j["background"]["smoothing_keV"].get<double>() == 0.0);  // stripfilterwidth 1
  BOOST_TEST(mentions(r.approximations, "iterative strip background"));

  // hypermetflag 1: Gaussian only.
  BOOST_TEST(j["peak_shape"]["short_tail_area"].get<double>() == 0.0);
  BOOST_TEST(j["peak_shape"]["long_tail_area"].get<double>() == 0.0);
  BOOST_TEST(j["peak_shape"]["step_height"].get<double>() == 0.0);

  BOOST_TEST(close(j["fit"]["energy_range_keV"][0].get<double>(), -0.00612446976449 + 200 * 0.0119281593146));
  BOOST_TEST(close(j["fit"]["energy_range_keV"][1].get<double>(), -0.00612446976449 + 1432 * 0.0119281593146));
  BOOST_TEST(j["fit"]["escape"] == true);
  BOOST_TEST(j["fit"]["pileup"] == true);
  BOOST_TEST(j["fit"]["max_iterations"] == 10);

  // Not mappable, and said so.
  BOOST_TEST(mentions(r.unmapped, "Matrix = SRM_1155"));
  BOOST_TEST(mentions(r.unmapped, "BeamFilter0"));
  BOOST_TEST(mentions(r.unmapped, "[concentrations]"));
  BOOST_TEST(mentions(r.unmapped, "[xrfmc]"));
  BOOST_TEST(mentions(r.unmapped, "deltachi"));
  BOOST_TEST(mentions(r.unmapped, "sum, deltasum, fixedsum"));
}

// Written by PyMca's ConfigDict from McaTheory's defaults (make_fixtures.py):
// full hypermet, SNIP with a linear continuum, a monochromatic beam.
BOOST_AUTO_TEST_CASE(pymca_hypermet_monochromatic) {
  PymcaImport r = import_pymca_file(kDir + "mono-hypermet.cfg");
  const json& j = r.config;
  for (const auto& a : r.approximations) BOOST_TEST_MESSAGE("approximated: " << a);
  for (const auto& u : r.unmapped) BOOST_TEST_MESSAGE("not mapped: " << u);
  FitConfig c = fit_config_from_json(j, "converted");

  const double noise = 0.11, fano = 0.12;
  // The width of every line is PyMca's.
  for (double e : {1.5, 6.4, 17.5})
    BOOST_TEST(close(c.detector.sigma_keV(e), pymca_sigma(noise, fano, e), 1e-4));

  // Tails: PyMca's slopes (0.5 and 10 keV) converted at the median of the
  // main lines in the fit range: Pb M5N7, Ti KL3, Mn KL3, Fe KL3, Pb L3M5.
  const double e_ref = line_keV(25, KL3_LINE);
  const double s_ref = c.detector.sigma_keV(e_ref);
  BOOST_TEST(close(c.peak_shape.short_tail_slope * s_ref, 0.5, 1e-6));
  BOOST_TEST(close(c.peak_shape.long_tail_slope * s_ref, 10.0, 1e-6));
  BOOST_TEST(c.peak_shape.short_tail_area == 0.05);
  BOOST_TEST(c.peak_shape.long_tail_area == 0.02);
  BOOST_TEST(c.peak_shape.step_height == 1e-4);
  BOOST_TEST(c.fit.refine_tails);  // the short tail is free in PyMca
  BOOST_TEST(mentions(r.approximations, "tail slopes"));

  // At the reference energy opx's response is PyMca's hypermet, point by point.
  const int n = 800;
  std::vector<double> energy(n), width(n, 0.0025), col(n, 0.0);
  for (int i = 0; i < n; ++i) energy[i] = e_ref - 1.5 + 0.0025 * i;
  const double area = 1e4;
  add_line_response(col.data(), energy.data(), width.data(), 0, n, e_ref, s_ref, area, c.peak_shape);
  double worst = 0, peak = 0;
  for (int i = 0; i < n; ++i) {
    double x = energy[i];
    double gauss = area / (s_ref * std::sqrt(2 * M_PI)) * std::exp(-0.5 * std::pow((x - e_ref) / s_ref, 2));
    double pymca = gauss + pymca_tail(x, e_ref, area, s_ref, 0.05, 0.5) + pymca_tail(x, e_ref, area, s_ref, 0.02, 10.0) +
                   pymca_step(x, e_ref, area, s_ref, 1e-4);
    peak = std::max(peak, pymca);
    worst = std::max(worst, std::abs(col[i] / width[i] - pymca));
  }
  BOOST_TEST(worst / peak < 1e-6);

  BOOST_TEST(j["elements"] == json({"Ti K", "Mn K", "Fe K", "Pb LM"}));
  BOOST_TEST(c.calibration.offset_keV == -0.012);
  BOOST_TEST(c.calibration.gain_keV == 0.0101);
  BOOST_TEST(close(c.fit.energy_min_keV, -0.012 + 150 * 0.0101));
  BOOST_TEST(close(c.fit.energy_max_keV, -0.012 + 1800 * 0.0101));
  BOOST_TEST(c.fit.refine_width);  // noise free, Fano fixed
  BOOST_TEST(mentions(r.approximations, "refines only the noise"));
  BOOST_TEST(c.fit.max_iterations == 20);
  BOOST_TEST(c.fit.pileup);
  BOOST_TEST(c.fit.escape);

  BOOST_TEST(c.detector.material == "Si");
  BOOST_TEST(c.detector.thickness_mm == 0.5);
  BOOST_REQUIRE(c.detector.window.size() == 2u);  // Be window and Si dead layer
  BOOST_TEST(c.detector.window[0].material == "Si");
  BOOST_TEST(close(c.detector.window[0].thickness_um, 0.1));
  BOOST_TEST(c.detector.window[1].material == "Be");
  BOOST_TEST(close(c.detector.window[1].thickness_um, 8.0));
  BOOST_REQUIRE(c.attenuators.size() == 2u);  // Kapton 7.5 um, Air 1 cm
  BOOST_TEST(close(c.attenuators[0].thickness_um, 7.5));
  BOOST_TEST(close(c.attenuators[0].density_g_cm3, 1.42));
  BOOST_TEST(close(c.attenuators[1].thickness_um, 1e4));
  BOOST_TEST(mentions(r.unmapped, "Filter 6: covers only a fraction 0.5"));

  BOOST_TEST((c.excitation.kind == xray::Excitation::Kind::monochromatic));
  BOOST_TEST(c.excitation.energy_keV == 17.48);
  BOOST_TEST(c.scatter.rayleigh);
  BOOST_TEST(c.scatter.angle_deg == 100.0);  // Matrix alphaIn 40 + alphaOut 60

  BOOST_TEST((c.background.method == BackgroundMethod::snip));
  BOOST_TEST(close(c.background.snip_width_keV, 25 * 0.0101));
  BOOST_TEST(close(c.background.smoothing_keV, 2 * 0.0101));  // 5-point filter: half-width 2
  BOOST_TEST(c.background.snip_linear_offset);                 // continuum 2 (linear) on top of SNIP
}

BOOST_AUTO_TEST_CASE(pymca_tube_energy_list) {
  PymcaImport r = import_pymca_file(kDir + "rh-tube.cfg");
  for (const auto& a : r.approximations) BOOST_TEST_MESSAGE("approximated: " << a);
  FitConfig c = fit_config_from_json(r.config, "converted");
  BOOST_TEST((c.excitation.kind == xray::Excitation::Kind::tube));
  BOOST_TEST(c.excitation.anode == "Rh");
  BOOST_TEST(c.excitation.voltage_kV == 40.0);
  BOOST_REQUIRE(c.excitation.tube_window.size() == 1u);
  BOOST_TEST(close(c.excitation.tube_window[0].thickness_um, 75.0));
  BOOST_TEST(mentions(r.approximations, "[tube] section's Rh tube"));
  BOOST_TEST(mentions(r.unmapped, "Matrix = Fe1"));
  BOOST_TEST((c.background.method == BackgroundMethod::polynomial));
  BOOST_TEST(c.background.polynomial_order == 3);  // continuum 4, linpolorder 3
  BOOST_TEST(!c.fit.escape);
  BOOST_TEST(c.scatter.compton);
  BOOST_TEST(close(c.detector.thickness_mm, 0.45));
}

BOOST_AUTO_TEST_CASE(excitation_without_tube_section) {
  const std::string head =
      "[detector]\nzero = 0\ngain = 0.01\nnoise = 0.1\nfano = 0.114\n[peaks]\nFe = K\n"
      "[fit]\nxmin = 100\nxmax = 1500\nscatterflag = 1\n";
  // Cu K lines without a [tube]: a Cu tube; the list stops below the K edge,
  // so the voltage is an assumption and says so.
  PymcaImport cu = import_text(head +
                               "energy = 8.0478, 8.0279, 8.9053\nenergyweight = 1.0, 0.5, 0.2\n"
                               "energyflag = 1, 1, 1\nenergyscatter = 1, 1, 1\n");
  BOOST_TEST(cu.config["excitation"]["type"] == "tube");
  BOOST_TEST(cu.config["excitation"]["anode"] == "Cu");
  BOOST_TEST(mentions(cu.approximations, "assumed"));
  // Unrelated energies: the strongest as monochromatic, the rest named.
  PymcaImport mixed = import_text(head +
                                  "energy = 12.0, 15.0, None\nenergyweight = 0.3, 1.0, 1.0\n"
                                  "energyflag = 1, 1, 1\nenergyscatter = 1, 0, 1\n");
  BOOST_TEST(mixed.config["excitation"]["type"] == "monochromatic");
  BOOST_TEST(mixed.config["excitation"]["energy_keV"].get<double>() == 15.0);
  BOOST_TEST(mentions(mixed.approximations, "leaves out 12 keV (weight 0.3)"));
  // Disabled entries are not energies.
  PymcaImport off = import_text(head + "energy = 12.0, 15.0\nenergyweight = 1, 1\nenergyflag = 0, 1\n");
  BOOST_TEST(off.config["excitation"]["energy_keV"].get<double>() == 15.0);
  BOOST_TEST(!mentions(off.approximations, "leaves out"));
  // No energy at all: opx's default excitation is kept, with a warning, and no scatter.
  PymcaImport none = import_text(head + "energy = None\n");
  BOOST_TEST(mentions(none.approximations, "no active energy"));
  BOOST_TEST(none.config["scatter"]["rayleigh"] == false);
}

BOOST_AUTO_TEST_CASE(background_and_peak_shape_variants) {
  const std::string head = "[detector]\nzero = 0\ngain = 0.02\nnoise = 0.1\nfano = 0.114\n[peaks]\nCu = K\n";
  PymcaImport poly = import_text(head + "[fit]\nxmin = 50\nxmax = 900\nstripflag = 0\ncontinuum = 3\n");
  BOOST_TEST(poly.config["background"]["method"] == "polynomial");
  BOOST_TEST(poly.config["background"]["polynomial_order"] == 2);
  PymcaImport none = import_text(head + "[fit]\nxmin = 50\nxmax = 900\nstripflag = 0\ncontinuum = 0\n");
  BOOST_TEST(none.config["background"]["method"] == "none");
  PymcaImport voigt = import_text(head + "[fit]\nxmin = 50\nxmax = 900\nfitfunction = 1\n[peakshape]\neta_factor = 0.1\n");
  BOOST_TEST(mentions(voigt.approximations, "pseudo-Voigt"));
  BOOST_TEST(voigt.config["peak_shape"]["short_tail_area"].get<double>() == 0.0);
  PymcaImport linear = import_text(head + "[fit]\nxmin = 50\nxmax = 900\nlinearfitflag = 1\n");
  BOOST_TEST(linear.config["fit"]["refine_calibration"] == false);
  BOOST_TEST(linear.config["fit"]["refine_width"] == false);
  // An unknown key is reported, not dropped.
  PymcaImport extra = import_text(head + "[fit]\nxmin = 50\nxmax = 900\nsomething_new = 3\n");
  BOOST_TEST(mentions(extra.unmapped, "[fit] something_new"));
}

BOOST_AUTO_TEST_CASE(run_import_writes_a_valid_configuration) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("opx-pymca-test-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::path out = dir / "steel.json";
  BOOST_TEST(run_import_pymca(kDir + "steel.cfg", out.string()) == 0);
  FitConfig c = load_fit_config(out.string());
  BOOST_TEST(c.elements.size() == 9u);
  std::ifstream in(out);
  std::stringstream text;
  text << in.rdbuf();
  BOOST_TEST(text.str().rfind("{\n  \"", 0) == 0u);  // pretty, two-space indent
  // Nothing else is left in the folder (written under a temporary name, renamed).
  BOOST_TEST(std::distance(fs::directory_iterator(dir), fs::directory_iterator()) == 1);
  fs::remove_all(dir);
}
