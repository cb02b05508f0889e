#include "core/units.hpp"

#include <cctype>
#include <charconv>
#include <cmath>
#include <string>
#include <utility>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/text.hpp"

namespace opx::units {
namespace {

struct UnitDef {
  const char* name;
  double factor;
  Dimension dim;
};

// SI base per dimension: s, m, eV, A, V, kg, m^2, -, C, N, Pa, Hz.
constexpr UnitDef kUnits[] = {
    {"ns", 1e-9, Dimension::time},       {"us", 1e-6, Dimension::time},
    {"µs", 1e-6, Dimension::time},       {"ms", 1e-3, Dimension::time},
    {"s", 1.0, Dimension::time},         {"sec", 1.0, Dimension::time},
    {"min", 60.0, Dimension::time},      {"h", 3600.0, Dimension::time},
    {"hr", 3600.0, Dimension::time},     {"d", 86400.0, Dimension::time},
    {"nm", 1e-9, Dimension::length},     {"um", 1e-6, Dimension::length},
    {"µm", 1e-6, Dimension::length},     {"mm", 1e-3, Dimension::length},
    {"cm", 1e-2, Dimension::length},     {"m", 1.0, Dimension::length},
    {"eV", 1.0, Dimension::energy},      {"keV", 1e3, Dimension::energy},
    {"MeV", 1e6, Dimension::energy},     {"nA", 1e-9, Dimension::current},
    {"uA", 1e-6, Dimension::current},    {"µA", 1e-6, Dimension::current},
    {"mA", 1e-3, Dimension::current},    {"A", 1.0, Dimension::current},
    {"uV", 1e-6, Dimension::voltage},    {"mV", 1e-3, Dimension::voltage},
    {"V", 1.0, Dimension::voltage},      {"kV", 1e3, Dimension::voltage},
    {"ug", 1e-9, Dimension::mass},       {"µg", 1e-9, Dimension::mass},
    {"mg", 1e-6, Dimension::mass},       {"g", 1e-3, Dimension::mass},
    {"kg", 1.0, Dimension::mass},        {"um2", 1e-12, Dimension::area},
    {"mm2", 1e-6, Dimension::area},      {"cm2", 1e-4, Dimension::area},
    {"m2", 1.0, Dimension::area},        {"uAh", 3.6e-3, Dimension::charge},
    {"mAh", 3.6, Dimension::charge},     {"Ah", 3600.0, Dimension::charge},
    {"C", 1.0, Dimension::charge},       {"mN", 1e-3, Dimension::force},
    {"N", 1.0, Dimension::force},        {"kN", 1e3, Dimension::force},
    {"Pa", 1.0, Dimension::pressure},    {"kPa", 1e3, Dimension::pressure},
    {"MPa", 1e6, Dimension::pressure},   {"GPa", 1e9, Dimension::pressure},
    {"bar", 1e5, Dimension::pressure},   {"mbar", 1e2, Dimension::pressure},
    {"Hz", 1.0, Dimension::frequency},   {"kHz", 1e3, Dimension::frequency},
    {"MHz", 1e6, Dimension::frequency},  {"%", 1e-2, Dimension::dimensionless},
};

// "cm^2" and "cm²" -> "cm2".
std::string normalize_unit(std::string_view u) {
  std::string s;
  s.reserve(u.size());
  for (std::size_t i = 0; i < u.size(); ++i) {
    if (u.compare(i, 2, "^2") == 0) {
      s += '2';
      ++i;
    } else if (u.compare(i, 2, "\xc2\xb2") == 0) {  // UTF-8 superscript two
      s += '2';
      ++i;
    } else {
      s += u[i];
    }
  }
  return s;
}

using text::trim;

const char* dimension_name(Dimension d) {
  switch (d) {
    case Dimension::time: return "time";
    case Dimension::length: return "length";
    case Dimension::energy: return "energy";
    case Dimension::current: return "current";
    case Dimension::voltage: return "voltage";
    case Dimension::mass: return "mass";
    case Dimension::area: return "area";
    case Dimension::dimensionless: return "dimensionless";
    case Dimension::charge: return "charge";
    case Dimension::force: return "force";
    case Dimension::pressure: return "pressure";
    case Dimension::frequency: return "frequency";
  }
  return "?";
}

// "an energy", "a length".
std::string with_article(const char* noun) {
  const char c = noun[0];
  bool vowel = c == 'a' || c == 'e' || c == 'i' || c == 'o' || c == 'u';
  return std::string(vowel ? "an " : "a ") + noun;
}

// Splits "8.8 keV" into the number and the unit text; returns false when the
// text does not start with a finite number.
bool split(std::string_view text, double& value, std::string_view& unit) {
  text = trim(text);
  const char* b = text.data();
  const char* e = b + text.size();
  if (b != e && *b == '+') ++b;
  auto [ptr, ec] = std::from_chars(b, e, value);
  if (ec != std::errc() || !std::isfinite(value)) return false;
  unit = trim(std::string_view(ptr, static_cast<std::size_t>(e - ptr)));
  return true;
}

}  // namespace

double factor(std::string_view unit, Dimension* dimension) {
  std::string u = normalize_unit(trim(unit));
  for (const auto& d : kUnits) {
    if (u == d.name) {
      if (dimension) *dimension = d.dim;
      return d.factor;
    }
  }
  throw usage_error("unknown unit", std::string(unit),
                    "use e.g. s, min, h, um, mm, eV, keV, uA, mA, V, g, cm2, N, MPa, Hz");
}

Quantity parse(std::string_view text, std::string_view what) {
  double v = 0;
  std::string_view u;
  if (!split(text, v, u))
    throw usage_error(fmt::format("invalid {}", what), std::string(text),
                      "expected a number followed by a unit, e.g. '30 s' or '5 um'");
  if (u.empty()) return {v, Dimension::dimensionless};
  Dimension dim{};
  double f = 0;
  try {
    f = factor(u, &dim);
  } catch (const Error& e) {
    throw usage_error(fmt::format("invalid {}", what), std::string(text), e.why().empty() ? e.what() : "unknown unit '" + std::string(u) + "'");
  }
  return {v * f, dim};
}

double parse_as(std::string_view text, std::string_view unit, std::string_view what) {
  Dimension want{};
  double f = factor(unit, &want);
  double v = 0;
  std::string_view u;
  if (!split(text, v, u))
    throw usage_error(fmt::format("invalid {}", what), std::string(text),
                      fmt::format("expected a number optionally followed by a unit, e.g. '{}'",
                                  fmt::format("1 {}", unit)));
  if (u.empty()) return v;
  Quantity q = parse(text, what);
  if (q.dimension != want)
    throw usage_error(fmt::format("invalid {}", what), std::string(text),
                      fmt::format("'{}' is {}, expected {} such as '{}'", u,
                                  with_article(dimension_name(q.dimension)), with_article(dimension_name(want)), unit));
  return q.value_si / f;
}

}  // namespace opx::units
