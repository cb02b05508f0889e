// PyMca fit configuration (.cfg) -> opx fit configuration (JSON).
//
// Mapping, with the PyMca source each entry is read after (PyMca 5.8,
// PyMca5/PyMcaPhysics/xrf/ClassMcaTheory.py unless named otherwise):
//
//   [peaks] Fe = K; Pb = L, M      -> elements "Fe K", "Pb LM". PyMca also
//       accepts sub-families (Ka, Kb, L1, L2, L3, M1..M5) fitted as separate
//       groups; opx fits whole families with xraylib's ratios (approximated).
//   [detector] zero, gain           -> calibration offset_keV, gain_keV
//       (PyMca: E = zero + gain * channel, keV).
//   [detector] noise, fano          -> detector noise_fwhm_keV, fano and
//       pair_energy_keV = 0.00385. PyMca's line width (mcatheory()):
//         FWHM^2 = noise^2 + 0.00385 * E * fano * 2.3548^2      (keV)
//       i.e. noise is the electronic-noise FWHM in keV and the pair energy is
//       3.85 eV whatever the crystal; opx's sigma^2 = (noise/2.3548)^2 +
//       pair_energy * fano * E is the same formula with pair_energy 0.00385.
//   [detector] fixedzero/fixedgain, fixednoise/fixedfano -> refine_calibration,
//       refine_width (refined when either is free).
//   [attenuators] NAME = active, formula, density (g/cm3), thickness (cm)
//       [, opening fraction ("funny factor")]: ClassMcaTheory treats three
//       names specially: "Matrix" (the sample: its angles give the Compton
//       scattering angle), "Detector" (the crystal: efficiency
//       1 - exp(-mu rho t)) and "BeamFilter0/1" (between source and sample);
//       every other active one is a transmission exp(-mu rho t) between
//       sample and detector. Mapped: Detector -> detector material, density,
//       thickness_mm; window, deadlayer, contact -> detector window layers;
//       all others -> attenuators (thickness_um = 1e4 * cm). Materials are
//       formulas ("Si1", "Al2O3") or [materials.NAME] mixtures (CompoundList
//       with CompoundFraction mass fractions), written as one formula with
//       the same elemental mass fractions.
//   [fit] energy, energyweight, energyflag, energyscatter -> excitation: one
//       active energy -> monochromatic; several -> the [tube] section's tube
//       when there is one, else a tube whose anode's K lines are the
//       strongest energies, else the strongest energy as monochromatic (each
//       approximated, with a warning).
//   [fit] scatterflag, energyscatter, Matrix angles -> scatter rayleigh,
//       compton, angle_deg (alphaIn + alphaOut, or the explicit angle).
//   [fit] fitfunction, hypermetflag (bits: 1 Gaussian, 2 short tail, 4 long
//       tail, 8 step) and [peakshape] -> peak_shape. See peak_shape() below
//       for the tail-slope conversion.
//   [fit] stripflag, stripalgorithm (0 strip, 1 SNIP), snipwidth (channels),
//       stripfilterwidth, continuum (0 none, 1 constant, 2 linear,
//       3 parabolic, 4 linear polynomial, 5 exponential polynomial),
//       linpolorder, exppolorder -> background.
//   [fit] xmin, xmax (channels)     -> fit energy_range_keV via the calibration.
//   [fit] escapeflag, sumflag, maxiter, fitweight, linearfitflag -> fit
//       escape, pileup, max_iterations, weighting, refine_* = false.
#include "xrf/pymca_import.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>
#include <map>
#include <optional>
#include <set>
#include <sstream>

#include <fmt/format.h>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/text.hpp"
#include "core/log.hpp"
#include "io/json_schema.hpp"
#include "xrf/cmx_fit.hpp"
#include "xrf/config.hpp"
#include "xray/xraylib.hpp"

