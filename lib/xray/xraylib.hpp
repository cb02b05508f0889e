#pragma once
// The one place libopx talks to xraylib. Every physical constant of X-ray
// emission and absorption in opx comes from here, with xraylib's errors
// turned into opx::Error (config error: an unknown element or line is a
// mistake in the user's configuration).
//
// Units: energies in keV, cross sections in cm^2/g, densities in g/cm^3.
#include <string>
#include <string_view>
#include <vector>

namespace opx::xray {

int atomic_number(std::string_view symbol);       // "Mn" -> 25; throws on unknown
std::string element_symbol(int Z);                // 25 -> "Mn"
double atomic_weight(int Z);                      // g/mol
double element_density(int Z);                    // g/cm^3

enum class Family { K, L, M };
const char* family_name(Family f);
Family parse_family(std::string_view text);       // "K", "L", "M" (also "Ka"... -> K)

// One emission line of an element: IUPAC name ("KL3"), Siegbahn-ish label
// where common ("Ka1"), energy, and the xraylib line code.
struct Line {
  std::string iupac;
  int code = 0;
  double energy_keV = 0;
};

// All lines of a family that xraylib knows for Z (energy > 0 and a non-zero
// radiative rate), in xraylib's order.
std::vector<Line> family_lines(int Z, Family f);

// The shell a line starts from (its vacancy): K for KL3, L3 for L3M5...
int initial_shell(int code);
double edge_energy_keV(int Z, int shell);
double fluorescence_yield(int Z, int shell);
double radiative_rate(int Z, int line_code);

// Production cross section of a line, cm^2/g, for photoionization at
// excitation energy E (keV), including Coster-Kronig and cascade effects
// (xraylib's CS_FluorLine_Kissel_Cascade). 0 below the edge.
double line_cross_section(int Z, int line_code, double excitation_keV);

// Mass attenuation coefficient (total, with coherent and incoherent
// scattering) of an element or a compound formula ("Si", "C2H4", "LiNi0.6Mn0.2Co0.2O2").
double mass_attenuation(std::string_view material, double energy_keV);
double mass_photoabsorption(std::string_view material, double energy_keV);

// Transmission through a layer: exp(-mu_m * rho * t).
double transmission(std::string_view material, double density_g_cm3, double thickness_cm,
                    double energy_keV);

// Density of a pure element or a known compound formula; throws config error
// when the material is not an element and no density can be assumed.
double default_density(std::string_view material);

// Energy of a photon of E0 after Compton scattering by `angle_deg`.
double compton_energy_keV(double e0_keV, double angle_deg);

// Checks that a material formula is one xraylib can parse.
void check_material(std::string_view material, std::string_view where);

}  // namespace opx::xray
