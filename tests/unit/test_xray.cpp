#define BOOST_TEST_MODULE xray
#include <boost/test/unit_test.hpp>

#include <cmath>

#include "core/error.hpp"
#include "xray/detector.hpp"
#include "xray/excitation.hpp"
#include "xray/xraylib.hpp"

using namespace opx;
using namespace opx::xray;

namespace {
double energy_of(int Z, Family f, const std::string& iupac) {
  for (const auto& l : family_lines(Z, f))
    if (l.iupac == iupac) return l.energy_keV;
  return 0;
}
}  // namespace

BOOST_AUTO_TEST_CASE(line_energies_match_the_xray_data_booklet) {
  // X-ray Data Booklet (LBNL, 2009), table 1-2: Mn Ka1 5898.75 eV, Cu Ka1
  // 8047.78 eV, Cu Kb1 8905.29 eV, Pb La1 10551.5 eV.
  BOOST_TEST(std::abs(energy_of(25, Family::K, "KL3") - 5.89875) < 2e-3);
  BOOST_TEST(std::abs(energy_of(29, Family::K, "KL3") - 8.04778) < 2e-3);
  BOOST_TEST(std::abs(energy_of(29, Family::K, "KM3") - 8.90529) < 3e-3);
  BOOST_TEST(std::abs(energy_of(82, Family::L, "L3M5") - 10.5515) < 3e-3);
}

BOOST_AUTO_TEST_CASE(fluorescence_yield_and_attenuation_match_tables) {
  // omega_K(Fe): 0.340 in Krause, J. Phys. Chem. Ref. Data 8 (1979) 307,
  // 0.351 in the fit of Hubbell et al., J. Phys. Chem. Ref. Data 23 (1994)
  // 339; the tables differ by 3 %, so accept the span between them.
  BOOST_TEST(fluorescence_yield(26, 0) > 0.335);
  BOOST_TEST(fluorescence_yield(26, 0) < 0.360);
  // NIST XCOM: Si at 10 keV, total with coherent scattering, 33.89 cm2/g.
  BOOST_TEST(std::abs(mass_attenuation("Si", 10.0) / 33.89 - 1.0) < 0.02);
  // Be window of 12.5 um at 3 keV: mu/rho = 21.27 cm2/g (NIST, Hubbell &
  // Seltzer tables) -> T = 0.952.
  BOOST_TEST(std::abs(transmission("Be", 1.848, 12.5e-4, 3.0) - std::exp(-21.27 * 1.848 * 12.5e-4)) < 0.003);
}

BOOST_AUTO_TEST_CASE(silicon_escape_fractions_match_pymca) {
  // PyMca 5.8, Elements.getEscape(['Si', 2.33, 0.5], E): Si KL3 escape
  // fraction 0.007745 at 3.0 keV, 0.002514 at 5.9 keV, 0.001184 at 8.04 keV.
  Detector det;
  det.window.clear();
  const std::pair<double, double> ref[] = {{3.0, 0.007745}, {5.9, 0.002514}, {8.04, 0.0011837}};
  for (auto [e, f] : ref) {
    double got = 0;
    for (const auto& l : escape_lines(det, e, 1e-9))
      if (l.label == "Si KL3 escape") got = l.fraction;
    BOOST_TEST_INFO("E = " << e << " keV");
    BOOST_TEST(std::abs(got / f - 1.0) < 0.03);
  }
  BOOST_TEST(escape_lines(det, 1.7, 1e-9).empty());  // below the Si K edge
}

BOOST_AUTO_TEST_CASE(detector_resolution_formula) {
  Detector det;
  det.noise_fwhm_keV = 0.1;
  det.fano = 0.114;
  // FWHM^2 = noise^2 + 2.3548^2 * 0.00385 * F * E: 0.1449 keV at 5.9 keV.
  double expect = std::sqrt(0.01 + 2.354820045 * 2.354820045 * 0.00385 * 0.114 * 5.9);
  BOOST_TEST(std::abs(det.fwhm_keV(5.9) - expect) < 1e-9);
}

BOOST_AUTO_TEST_CASE(tube_lines_and_errors) {
  Excitation cu;
  auto lines = cu.source_lines();
  double sum = 0;
  double ka1 = 0, kb = 0;
  for (const auto& l : lines) {
    sum += l.relative_intensity;
    if (l.label == "Cu KL3") ka1 = l.relative_intensity;
    if (l.label == "Cu KM3") kb += l.relative_intensity;
  }
  BOOST_TEST(std::abs(sum - 1.0) < 1e-12);
  BOOST_TEST(ka1 > 0.4);
  BOOST_TEST(kb > 0.03);
  BOOST_CHECK_THROW(atomic_number("Xx"), opx::Error);
  try {
    atomic_number("Xx");
  } catch (const opx::Error& e) {
    BOOST_TEST(static_cast<int>(e.code()) == 78);
  }
  BOOST_CHECK_THROW(mass_attenuation("Qq2", 5.0), opx::Error);
}