namespace opx::xrf {

const PymcaValue* PymcaSection::find(std::string_view key) const {
  for (const auto& [k, v] : entries)
    if (k == key) return &v;
  return nullptr;
}

const PymcaSection* PymcaConfig::section(std::string_view name) const {
  for (const auto& s : sections)
    if (s.name == name) return &s;
  return nullptr;
}

namespace {

using text::lower;
using text::trim;
using text::upper;

// PyMca's electron-hole pair energy in the width formula, for every crystal.
constexpr double kPymcaPairEnergy_keV = 0.00385;




// Unit conversions produce values such as 0.35000000000000003; ten
// significant digits are far below any physical meaning and read cleanly.
double tidy(double x) {
  if (x == 0 || !std::isfinite(x)) return x;
  return std::stod(fmt::format("{:.10g}", x));
}

// Splits a value the way ConfigDict.__parse_data does.
void split_items(PymcaValue& v) {
  const std::string& d = v.text;
  v.items.clear();
  if (d.empty()) return;
  if (d.find(',') == std::string::npos && d.front() == '[' && d.back() == ']') {
    // A numpy array, "[ 1 2 3 ]" or "[[1 2] [3 4]]": numbers between blanks.
    std::string flat = d;
    std::replace(flat.begin(), flat.end(), '[', ' ');
    std::replace(flat.begin(), flat.end(), ']', ' ');
    std::istringstream in(flat);
    for (std::string w; in >> w;) v.items.push_back(w);
    v.is_list = true;
    return;
  }
  std::size_t start = 0;
  int lines = 0;
  while (start <= d.size()) {
    std::size_t end = d.find('\n', start);
    if (end == std::string::npos) end = d.size();
    std::string_view line = trim(std::string_view(d).substr(start, end - start));
    ++lines;
    if (line.find(',') != std::string_view::npos) {
      v.is_list = true;
      if (line.back() == ',') line.remove_suffix(1);  // "Si1," is a one-item list
      std::size_t p = 0;
      while (true) {
        std::size_t q = line.find(',', p);
        v.items.emplace_back(trim(line.substr(p, q == std::string_view::npos ? std::string_view::npos : q - p)));
        if (q == std::string_view::npos) break;
        p = q + 1;
      }
    } else {
      v.items.emplace_back(line);
    }
    start = end + 1;
  }
  if (lines > 1) v.is_list = true;
}

// '%%' is how configparser escapes '%'.
std::string unescape_percent(std::string_view s) {
  std::string o;
  for (std::size_t i = 0; i < s.size(); ++i) {
    o += s[i];
    if (s[i] == '%' && i + 1 < s.size() && s[i + 1] == '%') ++i;
  }
  return o;
}

std::optional<double> parse_number(std::string_view s) {
  s = trim(s);
  if (s == "True") return 1.0;
  if (s == "False") return 0.0;
  if (!s.empty() && s.front() == '+') s.remove_prefix(1);
  double v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return std::nullopt;
  return v;
}

}  // namespace

PymcaConfig parse_pymca_config(std::string_view text, const std::string& source) {
  PymcaConfig cfg;
  cfg.source = source;
  auto malformed = [&](int line, const std::string& why) {
    return data_error("malformed PyMca configuration", fmt::format("{}:{}", source, line), why);
  };
  if (text.substr(0, 3) == "\xEF\xBB\xBF") text.remove_prefix(3);  // UTF-8 byte-order mark
  std::size_t current = std::string::npos;                         // index in cfg.sections
  PymcaValue* last = nullptr;                                       // value that continuation lines extend
  std::size_t last_indent = 0;
  int line_no = 0;
  for (std::size_t pos = 0; pos < text.size();) {
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    std::string_view raw = text.substr(pos, end - pos);
    pos = end + 1;
    ++line_no;
    if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
    std::string_view t = trim(raw);
    if (t.empty() || t.front() == '#' || t.front() == ';') continue;
    const std::size_t indent = raw.find_first_not_of(" \t");
    if (indent > 0 && last != nullptr && indent > last_indent) {  // continuation of a multi-line value
      last->text += '\n';
      last->text += unescape_percent(t);
      continue;
    }
    last = nullptr;
    if (t.front() == '[') {
      std::size_t close = t.rfind(']');
      std::string name = close == std::string_view::npos ? std::string() : std::string(trim(t.substr(1, close - 1)));
      if (name.empty()) throw malformed(line_no, fmt::format("'{}' is not a section header [name]", t));
      auto it = std::find_if(cfg.sections.begin(), cfg.sections.end(),
                             [&](const PymcaSection& s) { return s.name == name; });
      if (it != cfg.sections.end()) {
        log::warn("{}:{}: section [{}] repeated (first at line {}): its entries are merged, later values win",
                  source, line_no, name, it->line);
        current = static_cast<std::size_t>(it - cfg.sections.begin());
      } else {
        cfg.sections.push_back({name, line_no, {}});
        current = cfg.sections.size() - 1;
      }
      continue;
    }
    if (current == std::string::npos)
      throw malformed(line_no, fmt::format("'{}' comes before the first [section]", t));
    std::size_t delim = t.find_first_of("=:");
    if (delim == std::string_view::npos)
      throw malformed(line_no, fmt::format("'{}' is neither a [section] nor a 'key = value' entry", t));
    std::string key(trim(t.substr(0, delim)));
    if (key.empty()) throw malformed(line_no, fmt::format("'{}' has no key before '{}'", t, t[delim]));
    PymcaSection& sec = cfg.sections[current];
    PymcaValue value;
    value.text = unescape_percent(trim(t.substr(delim + 1)));
    value.line = line_no;
    auto existing = std::find_if(sec.entries.begin(), sec.entries.end(), [&](const auto& e) { return e.first == key; });
    if (existing != sec.entries.end()) {
      log::warn("{}:{}: [{}] {} repeated (first at line {}): the later value is used", source, line_no, sec.name, key,
                existing->second.line);
      existing->second = std::move(value);
      last = &existing->second;
    } else {
      sec.entries.emplace_back(std::move(key), std::move(value));
      last = &sec.entries.back().second;
    }
    last_indent = indent;
  }
  for (auto& s : cfg.sections)
    for (auto& [k, v] : s.entries) split_items(v);
  return cfg;
}

namespace {

// Reads entries and remembers which were used, so that whatever is left at
// the end can be reported.
class Entries {
 public:
  explicit Entries(const PymcaConfig& cfg) : cfg_(cfg) {}

  const PymcaConfig& config() const { return cfg_; }

  const PymcaValue* get(const std::string& section, const std::string& key) {
    const PymcaSection* s = cfg_.section(section);
    const PymcaValue* v = s ? s->find(key) : nullptr;
    if (v) used_.insert({section, key});
    return v;
  }
  // Marks entries PyMca itself ignores under the configuration's flags.
  void ignore(const std::string& section, std::initializer_list<const char*> keys) {
    for (const char* k : keys) get(section, k);
  }
  void use_section(const std::string& section) {
    if (const PymcaSection* s = cfg_.section(section))
      for (const auto& e : s->entries) used_.insert({section, e.first});
  }
  bool used(const std::string& section, const std::string& key) const { return used_.count({section, key}) > 0; }

  Error bad(const PymcaValue& v, const std::string& section, const std::string& key, const std::string& why) const {
    return data_error("invalid PyMca configuration", fmt::format("{}:{}", cfg_.source, v.line),
                      fmt::format("[{}] {}: {}", section, key, why));
  }
  double number(const PymcaValue& v, const std::string& item, const std::string& section,
                const std::string& key) const {
    auto x = parse_number(item);
    if (!x || !std::isfinite(*x)) throw bad(v, section, key, fmt::format("'{}' is not a number", item));
    return *x;
  }
  std::optional<double> opt_number(const std::string& section, const std::string& key) {
    const PymcaValue* v = get(section, key);
    if (!v || v->items.empty() || v->items.front() == "None") return std::nullopt;
    if (v->items.size() != 1) throw bad(*v, section, key, fmt::format("expected one number, not '{}'", v->text));
    return number(*v, v->items.front(), section, key);
  }
  double number_or(const std::string& section, const std::string& key, double fallback) {
    return opt_number(section, key).value_or(fallback);
  }
  double required(const std::string& section, const std::string& key) {
    auto x = opt_number(section, key);
    if (!x)
      throw data_error("invalid PyMca configuration", cfg_.source, fmt::format("[{}] {} is missing", section, key));
    return *x;
  }
  bool flag_or(const std::string& section, const std::string& key, bool fallback) {
    auto x = opt_number(section, key);
    return x ? *x != 0 : fallback;
  }
  // A list of numbers where "None" items are empty.
  std::vector<std::optional<double>> numbers(const std::string& section, const std::string& key) {
    std::vector<std::optional<double>> out;
    const PymcaValue* v = get(section, key);
    if (!v) return out;
    for (const auto& item : v->items) {
      if (item == "None" || item.empty())
        out.emplace_back();
      else
        out.emplace_back(number(*v, item, section, key));
    }
    return out;
  }

