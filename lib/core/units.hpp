#pragma once
// Physical quantities given by people: "30 s", "5 um", "8.8 keV", "600 uA".
// Values are returned in the unit the caller asks for (a unit of the same
// dimension), so the caller's variable names can say their unit: depth_um.
#include <string>
#include <string_view>

namespace opx::units {

enum class Dimension { time, length, energy, current, voltage, mass, area, dimensionless, charge, force, pressure, frequency };

struct Quantity {
  double value_si;       // in the SI base unit of its dimension (s, m, J->keV? see below)
  Dimension dimension;
};

// Parses "<number>[ ]<unit>". Energy is kept in keV-free SI (joules are never
// used in this field), so for energy value_si is in eV. Accepted units:
//   time: ns us µs ms s min h d   length: nm um µm mm cm m
//   energy: eV keV MeV            current: nA uA µA mA A
//   voltage: uV mV V kV           mass: ug mg g kg
//   area: um2 mm2 cm2 m2 (also with ^2 or ²)
//   charge: uAh mAh Ah C          force: mN N kN   pressure: Pa kPa MPa GPa bar mbar
//   frequency: Hz kHz MHz
// Throws opx::Error (usage) naming `what` on failure.
Quantity parse(std::string_view text, std::string_view what = "quantity");

// Parses and converts to `unit` (e.g. "um", "keV", "s"); the dimensions must
// match. A bare number is taken to be in `unit` already.
double parse_as(std::string_view text, std::string_view unit, std::string_view what = "quantity");

// The factor that converts `unit` to the SI value of its dimension.
double factor(std::string_view unit, Dimension* dimension = nullptr);

}  // namespace opx::units