 private:
  const PymcaConfig& cfg_;
  std::set<std::pair<std::string, std::string>> used_;
};

// An element-resolved composition: atoms per formula unit, in order of first
// appearance (a mixture: moles per gram, rescaled to 100 atoms).
using Composition = std::vector<std::pair<int, double>>;

void add_atoms(Composition& c, int Z, double n) {
  for (auto& [z, m] : c)
    if (z == Z) {
      m += n;
      return;
    }
  c.emplace_back(Z, n);
}

// PyMca formulas ("Si1", "H2O1", "Fe1O2H1", "Ca5(PO4)3F"): element symbols
// with optional decimal counts, parenthesized groups with a count.
bool parse_formula(std::string_view f, std::size_t& pos, Composition& out, int depth) {
  if (depth > 8) return false;
  auto read_count = [&](double& n) {
    std::size_t b = pos;
    while (pos < f.size() && (std::isdigit(static_cast<unsigned char>(f[pos])) || f[pos] == '.')) ++pos;
    if (b == pos) {
      n = 1;
      return true;
    }
    auto x = parse_number(f.substr(b, pos - b));
    if (!x || *x <= 0) return false;
    n = *x;
    return true;
  };
  while (pos < f.size() && f[pos] != ')') {
    if (f[pos] == '(') {
      ++pos;
      Composition inner;
      if (!parse_formula(f, pos, inner, depth + 1) || pos >= f.size() || f[pos] != ')') return false;
      ++pos;
      double n = 1;
      if (!read_count(n)) return false;
      for (auto [z, m] : inner) add_atoms(out, z, m * n);
      continue;
    }
    if (!std::isupper(static_cast<unsigned char>(f[pos]))) return false;
    std::size_t b = pos++;
    if (pos < f.size() && std::islower(static_cast<unsigned char>(f[pos]))) ++pos;
    int Z = 0;
    try {
      Z = xray::atomic_number(f.substr(b, pos - b));
    } catch (const Error&) {
      return false;
    }
    double n = 1;
    if (!read_count(n)) return false;
    add_atoms(out, Z, n);
  }
  return !out.empty();
}

double molar_mass(const Composition& c) {
  double m = 0;
  for (auto [z, n] : c) m += n * xray::atomic_weight(z);
  return m;
}

// Four significant digits in plain decimals (xraylib's formula parser takes
// no exponents): far finer than any composition PyMca is given.
std::string count_text(double n) {
  if (n == 1.0) return {};
  int decimals = std::max(0, 3 - static_cast<int>(std::floor(std::log10(n))));
  std::string s = fmt::format("{:.{}f}", n, decimals);
  if (s.find('.') != std::string::npos) {
    s.erase(s.find_last_not_of('0') + 1);
    if (s.back() == '.') s.pop_back();
  }
  return s;
}

std::string formula_text(const Composition& c) {
  if (c.size() == 1) return xray::element_symbol(c.front().first);
  std::string s;
  for (auto [z, n] : c) s += xray::element_symbol(z) + count_text(n);
  return s;
}

std::string join(const std::vector<std::string>& v, std::string_view sep = ", ") {
  std::string s;
  for (const auto& x : v) {
    if (!s.empty()) s += sep;
    s += x;
  }
  return s;
}

// Main (strongest radiative rate) line of a family, keV; 0 when none.
double main_line_keV(int Z, xray::Family f) {
  double best = 0, energy = 0;
  for (const auto& l : xray::family_lines(Z, f)) {
    double r = xray::radiative_rate(Z, l.code);
    if (r > best) best = r, energy = l.energy_keV;
  }
  return energy;
}

class Importer {
 public:
  explicit Importer(const PymcaConfig& cfg) : e_(cfg), src_(cfg.source) {
    c_.source = src_;
    c_.detector.window.clear();  // PyMca has no window unless an attenuator says so
  }

  PymcaImport run() {
    elements();
    calibration_and_range();
    detector_width();
    excitation();
    attenuators();
    scatter();
    peak_shape();
    background();
    fit_settings();
    other_sections();
    report_leftovers();

    c_.description = fmt::format("Imported from the PyMca fit configuration {} by cmx-fit --import-pymca",
                                 std::filesystem::path(src_).filename().string());
    out_.config = c_.to_json();
    // What cmx-fit will read back: the schema and the semantic checks
    // (materials xraylib can parse, known elements).
    validate_json(out_.config, "fit-config", src_, ExitCode::data_error);
    try {
      fit_config_from_json(out_.config, src_);
    } catch (const Error& err) {
      throw data_error("cannot convert PyMca configuration", err.where(), err.why());
    }
    return std::move(out_);
  }

 private:
  void approx(std::string s) { out_.approximations.push_back(std::move(s)); }
  // Unmapped entries grouped by section and reason for a readable report.
  void unmapped(const std::string& section, const std::string& key, const std::string& reason) {
    if (e_.get(section, key)) unmapped_[{section, reason}].push_back(key);
  }
  void unmapped_section(const std::string& section, const std::string& reason) {
    e_.use_section(section);
    out_.unmapped.push_back(fmt::format("[{}] (whole section: {})", section, reason));
  }
  double sigma_keV(double e) const { return c_.detector.sigma_keV(e); }

  void elements() {
    const PymcaSection* peaks = e_.config().section("peaks");
    if (!peaks || peaks->entries.empty())
      throw data_error("cannot convert PyMca configuration", src_, "[peaks] is missing or empty: no element to fit");
    std::map<int, std::set<xray::Family>> families;
    for (const auto& [key, v] : peaks->entries) {
      e_.get("peaks", key);
      int Z = 0;
      try {
        Z = xray::atomic_number(key);
      } catch (const Error&) {
        throw e_.bad(v, "peaks", key, "not a chemical element symbol");
      }
      std::vector<std::string> partial;
      for (const auto& item : v.items) {
        if (item.empty()) continue;
        char f = static_cast<char>(std::toupper(static_cast<unsigned char>(item[0])));
        if (f != 'K' && f != 'L' && f != 'M')
          throw e_.bad(v, "peaks", key,
                       fmt::format("'{}' is not a line family (PyMca writes K, Ka, Kb, L, L1-L3, M, M1-M5)", item));
        xray::Family fam = xray::parse_family(std::string(1, f));
        if (xray::family_lines(Z, fam).empty())
          throw e_.bad(v, "peaks", key, fmt::format("xraylib has no {} lines for {}", f, xray::element_symbol(Z)));
        families[Z].insert(fam);
        if (item.size() > 1) partial.push_back(item);
      }
      if (families[Z].empty()) throw e_.bad(v, "peaks", key, "no line family given");
      if (!partial.empty())
        approx(fmt::format("[peaks] {}: PyMca fits {} as separate groups with free ratios; opx fits whole families "
                           "with xraylib's line ratios",
                           key, join(partial)));
    }
    for (const auto& [Z, fams] : families) c_.elements.push_back({xray::element_symbol(Z), {fams.begin(), fams.end()}});
  }

  void calibration_and_range() {
    c_.calibration.offset_keV = e_.required("detector", "zero");
    double gain = e_.required("detector", "gain");
    if (gain <= 0) throw e_.bad(*e_.get("detector", "gain"), "detector", "gain", "must be > 0 keV per channel");
    c_.calibration.gain_keV = gain;
    c_.calibration.quadratic_keV = 0;
    bool fixed_zero = e_.flag_or("detector", "fixedzero", false);
    bool fixed_gain = e_.flag_or("detector", "fixedgain", false);
    c_.fit.refine_calibration = !(fixed_zero && fixed_gain);
    if (fixed_zero != fixed_gain)
      approx(fmt::format("PyMca refines only the {} of the calibration; opx refines offset and gain together",
                         fixed_zero ? "gain" : "zero"));
    for (const char* k : {"deltazero", "deltagain"}) unmapped("detector", k, "refinement ranges: opx bounds its own");

    // use_limit only tells PyMca's GUI whether xmin/xmax or the plot's zoom
    // set the range; batch fits always use xmin/xmax.
    e_.ignore("fit", {"use_limit"});
    auto xmin = e_.opt_number("fit", "xmin"), xmax = e_.opt_number("fit", "xmax");
    if (!xmin || !xmax) {
      approx(fmt::format("[fit] xmin/xmax missing: opx's default fit range {:g}-{:g} keV is kept",
                         c_.fit.energy_min_keV, c_.fit.energy_max_keV));
      return;
    }
    double lo = std::max(0.0, c_.calibration.energy(*xmin)), hi = c_.calibration.energy(*xmax);
    if (hi <= lo)
      throw e_.bad(*e_.get("fit", "xmax"), "fit", "xmax",
                   fmt::format("channel {:g} ({:.3f} keV) is not above xmin {:g} ({:.3f} keV)", *xmax, hi, *xmin, lo));
    c_.fit.energy_min_keV = tidy(lo);
    c_.fit.energy_max_keV = tidy(hi);
  }

  void detector_width() {
    auto set_in_range = [&](const char* key, double value, double max, double& target) {
      if (value > 0 && value <= max) {
        target = value;
        return;
      }
      throw e_.bad(*e_.get("detector", key), "detector", key,
                   fmt::format("{:g} is outside (0, {:g}] accepted by opx", value, max));
    };
    if (auto noise = e_.opt_number("detector", "noise"))
      set_in_range("noise", *noise, 2.0, c_.detector.noise_fwhm_keV);
    else
      approx(fmt::format("[detector] noise missing: opx's default {:g} keV FWHM kept", c_.detector.noise_fwhm_keV));
    if (auto fano = e_.opt_number("detector", "fano"))
      set_in_range("fano", *fano, 1.0, c_.detector.fano);
    else
      approx(fmt::format("[detector] fano missing: opx's default {:g} kept", c_.detector.fano));
    c_.detector.pair_energy_keV = kPymcaPairEnergy_keV;
    bool fixed_noise = e_.flag_or("detector", "fixednoise", false);
    bool fixed_fano = e_.flag_or("detector", "fixedfano", false);
    c_.fit.refine_width = !(fixed_noise && fixed_fano);
    if (fixed_noise != fixed_fano)
      approx(fmt::format("PyMca refines only the {} of the detector width; opx refines noise and Fano together",
                         fixed_noise ? "Fano factor" : "noise"));
    for (const char* k : {"deltanoise", "deltafano"}) unmapped("detector", k, "refinement ranges: opx bounds its own");
    // detene is the escape energy of PyMca's old escape model (OLDESCAPE = 0
    // in ClassMcaTheory): unused.
    e_.ignore("detector", {"detene"});
    if (const PymcaValue* v = e_.get("detector", "detele")) detele_ = v->text;
    unmapped("detector", "ignoreinputcalibration", "cmx-fit --ignore-file-calibration does this");
  }

  // --- excitation -------------------------------------------------------

  struct Beam {
    double energy_keV, weight;
    bool scatter;
  };

  // The energies ClassMcaTheory.configure() keeps: a scalar energy means
  // weight 1, flag 1, scatter 1; a list keeps the entries whose flag is set
  // and whose energy is not None.
  std::vector<Beam> active_beams() {
    std::vector<Beam> beams;
    const PymcaValue* ev = e_.get("fit", "energy");
    if (!ev || ev->items.empty()) {
      e_.ignore("fit", {"energyweight", "energyflag", "energyscatter"});
      return beams;
    }
    if (!ev->is_list) {
      e_.ignore("fit", {"energyweight", "energyflag", "energyscatter"});
      if (ev->items.front() != "None") beams.push_back({e_.number(*ev, ev->items.front(), "fit", "energy"), 1.0, true});
      return beams;
    }
    auto energies = e_.numbers("fit", "energy");
    auto weights = e_.numbers("fit", "energyweight");
    auto flags = e_.numbers("fit", "energyflag");
    auto scatter = e_.numbers("fit", "energyscatter");
    auto at = [](const std::vector<std::optional<double>>& v, std::size_t i, double fallback) {
      return i < v.size() && v[i] ? *v[i] : fallback;
    };
    for (std::size_t i = 0; i < energies.size(); ++i) {
      if (!energies[i] || at(flags, i, 1.0) == 0) continue;
      if (*energies[i] <= 0) throw e_.bad(*ev, "fit", "energy", fmt::format("energy {:g} keV is not > 0", *energies[i]));
      beams.push_back({*energies[i], at(weights, i, 1.0), at(scatter, i, 1.0) != 0});
    }
    return beams;
  }

  std::optional<xray::Layer> tube_layer(const char* material_key, const char* thickness_key,
                                        const char* density_key) {
    const PymcaValue* m = e_.get("tube", material_key);
    double t_cm = e_.number_or("tube", thickness_key, 0.0);
    double rho = e_.number_or("tube", density_key, 0.0);
    if (!m || m->text.empty() || m->text == "-" || t_cm <= 0) return std::nullopt;
    if (rho <= 0) throw e_.bad(*m, "tube", density_key, "a density > 0 is needed for a layer of non-zero thickness");
    return xray::Layer{material(m->text, *m, "tube", material_key), rho, tidy(t_cm * 1e4)};
  }

  void tube_from_section(const std::string& why) {
    const PymcaValue* anode = e_.get("tube", "anode");
    if (!anode) throw data_error("invalid PyMca configuration", src_, "[tube] has no anode");
    try {
      c_.excitation.anode = xray::element_symbol(xray::atomic_number(anode->text));
    } catch (const Error&) {
      throw e_.bad(*anode, "tube", "anode", fmt::format("'{}' is not an element", anode->text));
    }
    c_.excitation.kind = xray::Excitation::Kind::tube;
    double kv = e_.required("tube", "voltage");
    if (kv <= 0 || kv > 500) throw e_.bad(*e_.get("tube", "voltage"), "tube", "voltage", "must be in (0, 500] kV");
    c_.excitation.voltage_kV = kv;
    c_.excitation.tube_window.clear();
    if (auto w = tube_layer("window", "windowthickness", "windowdensity")) c_.excitation.tube_window.push_back(*w);
    if (auto f = tube_layer("filter1", "filter1thickness", "filter1density")) c_.excitation.tube_window.push_back(*f);
    e_.ignore("tube", {"anodethickness", "anodedensity", "alphax", "alphae", "transmission", "deltaplotting"});
    approx(fmt::format("{}: excitation is the [tube] section's {}; opx computes the tube spectrum itself (Kramers' "
                       "continuum and the anode's lines), not PyMca's Ebel model with its anode thickness, angles "
                       "and transmission-tube settings",
                       why, c_.excitation.describe()));
  }

  // The anode whose K-alpha lines are the strongest listed energy (within
  // 20 eV), for a list of energies written without a [tube] section.
  std::optional<int> anode_of(double energy_keV) const {
    for (int Z = 20; Z <= 56; ++Z)
      for (const auto& l : xray::family_lines(Z, xray::Family::K))
        if ((l.iupac == "KL3" || l.iupac == "KL2") && std::abs(l.energy_keV - energy_keV) <= 0.020) return Z;
    return std::nullopt;
  }

  void excitation() {
    std::vector<Beam> beams = active_beams();
    beams_ = beams;
    const bool has_tube = e_.config().section("tube") != nullptr;
    if (beams.empty()) {
      if (has_tube) {
        tube_from_section("[fit] energy has no active energy");
      } else {
        approx(fmt::format("[fit] energy has no active energy, so PyMca uses line ratios without an excitation; opx "
                           "needs one for L and M line ratios and kept its default ({}): set \"excitation\" to your "
                           "source",
                           c_.excitation.describe()));
      }
      return;
    }
    if (has_tube && beams.size() == 1)
      unmapped_section("tube", "PyMca's GUI uses it only to compute [fit] energy; the fit used the single energy");
    if (beams.size() == 1) {
      c_.excitation.kind = xray::Excitation::Kind::monochromatic;
      c_.excitation.energy_keV = tidy(beams.front().energy_keV);
      return;
    }
    if (has_tube) {
      tube_from_section(fmt::format("[fit] energy lists {} energies", beams.size()));
      return;
    }
    const Beam& strongest = *std::max_element(beams.begin(), beams.end(),
                                              [](const Beam& a, const Beam& b) { return a.weight < b.weight; });
    double e_max = 0;
    for (const auto& b : beams) e_max = std::max(e_max, b.energy_keV);
    if (auto Z = anode_of(strongest.energy_keV)) {
      c_.excitation.kind = xray::Excitation::Kind::tube;
      c_.excitation.anode = xray::element_symbol(*Z);
      double edge = xray::edge_energy_keV(*Z, 0);
      bool continuum_listed = e_max > edge;  // the listed continuum ends at the tube voltage
      c_.excitation.voltage_kV = continuum_listed ? std::ceil(e_max) : std::max(c_.excitation.voltage_kV, 1.5 * edge);
      approx(fmt::format("[fit] energy lists {} energies, the strongest at {:.3f} keV = {} K-alpha: mapped to a {} "
                         "tube at {:g} kV{}; opx computes the tube spectrum itself instead of using the list",
                         beams.size(), strongest.energy_keV, c_.excitation.anode, c_.excitation.anode,
                         c_.excitation.voltage_kV,
                         continuum_listed ? " (the highest listed energy)" : " (assumed: the list gives no voltage)"));
      return;
    }
    c_.excitation.kind = xray::Excitation::Kind::monochromatic;
    c_.excitation.energy_keV = tidy(strongest.energy_keV);
    std::vector<std::string> dropped;
    for (const auto& b : beams)
      if (&b != &strongest) dropped.push_back(fmt::format("{:g} keV (weight {:g})", b.energy_keV, b.weight));
    approx(fmt::format("[fit] energy lists {} energies and no tube: opx takes the strongest, {:g} keV (weight {:g}), "
                       "as a monochromatic beam and leaves out {}",
                       beams.size(), strongest.energy_keV, strongest.weight, join(dropped)));
  }

  // --- attenuators --------------------------------------------------------

  // A PyMca material name as an xraylib formula with the same elemental
  // mass fractions.
  std::string material(const std::string& name, const PymcaValue& where, const std::string& section,
                       const std::string& key) {
    Composition c = composition(name, where, section, key, 0);
    std::string f = formula_text(c);
    xray::check_material(f, fmt::format("{}:{}", src_, where.line));
    return f;
  }

  Composition composition(const std::string& name, const PymcaValue& where, const std::string& section,
                          const std::string& key, int depth) {
    if (depth > 8) throw e_.bad(where, section, key, fmt::format("material '{}' is defined in terms of itself", name));
    // ConfigDict writes a '.' inside a name as "_|_" in the section header.
    std::string escaped = "materials.";
    for (char ch : name) escaped += ch == '.' ? std::string("_|_") : std::string(1, ch);
    if (e_.config().section(escaped)) {
      const PymcaValue* list = e_.get(escaped, "CompoundList");
      const PymcaValue* frac = e_.get(escaped, "CompoundFraction");
      if (!list || !frac || list->items.size() != frac->items.size() || list->items.empty())
        throw data_error("invalid PyMca configuration", src_,
                         fmt::format("[{}] needs CompoundList and CompoundFraction of the same length", escaped));
      std::vector<double> w;
      double total = 0;
      for (const auto& item : frac->items) {
        w.push_back(e_.number(*frac, item, escaped, "CompoundFraction"));
        total += w.back();
      }
      if (total <= 0) throw e_.bad(*frac, escaped, "CompoundFraction", "mass fractions must add up to more than 0");
      Composition mix;  // moles of each element per gram
      for (std::size_t i = 0; i < w.size(); ++i) {
        Composition part = composition(list->items[i], *list, escaped, "CompoundList", depth + 1);
        double m = molar_mass(part);
        for (auto [z, n] : part) add_atoms(mix, z, (w[i] / total) * n / m);
      }
      double atoms = 0;
      for (auto [z, n] : mix) atoms += n;
      for (auto& [z, n] : mix) n *= 100.0 / atoms;
      return mix;
    }
    Composition c;
    std::size_t pos = 0;
    if (!parse_formula(name, pos, c, 0) || pos != name.size())
      throw e_.bad(where, section, key,
                   fmt::format("material '{}' is neither a chemical formula nor defined in a [materials.{}] section",
                               name, name));
    return c;
  }

  void attenuators() {
    const PymcaSection* att = e_.config().section("attenuators");
    bool detector_seen = false;
    if (att) {
      for (const auto& [name, v] : att->entries) {
        e_.get("attenuators", name);
        const std::string up = upper(name);
        if (v.items.size() < 4)
          throw e_.bad(v, "attenuators", name, "expected: active, material, density, thickness[, opening fraction]");
        bool active = e_.number(v, v.items[0], "attenuators", name) != 0;
        if (up == "MATRIX") {
          matrix_ = &v;
          if (active)
            out_.unmapped.push_back(fmt::format(
                "[attenuators] Matrix = {}: the sample matrix (and [multilayer]); opx's line ratios are those of "
                "a thin sample, matrix effects belong to quantification (cmx-quant)",
                v.items[1]));
          continue;
        }
        if (!active) continue;  // ClassMcaTheory skips disabled attenuators
        const std::string& mat = v.items[1];
        double density = e_.number(v, v.items[2], "attenuators", name);
        double thickness_cm = e_.number(v, v.items[3], "attenuators", name);
        if (mat == "-" || thickness_cm <= 0) continue;  // nothing in the path
        if (density <= 0) throw e_.bad(v, "attenuators", name, "an active layer needs a density > 0");
        double opening = v.items.size() > 4 ? e_.number(v, v.items[4], "attenuators", name) : 1.0;
        if (up == "DETECTOR") {
          detector_seen = true;
          c_.detector.material = material(mat, v, "attenuators", name);
          c_.detector.density_g_cm3 = density;
          c_.detector.thickness_mm = tidy(thickness_cm * 10.0);
          if (!detele_.empty() && lower(detele_) != lower(c_.detector.material))
            approx(fmt::format("[detector] detele = {} (escape peaks) differs from the Detector attenuator {}: opx "
                               "takes both from {}",
                               detele_, mat, c_.detector.material));
          continue;
        }
        xray::Layer layer{material(mat, v, "attenuators", name), density, tidy(thickness_cm * 1e4)};
        if (up.rfind("BEAMFILTER", 0) == 0) {
          // Between source and sample. (Without a matrix ClassMcaTheory also
          // multiplies the fluorescence lines by its transmission, as if it
          // were on the detector side; opx keeps the physical placement.)
          if (c_.excitation.kind == xray::Excitation::Kind::tube) {
            c_.excitation.tube_window.push_back(layer);
            approx(fmt::format("[attenuators] {} ({} {:g} um) added to the tube window", name, layer.material,
                               layer.thickness_um));
          } else {
            out_.unmapped.push_back(fmt::format(
                "[attenuators] {} ({} {:g} um): a filter in a monochromatic beam changes only its intensity", name,
                layer.material, layer.thickness_um));
          }
          continue;
        }
        if (std::abs(opening - 1.0) > 1e-10) {
          out_.unmapped.push_back(fmt::format(
              "[attenuators] {}: covers only a fraction {:g} of the detector (PyMca's \"funny\" filter); opx has "
              "no partial attenuators and left it out",
              name, opening));
          continue;
        }
        const std::string low = lower(name);
        if (low == "window" || low == "deadlayer" || low == "contact")
          c_.detector.window.push_back(layer);
        else
          c_.attenuators.push_back(layer);
      }
    }
    if (!detector_seen) {
      if (!detele_.empty()) {
        try {
          c_.detector.material = xray::element_symbol(xray::atomic_number(detele_));
        } catch (const Error&) {
          throw e_.bad(*e_.get("detector", "detele"), "detector", "detele",
                       fmt::format("'{}' is not an element", detele_));
        }
      }
      c_.detector.density_g_cm3 = xray::element_density(xray::atomic_number(c_.detector.material));
      approx(fmt::format("no active Detector attenuator: PyMca then counts every photon that reaches the crystal; "
                         "opx models the crystal's absorption and uses {:g} mm of {}: set detector.thickness_mm",
                         c_.detector.thickness_mm, c_.detector.material));
    }
  }

  void scatter() {
    // Scattering angle of the Compton peak: alphaIn + alphaOut of the Matrix
    // entry, or its explicit angle (fields 7 and 8); 45 + 45 when absent.
    double angle = 90.0;
    if (matrix_ && matrix_->items.size() >= 6) {
      angle = e_.number(*matrix_, matrix_->items[4], "attenuators", "Matrix") +
              e_.number(*matrix_, matrix_->items[5], "attenuators", "Matrix");
      if (matrix_->items.size() >= 8 && e_.number(*matrix_, matrix_->items[6], "attenuators", "Matrix") != 0)
        angle = e_.number(*matrix_, matrix_->items[7], "attenuators", "Matrix");
    }
    bool scatterflag = e_.flag_or("fit", "scatterflag", false);
    std::vector<const Beam*> scattered;
    for (const auto& b : beams_)
      if (b.scatter && b.energy_keV > 0.2) scattered.push_back(&b);  // ClassMcaTheory: scatter only above 0.2 keV
    bool on = scatterflag && !scattered.empty();
    c_.scatter.rayleigh = c_.scatter.compton = on;
    if (!on) return;
    if (angle <= 0 || angle > 180)
      throw e_.bad(*matrix_, "attenuators", "Matrix", fmt::format("scattering angle {:g} deg is outside (0, 180]", angle));
    c_.scatter.angle_deg = tidy(angle);
    if (beams_.size() > 1)
      approx(fmt::format("PyMca fits a Rayleigh and a Compton peak of free area for each of {} scattered energies; "
                         "opx fits one Rayleigh and one Compton group of the source's lines",
                         scattered.size()));
    approx(fmt::format("PyMca's Compton peaks have the detector's width only; opx adds a Compton broadening of {:g} "
                       "keV FWHM and refines it",
                       c_.scatter.compton_extra_fwhm_keV));
  }

  // PyMca's hypermet (SpecfitFuns.c, ahypermet/fastahypermet, github.com/
  // vasole/pymca PyMca5/PyMcaMath/fitting/specfit/SpecfitFuns.c), with x the
  // channel energy (keV), A the Gaussian area, sigma = FWHM/2.3548:
  //   tail(x) = A r/(2 b) exp((x-x0)/b + sigma^2/(2 b^2)) erfc((x-x0)/(sqrt2 sigma) + sigma/(sqrt2 b))
  //   step(x) = h A/(sigma sqrt(2 pi)) erfc((x-x0)/(sqrt2 sigma)) / 2
  // where r = st_arearatio or lt_arearatio, h = step_heightratio and
  // b = st_sloperatio or lt_sloperatio *as given*: ClassMcaTheory.mcatheory()
  // passes the "slope ratios" to ahypermet unscaled, so they are decay
  // lengths in keV, the same for every line (checked numerically against
  // PyMca 5.8's compiled SpecfitFuns). opx's tails are the same functions
  // with b = slope_ratio * sigma(E), i.e. scaled with the line's width; the
  // area ratio and step height mean the same in both. A constant b cannot be
  // written exactly as slope * sigma(E): the conversion holds at a reference
  // energy, the median of the configured elements' main lines in the fit
  // range, and the warning states how far it drifts across the range.
  void peak_shape() {
    bool hypermet_flag_given = e_.get("fit", "hypermetflag") != nullptr;
    int hyper = static_cast<int>(e_.number_or("fit", "hypermetflag", 1));
    int fitfunction = static_cast<int>(e_.number_or("fit", "fitfunction", hyper ? 0 : 1));
    const bool pseudo_voigt = fitfunction != 0 || hyper == 0;  // ClassMcaTheory: HYPERMET = 0 -> apvoigt
    static const char* all_shape_keys[] = {
        "st_arearatio", "st_sloperatio", "lt_arearatio", "lt_sloperatio", "step_heightratio", "eta_factor",
        "fixedst_arearatio", "fixedst_sloperatio", "fixedlt_arearatio", "fixedlt_sloperatio", "fixedstep_heightratio",
        "fixedeta_factor", "deltast_arearatio", "deltast_sloperatio", "deltalt_arearatio", "deltalt_sloperatio",
        "deltastep_heightratio", "deltaeta_factor"};
    c_.peak_shape = PeakShape{};  // no tails, no step
    if (pseudo_voigt) {
      double eta = e_.number_or("peakshape", "eta_factor", 0.02);
      for (const char* k : all_shape_keys) e_.get("peakshape", k);
      approx(fmt::format("pseudo-Voigt peaks ({}, eta_factor {:g}) have no opx equivalent: Gaussian peaks used",
                         hypermet_flag_given && hyper == 0 ? "hypermetflag 0" : "fitfunction 1", eta));
      return;
    }
    const bool st = (hyper >> 1) & 1, lt = (hyper >> 2) & 1, step = (hyper >> 3) & 1;
    bool refine = false;
    auto ratio = [&](const char* key, double max) {
      double v = e_.required("peakshape", key);
      if (v < 0 || v > max)
        throw e_.bad(*e_.get("peakshape", key), "peakshape", key, fmt::format("{:g} is outside [0, {:g}]", v, max));
      return v;
    };
    auto refined = [&](std::initializer_list<const char*> keys) {
      for (const char* k : keys) {
        bool fixed = e_.flag_or("peakshape", fmt::format("fixed{}", k), false);
        if (!fixed) {
          refine = true;
          unmapped("peakshape", fmt::format("delta{}", k), "refinement ranges: opx bounds its own");
        }
      }
    };
    const double e_ref = reference_energy();
    const double s_ref = sigma_keV(e_ref);
    std::vector<std::string> slopes;
    auto slope = [&](const char* key) {
      double b = e_.required("peakshape", key);
      if (b <= 0) throw e_.bad(*e_.get("peakshape", key), "peakshape", key, "a tail slope must be > 0 keV");
      slopes.push_back(fmt::format("{} {:g} keV -> {:.4g} x sigma", key, b, b / s_ref));
      return tidy(b / s_ref);
    };
    if (st) {
      c_.peak_shape.short_tail_area = ratio("st_arearatio", 1.0);
      c_.peak_shape.short_tail_slope = slope("st_sloperatio");
      refined({"st_arearatio", "st_sloperatio"});
    }
    if (lt) {
      c_.peak_shape.long_tail_area = ratio("lt_arearatio", 1.0);
      c_.peak_shape.long_tail_slope = slope("lt_sloperatio");
      refined({"lt_arearatio", "lt_sloperatio"});
    }
    if (step) {
      c_.peak_shape.step_height = ratio("step_heightratio", 1.0);
      refined({"step_heightratio"});
    }
    for (const char* k : all_shape_keys) e_.get("peakshape", k);  // the rest is off in PyMca too
    c_.fit.refine_tails = refine;
    if (!slopes.empty()) {
      double lo = c_.fit.energy_min_keV, hi = c_.fit.energy_max_keV;
      approx(fmt::format("tail slopes: PyMca's are decay lengths in keV, equal for every line; opx's are multiples of "
                         "the line's sigma. Converted at {:.2f} keV (sigma {:.4f} keV): {}; across the fit range "
                         "{:.2f}-{:.2f} keV opx's decay lengths are {:.2f}-{:.2f} times PyMca's",
                         e_ref, s_ref, join(slopes, "; "), lo, hi, sigma_keV(std::max(lo, 0.1)) / s_ref,
                         sigma_keV(hi) / s_ref));
    }
  }

  double reference_energy() const {
    std::vector<double> e;
    for (const auto& el : c_.elements)
      for (auto f : el.families) {
        double x = main_line_keV(xray::atomic_number(el.element), f);
        if (x >= c_.fit.energy_min_keV && x <= c_.fit.energy_max_keV) e.push_back(x);
      }
    if (e.empty()) return 0.5 * (c_.fit.energy_min_keV + c_.fit.energy_max_keV);
    std::sort(e.begin(), e.end());
    return e.size() % 2 ? e[e.size() / 2] : 0.5 * (e[e.size() / 2 - 1] + e[e.size() / 2]);
  }

  void background() {
    const double gain = c_.calibration.gain_keV;
    const bool strip = e_.flag_or("fit", "stripflag", false);
    const int algorithm = static_cast<int>(e_.number_or("fit", "stripalgorithm", 0));
    const int continuum = static_cast<int>(e_.number_or("fit", "continuum", 0));
    static const char* continuum_names[] = {"none", "constant", "linear", "parabolic", "linear polynomial",
                                            "exponential polynomial"};
    if (continuum < 0 || continuum > 5)
      throw e_.bad(*e_.get("fit", "continuum"), "fit", "continuum", fmt::format("{} is not 0-5", continuum));
    Background& b = c_.background;
    b = Background{};
    if (strip) {
      b.method = BackgroundMethod::snip;
      // PyMca's SNIP (SpecfitFuns.snip1d) clips the counts themselves; opx's
      // clips their log-log-square-root transform, which follows a steep
      // continuum better; the window in keV is the same.
      double width_ch = e_.number_or("fit", "snipwidth", 30);  // ClassMcaTheory's default
      if (width_ch < 1) throw e_.bad(*e_.get("fit", "snipwidth"), "fit", "snipwidth", "must be >= 1 channel");
      b.snip_width_keV = tidy(width_ch * gain);
      if (algorithm == 1) {
        e_.ignore("fit", {"stripwidth", "stripiterations", "stripconstant"});
      } else {
        approx(fmt::format("PyMca's iterative strip background (stripwidth {:g}, {:g} iterations, stripconstant "
                           "{:g}) replaced by SNIP with a {:g}-channel ({:g} keV) window",
                           e_.number_or("fit", "stripwidth", 1), e_.number_or("fit", "stripiterations", 20000),
                           e_.number_or("fit", "stripconstant", 1.0), width_ch, b.snip_width_keV));
      }
      // Before clipping PyMca smooths with a Savitzky-Golay filter of
      // stripfilterwidth points (5 by default); opx with a moving average of
      // the same half-width.
      double filter = e_.number_or("fit", "stripfilterwidth", 5);
      int half = std::max(0, static_cast<int>(filter) - 1) / 2;
      b.smoothing_keV = tidy(half * gain);
      if (half > 0)
        approx(fmt::format("stripfilterwidth {:g} (Savitzky-Golay smoothing before stripping) mapped to a moving "
                           "average of half-width {} channels",
                           filter, half));
      if (e_.flag_or("fit", "stripanchorsflag", false)) {
        unmapped("fit", "stripanchorslist", "strip anchors: opx's SNIP has none");
      } else {
        e_.ignore("fit", {"stripanchorslist"});
      }
      if (continuum > 0) {
        b.snip_linear_offset = true;
        if (continuum != 2)
          approx(fmt::format("the {} continuum fitted on top of the stripped background becomes opx's constant + "
                             "linear offset",
                             continuum_names[continuum]));
      }
      if (continuum == 4) e_.ignore("fit", {"linpolorder"});
      if (continuum == 5) e_.ignore("fit", {"exppolorder"});
    } else {
      e_.ignore("fit", {"stripalgorithm", "snipwidth", "stripwidth", "stripiterations", "stripconstant",
                        "stripfilterwidth", "stripanchorsflag", "stripanchorslist"});
      auto order_of = [&](const char* key) {
        int n = static_cast<int>(e_.number_or("fit", key, 6));
        if (n < 0) throw e_.bad(*e_.get("fit", key), "fit", key, "must be >= 0");
        if (n > 12) approx(fmt::format("[fit] {} {} reduced to opx's highest order, 12", key, n));
        return std::min(n, 12);
      };
      switch (continuum) {
        case 0: b.method = BackgroundMethod::none; break;
        case 1: case 2: case 3:
          b.method = BackgroundMethod::polynomial;
          b.polynomial_order = continuum - 1;
          break;
        case 4:
          b.method = BackgroundMethod::polynomial;
          b.polynomial_order = order_of("linpolorder");
          break;
        default:
          b.method = BackgroundMethod::polynomial;
          b.polynomial_order = order_of("exppolorder");
          approx(fmt::format("PyMca's exponential-polynomial continuum replaced by a polynomial of order {}",
                             b.polynomial_order));
      }
    }
    // Orders of continua that are not selected: ignored by PyMca too.
    e_.ignore("fit", {"linpolorder", "exppolorder"});
  }

  void fit_settings() {
    c_.fit.escape = e_.flag_or("fit", "escapeflag", true);
    for (const char* k : {"ethreshold", "ithreshold", "nthreshold"}) {
      if (c_.fit.escape)
        unmapped("detector", k, "escape-line thresholds: opx keeps escape lines above 1e-4 of the parent");
      else
        e_.ignore("detector", {k});
    }
    c_.fit.pileup = e_.flag_or("fit", "sumflag", false);
    for (const char* k : {"sum", "deltasum", "fixedsum"}) {
      if (c_.fit.pileup)
        unmapped("detector", k, "pile-up factor: opx fits the pile-up amplitude freely");
      else
        e_.ignore("detector", {k});
    }
    if (auto it = e_.opt_number("fit", "maxiter"))
      c_.fit.max_iterations = std::clamp(static_cast<int>(*it), 1, 1000);
    c_.fit.poisson_weights = e_.flag_or("fit", "fitweight", true);
    if (e_.flag_or("fit", "linearfitflag", false)) {
      c_.fit.refine_calibration = c_.fit.refine_width = c_.fit.refine_tails = c_.fit.refine_compton = false;
    }
    unmapped("fit", "deltachi", "convergence threshold: opx has its own stopping rule");
    unmapped("fit", "deltaonepeak", "PyMca merges lines closer than this; opx keeps every line");
    if (e_.flag_or("fit", "strategyflag", false)) {
      const PymcaValue* s = e_.get("fit", "strategy");
      out_.unmapped.push_back(fmt::format("[fit] strategy {}: iterative matrix-composition fitting (quantification)",
                                          s ? s->text : "?"));
    } else if (const PymcaValue* s = e_.get("fit", "strategy")) {
      e_.use_section(s->text);  // the settings of a strategy that is off
    }
  }

  void other_sections() {
    for (const auto& s : e_.config().sections) {
      const std::string& n = s.name;
      if (n == "materials" || n.rfind("materials.", 0) == 0) {
        e_.use_section(n);  // a material library; the materials used are mapped above
      } else if (n == "multilayer") {
        e_.use_section(n);  // part of the matrix, reported with it when active
      } else if (n == "concentrations") {
        unmapped_section(n, "quantification settings: see cmx-quant");
      } else if (n == "xrfmc" || n.rfind("xrfmc.", 0) == 0) {
        unmapped_section(n, "Monte Carlo (XMI-MSIM) correction settings");
      } else if (n == "userattenuators" || n.rfind("userattenuators.", 0) == 0) {
        const PymcaValue* use = s.find("use");
        e_.use_section(n);
        if (use && parse_number(use->text).value_or(0) != 0)
          out_.unmapped.push_back(fmt::format("[{}]: a user-defined transmission table; opx has none", n));
      }
    }
  }

  void report_leftovers() {
    for (const auto& s : e_.config().sections)
      for (const auto& [k, v] : s.entries)
        if (!e_.used(s.name, k)) unmapped_[{s.name, "no opx equivalent"}].push_back(k);
    for (const auto& [where, keys] : unmapped_)
      out_.unmapped.push_back(fmt::format("[{}] {} ({})", where.first, join(keys), where.second));
  }

  Entries e_;
  std::string src_;
  FitConfig c_;
  PymcaImport out_;
  std::string detele_;
  std::vector<Beam> beams_;
  const PymcaValue* matrix_ = nullptr;
  std::map<std::pair<std::string, std::string>, std::vector<std::string>> unmapped_;
};

}  // namespace

PymcaImport import_pymca_config(const PymcaConfig& cfg) { return Importer(cfg).run(); }

PymcaImport import_pymca_file(const std::string& path) {
  std::string text;
  if (path == "-") {
    text.assign(std::istreambuf_iterator<char>(std::cin), std::istreambuf_iterator<char>());
  } else {
    if (!std::filesystem::exists(path))
      throw input_missing("cannot read PyMca configuration", path, "no such file");
    std::ifstream in(path, std::ios::binary);
    if (!in) throw input_missing("cannot read PyMca configuration", path, "cannot open the file");
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) throw io_error("cannot read PyMca configuration", path, "read failed");
  }
  return import_pymca_config(parse_pymca_config(text, path == "-" ? "<stdin>" : path));
}

int run_import_pymca(const std::string& cfg_path, const std::string& output) {
  PymcaImport r = import_pymca_file(cfg_path);
  for (const auto& a : r.approximations) log::warn("{}: approximated: {}", cfg_path, a);
  for (const auto& u : r.unmapped) log::warn("{}: not mapped: {}", cfg_path, u);
  const std::string text = r.config.dump(2) + "\n";
  if (output.empty() || output == "-") {
    std::cout << text;
    std::cout.flush();
  } else {
    write_file_atomic(output, text);
    log::info("wrote {}", output);
  }
  return 0;
}

}  // namespace opx::xrf
