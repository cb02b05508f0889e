#include "io/spectrum_file.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <set>

#include <fmt/format.h>

#include "core/atomic_file.hpp"
#include "core/error.hpp"
#include "core/text.hpp"
#include "core/log.hpp"

namespace opx::io {
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// ---------------------------------------------------------------------------
// Text helpers

constexpr std::size_t max_file_bytes = std::size_t{256} << 20;  // no single spectrum is this large

using text::lower;
using text::trim;
using text::upper;

bool is_blank(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }




bool starts_with_icase(std::string_view s, std::string_view prefix) {
  return s.size() >= prefix.size() && lower(s.substr(0, prefix.size())) == lower(prefix);
}

std::string_view strip_bom(std::string_view s) {
  if (s.size() >= 3 && static_cast<unsigned char>(s[0]) == 0xEF && static_cast<unsigned char>(s[1]) == 0xBB &&
      static_cast<unsigned char>(s[2]) == 0xBF)
    s.remove_prefix(3);
  return s;
}

// Well-formed UTF-8 after the Unicode standard's table 3-7 (no overlong
// forms, no surrogates), the same rule nlohmann::json applies when dumping.
bool valid_utf8(std::string_view s) {
  std::size_t i = 0;
  const auto byte = [&s](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  while (i < s.size()) {
    const unsigned char c = byte(i);
    if (c < 0x80) {
      ++i;
      continue;
    }
    std::size_t extra = 0;
    unsigned char lo = 0x80, hi = 0xBF;  // range of the first continuation byte
    if (c >= 0xC2 && c <= 0xDF) extra = 1;
    else if (c == 0xE0) extra = 2, lo = 0xA0;
    else if ((c >= 0xE1 && c <= 0xEC) || c == 0xEE || c == 0xEF) extra = 2;
    else if (c == 0xED) extra = 2, hi = 0x9F;
    else if (c == 0xF0) extra = 3, lo = 0x90;
    else if (c >= 0xF1 && c <= 0xF3) extra = 3;
    else if (c == 0xF4) extra = 3, hi = 0x8F;
    else return false;
    if (s.size() - i <= extra) return false;
    if (byte(i + 1) < lo || byte(i + 1) > hi) return false;
    for (std::size_t k = 2; k <= extra; ++k)
      if (byte(i + k) < 0x80 || byte(i + k) > 0xBF) return false;
    i += extra + 1;
  }
  return true;
}

void append_utf8(std::string& out, std::uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// Amptek and Bruker software run on Windows and write single-byte text
// (Bruker declares WINDOWS-1252; DppMCA writes "°C" in its status block).
// nlohmann::json refuses invalid UTF-8 when dumping, so every string that goes
// into metadata passes through here: valid UTF-8 is kept, anything else is
// read as Windows-1252.
std::string to_utf8(std::string_view s) {
  if (valid_utf8(s)) return std::string(s);
  // Windows-1252 0x80..0x9F; 0 marks the five unassigned bytes.
  static constexpr std::array<std::uint16_t, 32> cp1252 = {
      0x20AC, 0,      0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
      0x2039, 0x0152, 0,      0x017D, 0,      0,      0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
      0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0,      0x017E, 0x0178};
  std::string out;
  out.reserve(s.size() + 8);
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    std::uint32_t cp = c;
    if (c >= 0x80 && c <= 0x9F) cp = cp1252[c - 0x80] ? cp1252[c - 0x80] : 0xFFFD;
    append_utf8(out, cp);
  }
  return out;
}

// A short, printable rendering of file content for messages.
std::string shown(std::string_view s) {
  constexpr std::size_t max_len = 40;
  std::string out = "'";
  for (std::size_t i = 0; i < s.size() && i < max_len; ++i) {
    auto c = static_cast<unsigned char>(s[i]);
    out += (c >= 0x20 && c < 0x7F) ? static_cast<char>(c) : '?';
  }
  if (s.size() > max_len) out += "...";
  return out + "'";
}

// Splits text into lines, accepting \n, \r\n and a lone \r (old Mac files).
class LineReader {
 public:
  explicit LineReader(std::string_view text) : text_(text) {}
  bool next(std::string_view& line) {
    if (pos_ >= text_.size()) return false;
    std::size_t end = pos_;
    while (end < text_.size() && text_[end] != '\n' && text_[end] != '\r') ++end;
    line = text_.substr(pos_, end - pos_);
    if (end < text_.size() && text_[end] == '\r' && end + 1 < text_.size() && text_[end + 1] == '\n') ++end;
    pos_ = end + 1;
    ++number_;
    return true;
  }
  int number() const { return number_; }

 private:
  std::string_view text_;
  std::size_t pos_ = 0;
  int number_ = 0;
};

enum class Parsed { ok, empty, not_number, not_finite };

// Parses a whole token as a decimal number (no trailing garbage). With
// `decimal_comma`, "1,5" is read as 1.5 (European locales).
Parsed parse_double(std::string_view s, double& out, bool decimal_comma = false) {
  s = trim(s);
  if (s.empty()) return Parsed::empty;
  std::string buffer;
  if (decimal_comma && s.find(',') != std::string_view::npos && s.find('.') == std::string_view::npos) {
    buffer.assign(s);
    std::replace(buffer.begin(), buffer.end(), ',', '.');
    s = buffer;
  }
  if (s.front() == '+') s.remove_prefix(1);
  if (s.empty()) return Parsed::not_number;
  double v = 0;
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (end != s.data() + s.size()) return Parsed::not_number;
  if (ec == std::errc::result_out_of_range) return Parsed::not_finite;
  if (ec != std::errc()) return Parsed::not_number;
  if (!std::isfinite(v)) return Parsed::not_finite;
  out = v;
  return Parsed::ok;
}

// Checks one channel's count; returns why it is bad, or "" when it is good.
std::string check_count(std::string_view token, double& value, bool decimal_comma = false) {
  switch (parse_double(token, value, decimal_comma)) {
    case Parsed::ok: break;
    case Parsed::empty: return "count is empty";
    case Parsed::not_number: return fmt::format("count {} is not a number", shown(trim(token)));
    case Parsed::not_finite: return fmt::format("count {} is not a finite number", shown(trim(token)));
  }
  if (value < 0) return fmt::format("count {} is negative: counts are never below zero", shown(trim(token)));
  if (value == 0) value = 0;  // -0 -> 0
  return {};
}

// A number found in metadata: kept as a number when it is one.
json metadata_value(std::string_view text) {
  double v = 0;
  if (parse_double(text, v) == Parsed::ok) {
    // Whole numbers (serials, frequencies, channel counts) stay integers.
    if (std::nearbyint(v) == v && std::fabs(v) < 9.0e15) return static_cast<std::int64_t>(v);
    return v;
  }
  return to_utf8(trim(text));
}

std::string format_number(double v) {
  if (std::nearbyint(v) == v && std::fabs(v) < 9.0e15) return fmt::format("{}", static_cast<long long>(v));
  return fmt::format("{}", v);
}

// "YYYY-MM-DDTHH:MM:SS" from numbers, or "" when they are not a date.
std::string iso_time(int year, int month, int day, int hour, int minute, int second) {
  if (year < 1900 || year > 9999 || month < 1 || month > 12 || day < 1 || day > 31 || hour < 0 ||
      hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 60)
    return {};
  return fmt::format("{:04}-{:02}-{:02}T{:02}:{:02}:{:02}", year, month, day, hour, minute, second);
}

// Reads up to `n` integers separated by any of `separators`; returns how many.
int scan_ints(std::string_view s, std::string_view separators, int* out, int n) {
  int count = 0;
  std::size_t i = 0;
  while (count < n) {
    while (i < s.size() && separators.find(s[i]) != std::string_view::npos) ++i;
    if (i >= s.size()) break;
    int v = 0;
    auto [end, ec] = std::from_chars(s.data() + i, s.data() + s.size(), v);
    if (ec != std::errc()) return -1;
    i = static_cast<std::size_t>(end - s.data());
    out[count++] = v;
    if (i < s.size() && separators.find(s[i]) == std::string_view::npos) return -1;
  }
  while (i < s.size() && separators.find(s[i]) != std::string_view::npos) ++i;
  return i == s.size() ? count : -1;
}

// Amptek START_TIME: "MM/DD/YYYY HH:MM:SS" (DppMCA writes the US order).
std::string iso_from_amptek(std::string_view s) {
  int v[6];
  if (scan_ints(trim(s), "/ :", v, 6) != 6) return {};
  return iso_time(v[2], v[0], v[1], v[3], v[4], v[5]);
}

// Bruker Date "D.M.YYYY" (or ISO "YYYY-MM-DD") and Time "H:M:S".
std::string iso_from_bruker(std::string_view date, std::string_view time) {
  int d[3], t[3] = {0, 0, 0};
  int nd = scan_ints(trim(date), ".", d, 3);
  int y, m, day;
  if (nd == 3) {
    y = d[2], m = d[1], day = d[0];
  } else if (scan_ints(trim(date), "-", d, 3) == 3) {
    y = d[0], m = d[1], day = d[2];
  } else {
    return {};
  }
  if (!trim(time).empty() && scan_ints(trim(time), ":", t, 3) != 3) return {};
  return iso_time(y, m, day, t[0], t[1], t[2]);
}

constexpr std::array<const char*, 104> element_symbols = {
    "",   "H",  "He", "Li", "Be", "B",  "C",  "N",  "O",  "F",  "Ne", "Na", "Mg", "Al", "Si",
    "P",  "S",  "Cl", "Ar", "K",  "Ca", "Sc", "Ti", "V",  "Cr", "Mn", "Fe", "Co", "Ni", "Cu",
    "Zn", "Ga", "Ge", "As", "Se", "Br", "Kr", "Rb", "Sr", "Y",  "Zr", "Nb", "Mo", "Tc", "Ru",
    "Rh", "Pd", "Ag", "Cd", "In", "Sn", "Sb", "Te", "I",  "Xe", "Cs", "Ba", "La", "Ce", "Pr",
    "Nd", "Pm", "Sm", "Eu", "Gd", "Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Hf", "Ta", "W",
    "Re", "Os", "Ir", "Pt", "Au", "Hg", "Tl", "Pb", "Bi", "Po", "At", "Rn", "Fr", "Ra", "Ac",
    "Th", "Pa", "U",  "Np", "Pu", "Am", "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr"};

// ---------------------------------------------------------------------------
// Least-squares polynomial E(ch) of degree 1 or 2, for calibration points and
// energy columns. The abscissa is centred and scaled before forming the
// normal equations (channels reach 8192, ch^4 ~ 5e15), then the coefficients
// are expanded back to powers of ch.
struct PolyFit {
  bool ok = false;
  std::array<double, 3> c{0, 0, 0};  // E = c0 + c1 ch + c2 ch^2
  double max_residual = 0;
  std::size_t worst = 0;  // index of the point with the largest residual
};

PolyFit fit_polynomial(const std::vector<double>& x, const std::vector<double>& y, int degree) {
  PolyFit fit;
  const std::size_t n = x.size(), m = static_cast<std::size_t>(degree) + 1;
  if (n < m) return fit;
  double mean = 0;
  for (double v : x) mean += v;
  mean /= static_cast<double>(n);
  double scale = 0;
  for (double v : x) scale = std::max(scale, std::fabs(v - mean));
  if (scale == 0) return fit;
  double a[3][4] = {};
  for (std::size_t i = 0; i < n; ++i) {
    const double t = (x[i] - mean) / scale;
    const double p[3] = {1, t, t * t};
    for (std::size_t r = 0; r < m; ++r) {
      for (std::size_t c = 0; c < m; ++c) a[r][c] += p[r] * p[c];
      a[r][m] += p[r] * y[i];
    }
  }
  for (std::size_t col = 0; col < m; ++col) {  // Gaussian elimination, partial pivoting
    std::size_t pivot = col;
    for (std::size_t r = col + 1; r < m; ++r)
      if (std::fabs(a[r][col]) > std::fabs(a[pivot][col])) pivot = r;
    if (std::fabs(a[pivot][col]) < 1e-12 * static_cast<double>(n)) return fit;  // points too few / degenerate
    for (std::size_t c = 0; c <= m; ++c) std::swap(a[col][c], a[pivot][c]);
    for (std::size_t r = 0; r < m; ++r) {
      if (r == col) continue;
      const double f = a[r][col] / a[col][col];
      for (std::size_t c = col; c <= m; ++c) a[r][c] -= f * a[col][c];
    }
  }
  double b[3] = {0, 0, 0};
  for (std::size_t r = 0; r < m; ++r) b[r] = a[r][m] / a[r][r];
  // E = b0 + b1 (x-mean)/s + b2 (x-mean)^2/s^2
  fit.c[2] = b[2] / (scale * scale);
  fit.c[1] = b[1] / scale - 2 * b[2] * mean / (scale * scale);
  fit.c[0] = b[0] - b[1] * mean / scale + b[2] * mean * mean / (scale * scale);
  for (std::size_t i = 0; i < n; ++i) {
    const double e = fit.c[0] + fit.c[1] * x[i] + fit.c[2] * x[i] * x[i];
    const double r = std::fabs(e - y[i]);
    if (r > fit.max_residual) fit.max_residual = r, fit.worst = i;
  }
  fit.ok = std::isfinite(fit.c[0]) && std::isfinite(fit.c[1]) && std::isfinite(fit.c[2]);
  return fit;
}

// Every reader ends with a calibration it can vouch for: finite, and energy
// rising with channel over the whole spectrum.
std::string calibration_problem(const Spectrum& s) {
  if (!s.has_calibration()) return {};
  const double a = *s.offset_keV, b = *s.gain_keV_per_channel, c = s.quadratic_keV.value_or(0.0);
  if (!std::isfinite(a) || !std::isfinite(b) || !std::isfinite(c)) return "calibration coefficients are not finite";
  // dE/dch = b + 2 c ch must stay > 0 on [0, n-1].
  const double last = s.counts.empty() ? 0.0 : static_cast<double>(s.counts.size() - 1);
  if (b <= 0 || b + 2 * c * last <= 0)
    return fmt::format("energy calibration (offset {} keV, gain {} keV/channel{}) does not rise with channel",
                       a, b, s.quadratic_keV ? fmt::format(", quadratic {} keV/channel^2", c) : "");
  return {};
}

// ---------------------------------------------------------------------------
// Amptek .mca

class AmptekReader {
 public:
  explicit AmptekReader(const std::string& source) : source_(source) {}

  Spectrum read(std::string_view text) {
    Spectrum s;
    json header = json::object(), configuration = json::object(), status = json::object();
    json roi = json::array();
    std::vector<double> cal_channels, cal_energies;
    std::string cal_label;
    int cal_label_line = 0;

    enum class Section { before, header, calibration, roi, data, after, configuration, status, other };
    Section section = Section::before;
    bool data_seen = false, data_ended = false;
    int data_line = 0;

    LineReader lines(text);
    std::string_view raw;
    while (lines.next(raw)) {
      const int n = lines.number();
      const std::string_view line = trim(raw);
      if (line.empty()) continue;

      if (section == Section::before) {
        if (upper(line) != "<<PMCA SPECTRUM>>")
          fail(n, fmt::format("the file starts with {}, not <<PMCA SPECTRUM>>: this is not an Amptek .mca "
                              "file (if it is a plain column of counts, read it as CSV, e.g. named .txt)",
                              shown(line)));
        section = Section::header;
        continue;
      }

      if (line.size() >= 4 && line.substr(0, 2) == "<<" && line.substr(line.size() - 2) == ">>") {
        const std::string name = upper(trim(line.substr(2, line.size() - 4)));
        if (section == Section::data && name != "END")
          fail(n, fmt::format("<<{}>> begins before <<END>> closed the <<DATA>> section of line {}: "
                              "the counts are cut short",
                              name, data_line));
        if (name == "PMCA SPECTRUM") {
          fail(n, "a second <<PMCA SPECTRUM>> begins here: the file holds more than one spectrum");
        } else if (name == "DATA") {
          if (data_seen) fail(n, fmt::format("a second <<DATA>> section (the first is at line {})", data_line));
          data_seen = true;
          data_line = n;
          section = Section::data;
        } else if (name == "END") {
          if (!data_seen) fail(n, "<<END>> comes before any <<DATA>> section");
          if (section != Section::data) fail(n, "a second <<END>>");
          data_ended = true;
          section = Section::after;
        } else if (name == "CALIBRATION") {
          section = Section::calibration;
          cal_label_line = n;  // until a LABEL line names the unit
        } else if (name == "ROI") {
          section = Section::roi;
        } else if (name.size() > 4 && name.substr(name.size() - 4) == " END") {
          section = Section::after;  // "<<DP5 CONFIGURATION END>>", "<<DPP STATUS END>>"
        } else if (name.find("CONFIGURATION") != std::string::npos) {
          section = Section::configuration;  // "<<DP5 CONFIGURATION>>", also "<<DPP CONFIGURATION>>"
        } else if (name.find("STATUS") != std::string::npos) {
          section = Section::status;
        } else {
          section = Section::other;  // sections this reader has no use for
        }
        continue;
      }

      switch (section) {
        case Section::header: {
          // "KEY - VALUE"; the value may be empty ("DESCRIPTION - ").
          const std::size_t dash = line.find('-');
          if (dash == std::string_view::npos) break;
          const std::string key = to_utf8(upper(trim(line.substr(0, dash))));
          const std::string_view value = trim(line.substr(dash + 1));
          if (key.empty()) break;
          header[key] = to_utf8(value);
          if (key == "LIVE_TIME") s.live_time_s = time_value(value, n, "LIVE_TIME");
          if (key == "REAL_TIME") s.real_time_s = time_value(value, n, "REAL_TIME");
          break;
        }
        case Section::calibration: {
          if (starts_with_icase(line, "LABEL")) {
            const std::size_t dash = line.find('-');
            cal_label = dash == std::string_view::npos ? "" : std::string(trim(line.substr(dash + 1)));
            cal_label_line = n;
            break;
          }
          double ch = 0, e = 0;
          const std::size_t gap = line.find_first_of(" \t,;");
          if (gap == std::string_view::npos || parse_double(line.substr(0, gap), ch) != Parsed::ok ||
              parse_double(trim(line.substr(gap + 1)), e) != Parsed::ok)
            fail(n, fmt::format("calibration point {} is not 'channel energy'", shown(line)));
          cal_channels.push_back(ch);
          cal_energies.push_back(e);
          break;
        }
        case Section::roi: {
          int v[2];
          if (scan_ints(line, " \t", v, 2) == 2) roi.push_back({v[0], v[1]});
          break;  // a region of interest is display information: a bad one is not worth failing for
        }
        case Section::data: {
          double value = 0;
          if (line.find_first_of(" \t,;") != std::string_view::npos)
            fail(n, fmt::format("channel {}: expected one count per line, found {}", s.counts.size(), shown(line)));
          const std::string why = check_count(line, value);
          if (!why.empty()) fail(n, fmt::format("channel {}: {}", s.counts.size(), why));
          s.counts.push_back(value);
          break;
        }
        case Section::configuration: {
          // "TPEA=25.600;    Peaking Time"
          const std::size_t eq = line.find('=');
          if (eq == std::string_view::npos) break;
          std::string_view value = line.substr(eq + 1);
          value = trim(value.substr(0, value.find(';')));
          configuration[to_utf8(trim(line.substr(0, eq)))] = to_utf8(value);
          break;
        }
        case Section::status: {
          // "Device Type: PX5"
          const std::size_t colon = line.find(':');
          if (colon == std::string_view::npos) break;
          status[to_utf8(trim(line.substr(0, colon)))] = to_utf8(trim(line.substr(colon + 1)));
          break;
        }
        case Section::before:
        case Section::after:
        case Section::other: break;
      }
    }

    if (section == Section::before) fail(0, "the file holds only blank lines");
    if (!data_seen) fail(0, "no <<DATA>> section: the file holds no counts");
    if (!data_ended)
      fail(data_line, "no <<END>> after <<DATA>>: the file is truncated (was it copied while being written?)");
    if (s.counts.empty()) fail(data_line, "the <<DATA>> section holds no counts");

    // The DP5 configuration records the number of channels the MCA was set to;
    // a different number of counts means lines were lost or added.
    if (configuration.contains("MCAC")) {
      double mcac = 0;
      if (parse_double(configuration["MCAC"].get<std::string>(), mcac) == Parsed::ok &&
          mcac != static_cast<double>(s.counts.size()))
        fail(data_line, fmt::format("the <<DATA>> section holds {} counts but the DP5 configuration says "
                                    "MCAC={} channels",
                                    s.counts.size(), format_number(mcac)));
    }

    apply_calibration(s, cal_channels, cal_energies, cal_label, cal_label_line);

    json& md = s.metadata;
    md["header"] = header;
    if (header.contains("START_TIME")) {
      const std::string iso = iso_from_amptek(header["START_TIME"].get<std::string>());
      if (!iso.empty()) md["start_time"] = iso;
    }
    if (header.contains("DESCRIPTION") && !header["DESCRIPTION"].get<std::string>().empty())
      md["description"] = header["DESCRIPTION"];
    if (status.contains("Device Type")) md["detector"] = status["Device Type"];
    if (header.contains("SERIAL_NUMBER") && !header["SERIAL_NUMBER"].get<std::string>().empty() &&
        header["SERIAL_NUMBER"].get<std::string>() != "0")
      md["detector_serial"] = header["SERIAL_NUMBER"];
    else if (status.contains("Serial Number"))
      md["detector_serial"] = status["Serial Number"];
    if (!roi.empty()) md["roi"] = roi;
    if (!configuration.empty()) md["configuration"] = configuration;
    if (!status.empty()) md["status"] = status;
    return s;
  }

 private:
  [[noreturn]] void fail(int line, const std::string& why) const {
    throw data_error("cannot read Amptek .mca spectrum", line > 0 ? fmt::format("{}:{}", source_, line) : source_,
                     why);
  }

  double time_value(std::string_view value, int line, const char* key) const {
    if (value.empty()) return Spectrum::not_recorded;
    double t = 0;
    if (parse_double(value, t) != Parsed::ok) fail(line, fmt::format("{} {} is not a number", key, shown(value)));
    if (t < 0) fail(line, fmt::format("{} {} is negative", key, shown(value)));
    return t;
  }

  // <<CALIBRATION>> lists (channel, energy) pairs in the unit named by LABEL;
  // a line through 2 points, a least-squares quadratic through 3 or more.
  void apply_calibration(Spectrum& s, const std::vector<double>& ch, const std::vector<double>& e,
                         const std::string& label, int label_line) const {
    if (ch.empty()) return;
    json points = json::array();
    for (std::size_t i = 0; i < ch.size(); ++i) points.push_back({ch[i], e[i]});
    s.metadata["calibration_points"] = points;
    s.metadata["calibration_label"] = to_utf8(label);

    const std::string unit = lower(label);
    double to_keV = 0;
    if (unit == "kev") to_keV = 1;
    else if (unit == "ev") to_keV = 1e-3;
    else if (unit == "mev") to_keV = 1e3;
    if (to_keV == 0) {
      log::warn("{}:{}: calibration label {} is not an energy unit (keV, eV, MeV); the calibration is not used",
                source_, label_line, shown(label));
      return;
    }
    std::set<double> distinct(ch.begin(), ch.end());
    if (ch.size() == 1) {
      log::warn("{}:{}: a calibration needs at least 2 points, the file has 1; the calibration is not used", source_,
                label_line);
      return;
    }
    if (distinct.size() < 2)
      fail(label_line, "the calibration points all sit on the same channel: they do not define a calibration");
    std::vector<double> energies(e);
    for (double& v : energies) v *= to_keV;
    const PolyFit fit = fit_polynomial(ch, energies, distinct.size() >= 3 ? 2 : 1);
    if (!fit.ok) fail(label_line, "the calibration points do not define a calibration");
    s.offset_keV = fit.c[0];
    s.gain_keV_per_channel = fit.c[1];
    if (distinct.size() >= 3) s.quadratic_keV = fit.c[2];
    const std::string why = calibration_problem(s);
    if (!why.empty()) fail(label_line, why);
  }

  const std::string& source_;
};

// ---------------------------------------------------------------------------
// A small, tolerant XML reader: elements, attributes, character data, CDATA,
// the five predefined entities and numeric character references; comments,
// processing instructions and DOCTYPE are skipped. It knows no namespaces or
// DTDs — Bruker's documents use none — and reports where a document is not
// well formed, most often because it was truncated.

struct XmlNode {
  std::string name;
  std::vector<std::pair<std::string, std::string>> attributes;
  std::string text;  // character data directly inside this element
  std::vector<std::unique_ptr<XmlNode>> children;
  int line = 0;

  const std::string* attribute(std::string_view key) const {
    for (const auto& [k, v] : attributes)
      if (k == key) return &v;
    return nullptr;
  }
  const XmlNode* child(std::string_view child_name) const {
    for (const auto& c : children)
      if (c->name == child_name) return c.get();
    return nullptr;
  }
  bool is_class_instance(std::string_view type) const {
    const std::string* t = attribute("Type");
    return name == "ClassInstance" && t && *t == type;
  }
  // Depth-first search of the descendants.
  template <typename Pred>
  void find_all(Pred pred, std::vector<const XmlNode*>& out) const {
    for (const auto& c : children) {
      if (pred(*c)) out.push_back(c.get());
      c->find_all(pred, out);
    }
  }
  template <typename Pred>
  const XmlNode* find_first(Pred pred) const {
    for (const auto& c : children) {
      if (pred(*c)) return c.get();
      if (const XmlNode* found = c->find_first(pred)) return found;
    }
    return nullptr;
  }
};

class XmlParser {
 public:
  XmlParser(std::string_view text, const std::string& source) : text_(text), source_(source) {}

  std::unique_ptr<XmlNode> parse() {
    for (;;) {
      skip_blanks();
      if (at_end()) fail(pos_, "no XML element in the file");
      if (peek("<?")) skip_past("?>", "processing instruction");
      else if (peek("<!--")) skip_past("-->", "comment");
      else if (peek("<!")) skip_doctype();
      else if (text_[pos_] == '<') break;
      else fail(pos_, fmt::format("text {} before the first XML element: this is not an XML document",
                                  shown(text_.substr(pos_, 20))));
    }
    return element(0);  // whatever follows the root element is ignored
  }

  [[noreturn]] void fail(std::size_t pos, const std::string& why) {
    throw data_error("cannot read Bruker .spx spectrum", fmt::format("{}:{}", source_, line_at(pos)),
                     "not well-formed XML: " + why);
  }

  int line_at(std::size_t pos) {
    // Lines are counted forward from the last position asked for.
    if (pos < counted_pos_) counted_pos_ = 0, counted_line_ = 1;
    for (; counted_pos_ < pos && counted_pos_ < text_.size(); ++counted_pos_)
      if (text_[counted_pos_] == '\n') ++counted_line_;
    return counted_line_;
  }

 private:
  static constexpr int max_depth = 200;

  bool at_end() const { return pos_ >= text_.size(); }
  bool peek(std::string_view s) const { return text_.substr(pos_, s.size()) == s; }
  void skip_blanks() {
    while (!at_end() && is_blank(text_[pos_])) ++pos_;
  }
  void skip_past(std::string_view terminator, const char* what) {
    const std::size_t start = pos_;
    const std::size_t end = text_.find(terminator, pos_);
    if (end == std::string_view::npos) fail(start, fmt::format("the file ends inside a {}", what));
    pos_ = end + terminator.size();
  }
  void skip_doctype() {
    const std::size_t start = pos_;
    int brackets = 0;
    for (; !at_end(); ++pos_) {
      const char c = text_[pos_];
      if (c == '[') ++brackets;
      else if (c == ']') --brackets;
      else if (c == '>' && brackets <= 0) {
        ++pos_;
        return;
      }
    }
    fail(start, "the file ends inside a <!DOCTYPE>");
  }
  static bool name_char(char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.' || c == ':' ||
           static_cast<unsigned char>(c) >= 0x80;
  }
  std::string name() {
    const std::size_t start = pos_;
    while (!at_end() && name_char(text_[pos_])) ++pos_;
    if (start == pos_) fail(start, fmt::format("expected a name at {}", shown(text_.substr(start, 20))));
    return std::string(text_.substr(start, pos_ - start));
  }

  void decode(std::string_view raw, std::string& out, std::size_t where) {
    for (std::size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '&') {
        out += raw[i];
        continue;
      }
      const std::size_t semi = raw.find(';', i);
      if (semi == std::string_view::npos || semi - i > 12) {
        out += '&';  // a stray '&': keep it rather than fail
        continue;
      }
      const std::string_view ref = raw.substr(i + 1, semi - i - 1);
      if (ref == "amp") out += '&';
      else if (ref == "lt") out += '<';
      else if (ref == "gt") out += '>';
      else if (ref == "quot") out += '"';
      else if (ref == "apos") out += '\'';
      else if (!ref.empty() && ref[0] == '#') {
        std::uint32_t cp = 0;
        const bool hex = ref.size() > 1 && (ref[1] == 'x' || ref[1] == 'X');
        const std::string_view digits = ref.substr(hex ? 2 : 1);
        auto [end, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), cp, hex ? 16 : 10);
        if (ec != std::errc() || end != digits.data() + digits.size() || cp == 0 || cp > 0x10FFFF ||
            (cp >= 0xD800 && cp <= 0xDFFF))
          fail(where, fmt::format("bad character reference &{};", ref));
        append_utf8(out, cp);
      } else {
        out.append(raw.substr(i, semi - i + 1));  // unknown entity: kept as written
      }
      i = semi;
    }
  }

  std::unique_ptr<XmlNode> element(int depth) {
    if (depth > max_depth) fail(pos_, fmt::format("elements nested deeper than {}", max_depth));
    auto node = std::make_unique<XmlNode>();
    const std::size_t open = pos_;
    node->line = line_at(open);
    ++pos_;  // '<'
    node->name = name();
    for (;;) {  // attributes
      skip_blanks();
      if (at_end()) fail(open, fmt::format("the file ends inside the tag <{}>: the file is truncated", node->name));
      if (peek("/>")) {
        pos_ += 2;
        return node;
      }
      if (text_[pos_] == '>') {
        ++pos_;
        break;
      }
      std::string key = name();
      skip_blanks();
      if (at_end() || text_[pos_] != '=') fail(pos_, fmt::format("attribute {} of <{}> has no value", key, node->name));
      ++pos_;
      skip_blanks();
      if (at_end() || (text_[pos_] != '"' && text_[pos_] != '\''))
        fail(pos_, fmt::format("value of attribute {} of <{}> is not quoted", key, node->name));
      const char quote = text_[pos_++];
      const std::size_t end = text_.find(quote, pos_);
      if (end == std::string_view::npos)
        fail(open, fmt::format("the file ends inside the tag <{}>: the file is truncated", node->name));
      std::string value;
      decode(text_.substr(pos_, end - pos_), value, pos_);
      node->attributes.emplace_back(std::move(key), std::move(value));
      pos_ = end + 1;
    }
    for (;;) {  // content
      if (at_end())
        fail(pos_, fmt::format("the file ends inside <{}> (opened at line {}): the file is truncated", node->name,
                               node->line));
      if (peek("</")) {
        const std::size_t close = pos_;
        pos_ += 2;
        const std::string closing = name();
        skip_blanks();
        if (at_end() || text_[pos_] != '>')
          fail(close, fmt::format("the closing tag </{}> is not finished", closing));
        ++pos_;
        if (closing != node->name)
          fail(close, fmt::format("</{}> closes <{}> opened at line {}", closing, node->name, node->line));
        return node;
      }
      if (peek("<!--")) {
        skip_past("-->", "comment");
      } else if (peek("<![CDATA[")) {
        const std::size_t start = pos_ + 9;
        skip_past("]]>", "CDATA section");
        node->text.append(text_.substr(start, pos_ - 3 - start));
      } else if (peek("<?")) {
        skip_past("?>", "processing instruction");
      } else if (text_[pos_] == '<') {
        node->children.push_back(element(depth + 1));
      } else {
        const std::size_t end = std::min(text_.find('<', pos_), text_.size());
        decode(text_.substr(pos_, end - pos_), node->text, pos_);
        pos_ = end;
      }
    }
  }

  std::string_view text_;
  const std::string& source_;
  std::size_t pos_ = 0;
  std::size_t counted_pos_ = 0;
  int counted_line_ = 1;
};

// ---------------------------------------------------------------------------
// Bruker .spx

class BrukerReader {
 public:
  explicit BrukerReader(const std::string& source) : source_(source) {}

  Spectrum read(std::string_view text) {
    XmlParser parser(text, source_);
    const std::unique_ptr<XmlNode> root = parser.parse();

    std::vector<const XmlNode*> spectra;
    if (root->is_class_instance("TRTSpectrum")) spectra.push_back(root.get());
    root->find_all([](const XmlNode& n) { return n.is_class_instance("TRTSpectrum"); }, spectra);
    if (spectra.empty())
      fail(*root, fmt::format("no <ClassInstance Type=\"TRTSpectrum\"> in the document (root element <{}>): "
                              "this is not a Bruker spectrum file",
                              root->name));
    if (spectra.size() > 1)
      fail(*spectra[1], fmt::format("the file holds {} spectra; export them as single-spectrum .spx files",
                                    spectra.size()));
    const XmlNode& spectrum = *spectra.front();

    Spectrum s;
    json& md = s.metadata;
    if (const std::string* name = spectrum.attribute("Name")) md["name"] = to_utf8(*name);

    // Counts.
    const XmlNode* channels = spectrum.child("Channels");
    if (!channels) channels = spectrum.find_first([](const XmlNode& n) { return n.name == "Channels"; });
    if (!channels) fail(spectrum, "no <Channels> element: the spectrum holds no counts");
    read_channels(*channels, s.counts);

    // Channel count and calibration.
    const XmlNode* header =
        spectrum.find_first([](const XmlNode& n) { return n.is_class_instance("TRTSpectrumHeader"); });
    if (header) {
      md["spectrum_header"] = leaves(*header);
      if (const XmlNode* count = header->child("ChannelCount")) {
        const double declared = number(*count, "ChannelCount");
        if (declared != static_cast<double>(s.counts.size()))
          fail(*count, fmt::format("ChannelCount is {} but <Channels> (line {}) holds {} values",
                                   format_number(declared), channels->line, s.counts.size()));
      }
      const XmlNode* abs = header->child("CalibAbs");
      const XmlNode* lin = header->child("CalibLin");
      if (abs && lin) {
        s.offset_keV = number(*abs, "CalibAbs");
        s.gain_keV_per_channel = number(*lin, "CalibLin");
        const std::string why = calibration_problem(s);
        if (!why.empty()) fail(*lin, why);
      } else if (abs || lin) {
        fail(abs ? *abs : *lin, fmt::format("the calibration has {} but no {}", abs ? "CalibAbs" : "CalibLin",
                                            abs ? "CalibLin" : "CalibAbs"));
      }
      const XmlNode* date = header->child("Date");
      const XmlNode* time = header->child("Time");
      if (date) {
        const std::string iso = iso_from_bruker(date->text, time ? std::string_view(time->text) : std::string_view());
        if (!iso.empty()) md["start_time"] = iso;
      }
    }

    // Times: Esprit records milliseconds ("LifeTime" is Bruker's spelling).
    const XmlNode* hardware =
        spectrum.find_first([](const XmlNode& n) { return n.is_class_instance("TRTSpectrumHardwareHeader"); });
    if (hardware) {
      md["hardware"] = leaves(*hardware);
      if (const XmlNode* rt = hardware->child("RealTime")) s.real_time_s = milliseconds(*rt, "RealTime") / 1000.0;
      if (const XmlNode* lt = hardware->child("LifeTime")) s.live_time_s = milliseconds(*lt, "LifeTime") / 1000.0;
    }

    if (const XmlNode* detector =
            spectrum.find_first([](const XmlNode& n) { return n.is_class_instance("TRTDetectorHeader"); })) {
      json d = leaves(*detector);
      if (d.contains("Type") && d["Type"].is_string()) md["detector"] = d["Type"];
      if (d.contains("Serial"))
        md["detector_serial"] = d["Serial"].is_string() ? d["Serial"].get<std::string>() : d["Serial"].dump();
      md["detector_header"] = std::move(d);
    }

    // Tube settings: M4 Tornado writes TRTXrfHeader (Voltage kV, Current uA,
    // Anode Z, TubeType); other XRF headers (TRTXrfFPModelHeader,
    // TRTXrfExcitationHeader) and Artax's TRTGeneratorHeader (HighVoltage,
    // TubeCurrent) carry the same quantities under these names.
    std::vector<const XmlNode*> xrf;
    spectrum.find_all(
        [](const XmlNode& n) {
          const std::string* t = n.attribute("Type");
          return n.name == "ClassInstance" && t && (t->rfind("TRTXrf", 0) == 0 || *t == "TRTGeneratorHeader");
        },
        xrf);
    json xrf_md = json::object();
    for (const XmlNode* block : xrf) {
      for (const auto& c : block->children) {
        if (!c->children.empty()) continue;
        if ((c->name == "Voltage" || c->name == "HighVoltage") && !md.contains("tube_voltage_kV"))
          md["tube_voltage_kV"] = number(*c, c->name.c_str());
        else if ((c->name == "Current" || c->name == "TubeCurrent") && !md.contains("tube_current_uA"))
          md["tube_current_uA"] = number(*c, c->name.c_str());
        else if (c->name == "Anode" && !md.contains("tube_anode"))
          md["tube_anode"] = anode(*c);
        else if (c->name == "TubeType" && !md.contains("tube_type"))
          md["tube_type"] = to_utf8(trim(c->text));
      }
      json l = leaves(*block);
      xrf_md.update(l);
    }
    if (!xrf_md.empty()) md["xrf"] = std::move(xrf_md);
    return s;
  }

 private:
  [[noreturn]] void fail(const XmlNode& node, const std::string& why) const {
    throw data_error("cannot read Bruker .spx spectrum", fmt::format("{}:{} <{}>", source_, node.line, node.name),
                     why);
  }

  // Scalars may carry a decimal comma when Esprit ran in a European locale.
  double number(const XmlNode& node, const char* what) const {
    double v = 0;
    switch (parse_double(node.text, v, true)) {
      case Parsed::ok: return v;
      case Parsed::empty: fail(node, fmt::format("{} is empty", what));
      case Parsed::not_number: fail(node, fmt::format("{} {} is not a number", what, shown(trim(node.text))));
      case Parsed::not_finite: fail(node, fmt::format("{} {} is not a finite number", what, shown(trim(node.text))));
    }
    return v;
  }

  double milliseconds(const XmlNode& node, const char* what) const {
    const double v = number(node, what);
    if (v < 0) fail(node, fmt::format("{} {} ms is negative", what, format_number(v)));
    return v;
  }

  json anode(const XmlNode& node) const {
    double z = 0;
    if (parse_double(node.text, z) == Parsed::ok) {
      if (z >= 1 && z < static_cast<double>(element_symbols.size()) && std::nearbyint(z) == z)
        return element_symbols[static_cast<std::size_t>(z)];
      fail(node, fmt::format("Anode {} is not an atomic number", shown(trim(node.text))));
    }
    return to_utf8(trim(node.text));  // already a symbol
  }

  void read_channels(const XmlNode& node, std::vector<double>& counts) const {
    std::string_view text = node.text;
    std::size_t index = 0;
    for (;;) {
      const std::size_t comma = text.find(',');
      const std::string_view token = trim(text.substr(0, comma));
      const bool last = comma == std::string_view::npos;
      if (token.empty() && last && index > 0) break;  // tolerate a trailing comma
      if (token.empty() && last && index == 0) fail(node, "<Channels> is empty: the spectrum holds no counts");
      double value = 0;
      const std::string why = check_count(token, value);
      if (!why.empty()) fail(node, fmt::format("value {} (channel {}): {}", index + 1, index, why));
      counts.push_back(value);
      ++index;
      if (last) break;
      text.remove_prefix(comma + 1);
    }
  }

  // The simple child elements of a header, as JSON (numbers where they are
  // numbers). Long texts — base64 blobs such as DetLayers — are left out.
  static json leaves(const XmlNode& node) {
    json out = json::object();
    for (const auto& c : node.children) {
      if (!c->children.empty() || c->text.size() > 256 || out.contains(c->name)) continue;
      out[to_utf8(c->name)] = metadata_value(c->text);
    }
    return out;
  }

  const std::string& source_;
};

// ---------------------------------------------------------------------------
// CSV / TSV

class CsvReader {
 public:
  explicit CsvReader(const std::string& source) : source_(source) {}

  Spectrum read(std::string_view text) {
    Spectrum s;
    json comments = json::object();
    std::optional<double> comment_offset, comment_gain, comment_quadratic;

    struct Row {
      int line;
      std::vector<std::string_view> fields;
    };
    std::vector<Row> rows;
    std::vector<std::string> names;  // header line, lower-cased
    int header_line = 0;
    char delimiter = 0;  // 0: runs of blanks

    LineReader lines(text);
    std::string_view raw;
    while (lines.next(raw)) {
      const int n = lines.number();
      std::string_view line = trim(raw);
      if (line.empty()) continue;
      if (line.front() == '#') {
        read_comment(line.substr(1), n, comments, s, comment_offset, comment_gain, comment_quadratic);
        continue;
      }
      line = trim(line.substr(0, line.find('#')));  // "12  # a comment"
      if (line.empty()) continue;
      if (rows.empty() && names.empty()) {
        // The first line decides the delimiter: tab, then semicolon (whose
        // files may use decimal commas), then comma, else blanks.
        delimiter = line.find('\t') != std::string_view::npos   ? '\t'
                    : line.find(';') != std::string_view::npos  ? ';'
                    : line.find(',') != std::string_view::npos  ? ','
                                                                : 0;
      }
      std::vector<std::string_view> fields = split(line, delimiter, n);
      if (rows.empty() && names.empty() && is_header(fields, delimiter)) {
        for (std::string_view f : fields) {
          if (f.size() >= 2 && (f.front() == '"' || f.front() == '\'') && f.back() == f.front())
            f = trim(f.substr(1, f.size() - 2));
          names.push_back(to_utf8(lower(f)));
        }
        header_line = n;
        continue;
      }
      // Every line has as many fields as the header, or as the first line.
      const std::size_t expected = !names.empty() ? names.size()
                                   : rows.empty()  ? fields.size()
                                                   : rows.front().fields.size();
      if (fields.size() != expected)
        fail(n, fmt::format("{} fields where line {} has {}", fields.size(),
                            names.empty() ? rows.front().line : header_line, expected));
      rows.push_back({n, std::move(fields)});
    }
    if (rows.empty()) fail(header_line, names.empty() ? "no data lines" : "a header line but no data lines");

    const std::size_t columns = rows.front().fields.size();
    const bool decimal_comma = delimiter != ',';

    // Which column is what.
    int counts_col = -1, channel_col = -1, energy_col = -1;
    double energy_to_keV = 1;
    if (!names.empty()) {
      for (std::size_t i = 0; i < names.size(); ++i) {
        const std::string& nm = names[i];
        const int col = static_cast<int>(i);
        if (nm.find("count") != std::string::npos || nm == "cts" || nm == "intensity" || nm == "y") {
          if (counts_col >= 0) fail(header_line, "two columns are named as counts");
          counts_col = col;
        } else if (nm.find("energy") != std::string::npos || nm == "e" || nm == "kev" || nm == "ev" ||
                   nm.rfind("e_", 0) == 0 || nm.rfind("e (", 0) == 0 || nm.rfind("e[", 0) == 0) {
          if (energy_col < 0) {
            energy_col = col;
            // The unit from the name: "energy_keV", "Energy (eV)", "eV"...
            if (nm.find("kev") != std::string::npos) energy_to_keV = 1;
            else if (nm.find("mev") != std::string::npos) energy_to_keV = 1e3;
            else if (nm.find("ev") != std::string::npos) energy_to_keV = 1e-3;
          }
        } else if (nm.find("chan") != std::string::npos || nm == "ch" || nm == "index" || nm == "x") {
          if (channel_col < 0) channel_col = col;
        }
      }
      if (counts_col < 0) {
        if (columns == 1) counts_col = 0;
        else if (columns == 2) counts_col = 1;
        else
          fail(header_line, fmt::format("cannot tell which of the {} columns holds the counts: name it 'counts'",
                                        columns));
      }
    } else {
      if (columns > 2)
        fail(rows.front().line, fmt::format("{} columns and no header line: cannot tell which holds the counts; add "
                                            "a header line such as 'channel,energy_keV,counts'",
                                            columns));
      counts_col = static_cast<int>(columns) - 1;
    }
    // Two columns with an unnamed first one: whole numbers rising by one are
    // channels, anything else is energy in keV.
    if (columns == 2 && counts_col == 1 && channel_col < 0 && energy_col < 0) {
      if (looks_like_channels(rows, decimal_comma)) channel_col = 0;
      else energy_col = 0;
    }

    // Counts.
    s.counts.reserve(rows.size());
    for (const Row& r : rows) {
      double value = 0;
      const std::string why = check_count(r.fields[static_cast<std::size_t>(counts_col)], value, decimal_comma);
      if (!why.empty()) fail(r.line, fmt::format("channel {}: {}", s.counts.size(), why));
      s.counts.push_back(value);
    }

    if (channel_col >= 0) check_channels(rows, static_cast<std::size_t>(channel_col), decimal_comma);

    // Calibration: the exact coefficients of "# offset_keV:" comments win
    // over an energy column (which is rounded when printed).
    if (comment_offset || comment_gain) {
      if (!comment_offset || !comment_gain)
        fail(0, "the comments give only one of offset_keV and gain_keV_per_channel");
      s.offset_keV = comment_offset;
      s.gain_keV_per_channel = comment_gain;
      s.quadratic_keV = comment_quadratic;
    } else if (energy_col >= 0) {
      calibrate_from_column(s, rows, static_cast<std::size_t>(energy_col), energy_to_keV, decimal_comma);
    }
    const std::string why = calibration_problem(s);
    if (!why.empty()) fail(0, why);

    if (!names.empty()) s.metadata["columns"] = names;
    if (!comments.empty()) s.metadata["comments"] = comments;
    for (const char* key : {"start_time", "description", "detector", "detector_serial"})
      if (comments.contains(key) && comments[key].is_string()) s.metadata[key] = comments[key];
    return s;
  }

 private:
  [[noreturn]] void fail(int line, const std::string& why) const {
    throw data_error("cannot read CSV spectrum", line > 0 ? fmt::format("{}:{}", source_, line) : source_, why);
  }

  std::vector<std::string_view> split(std::string_view line, char delimiter, int n) const {
    std::vector<std::string_view> fields;
    if (delimiter == 0) {
      std::size_t i = 0;
      while (i < line.size()) {
        while (i < line.size() && is_blank(line[i])) ++i;
        const std::size_t start = i;
        while (i < line.size() && !is_blank(line[i])) ++i;
        if (i > start) fields.push_back(line.substr(start, i - start));
      }
      return fields;
    }
    std::size_t start = 0;
    for (;;) {
      const std::size_t end = line.find(delimiter, start);
      const std::string_view f = trim(line.substr(start, end == std::string_view::npos ? end : end - start));
      if (f.empty()) fail(n, fmt::format("field {} is empty", fields.size() + 1));
      fields.push_back(f);
      if (end == std::string_view::npos) break;
      start = end + 1;
    }
    return fields;
  }

  // A first line is a header when it has names and nothing that starts like
  // a number: a corrupted first count ("12a") must be reported, not taken for
  // a column name and dropped. "nan" and "inf" are bad counts, not names.
  static bool is_header(const std::vector<std::string_view>& fields, char delimiter) {
    bool has_name = false;
    for (std::string_view f : fields) {
      double v = 0;
      const Parsed p = parse_double(f, v, delimiter != ',');
      if (p == Parsed::ok || p == Parsed::not_finite) return false;
      if (std::isdigit(static_cast<unsigned char>(f.front())) || f.front() == '+' || f.front() == '-' ||
          f.front() == '.')
        return false;
      has_name = true;
    }
    return has_name;
  }

  // "# key: value" (or "key = value") comment lines carry metadata; the
  // times and calibration coefficients are read as numbers.
  void read_comment(std::string_view body, int n, json& comments, Spectrum& s, std::optional<double>& offset,
                    std::optional<double>& gain, std::optional<double>& quadratic) const {
    body = trim(body);
    const std::size_t sep = body.find_first_of(":=");
    if (sep == std::string_view::npos) return;
    const std::string key(trim(body.substr(0, sep)));
    const std::string_view value = trim(body.substr(sep + 1));
    if (key.empty() || key.find(' ') != std::string::npos) return;  // prose, not a key
    comments[to_utf8(key)] = metadata_value(value);
    const std::string k = lower(key);
    auto numeric = [&]() {
      double v = 0;
      if (parse_double(value, v) != Parsed::ok) fail(n, fmt::format("{} {} is not a number", key, shown(value)));
      return v;
    };
    if (k == "live_time_s" || k == "real_time_s") {
      const double t = numeric();
      if (t < 0) fail(n, fmt::format("{} {} is negative", key, shown(value)));
      (k == "live_time_s" ? s.live_time_s : s.real_time_s) = t;
    } else if (k == "offset_kev") {
      offset = numeric();
    } else if (k == "gain_kev_per_channel") {
      gain = numeric();
    } else if (k == "quadratic_kev") {
      quadratic = numeric();
    }
  }

  template <typename Rows>
  static bool looks_like_channels(const Rows& rows, bool decimal_comma) {
    double previous = 0;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      double v = 0;
      if (parse_double(rows[i].fields[0], v, decimal_comma) != Parsed::ok || std::nearbyint(v) != v) return false;
      if (i > 0 && v != previous + 1) return false;
      previous = v;
    }
    return true;
  }

  // Channels must number the rows: consecutive, from 0 (or from 1, as
  // spreadsheets count).
  template <typename Rows>
  void check_channels(const Rows& rows, std::size_t col, bool decimal_comma) const {
    double first = 0;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      double v = 0;
      const std::string_view f = rows[i].fields[col];
      if (parse_double(f, v, decimal_comma) != Parsed::ok || std::nearbyint(v) != v)
        fail(rows[i].line, fmt::format("channel {} is not a whole number", shown(f)));
      if (i == 0) {
        if (v != 0 && v != 1)
          fail(rows[i].line, fmt::format("channels start at {}; expected 0 or 1", format_number(v)));
        first = v;
      } else if (v != first + static_cast<double>(i)) {
        fail(rows[i].line, fmt::format("channel {} follows channel {}: channels must be consecutive", format_number(v),
                                       format_number(first + static_cast<double>(i) - 1)));
      }
    }
  }

  // An energy column must be a line (or a parabola) in channel to within half
  // a channel: evenly binned, up to the rounding of energies printed with
  // few decimals (0.01 keV at 10 eV/channel is off by up to half a channel).
  template <typename Rows>
  void calibrate_from_column(Spectrum& s, const Rows& rows, std::size_t col, double to_keV,
                             bool decimal_comma) const {
    std::vector<double> ch, e;
    for (std::size_t i = 0; i < rows.size(); ++i) {
      double v = 0;
      const std::string_view f = rows[i].fields[col];
      if (parse_double(f, v, decimal_comma) != Parsed::ok)
        fail(rows[i].line, fmt::format("energy {} is not a finite number", shown(f)));
      v *= to_keV;
      if (i > 0 && v <= e.back())
        fail(rows[i].line, fmt::format("energy {} does not rise above the previous line's", shown(f)));
      ch.push_back(static_cast<double>(i));
      e.push_back(v);
    }
    if (rows.size() < 2) fail(rows.front().line, "one energy value cannot define a calibration");
    PolyFit fit = fit_polynomial(ch, e, 1);
    const auto good = [](const PolyFit& f) { return f.ok && f.max_residual <= 0.5 * std::fabs(f.c[1]); };
    bool quadratic = false;
    if (!good(fit) && rows.size() >= 3) {
      const PolyFit q = fit_polynomial(ch, e, 2);
      if (good(q)) fit = q, quadratic = true;
    }
    if (!good(fit))
      fail(rows[fit.worst].line, "the energy column is not evenly spaced (neither linear nor quadratic in channel)");
    s.offset_keV = fit.c[0];
    s.gain_keV_per_channel = fit.c[1];
    if (quadratic) s.quadratic_keV = fit.c[2];
  }

  const std::string& source_;
};

// ---------------------------------------------------------------------------

std::string read_whole_file(const fs::path& path) {
  const std::string name = path.string();
  std::error_code ec;
  const fs::file_status st = fs::status(path, ec);
  if (!fs::exists(st)) throw input_missing("cannot read spectrum", name, "no such file");
  if (fs::is_directory(st)) throw input_missing("cannot read spectrum", name, "this is a folder, not a spectrum file");
  if (fs::is_regular_file(st)) {
    const auto size = fs::file_size(path, ec);
    if (!ec && size > max_file_bytes)
      throw data_error("cannot read spectrum", name,
                       fmt::format("the file is {} MB: too large to be a single spectrum", size >> 20));
  }
  FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) throw input_missing("cannot read spectrum", name, std::strerror(errno));
  std::string content;
  char buffer[65536];
  std::size_t got;
  while ((got = std::fread(buffer, 1, sizeof buffer, f)) > 0) {
    content.append(buffer, got);
    if (content.size() > max_file_bytes) {
      std::fclose(f);
      throw data_error("cannot read spectrum", name, "the file is too large to be a single spectrum");
    }
  }
  const bool failed = std::ferror(f) != 0;
  const int err = errno;
  std::fclose(f);
  if (failed) throw io_error("cannot read spectrum", name, std::strerror(err));
  return content;
}

std::string read_stdin() {
  std::string content;
  char buffer[65536];
  std::size_t got;
  while ((got = std::fread(buffer, 1, sizeof buffer, stdin)) > 0) {
    content.append(buffer, got);
    if (content.size() > max_file_bytes)
      throw data_error("cannot read spectrum", "stdin", "the input is too large to be a single spectrum");
  }
  if (std::ferror(stdin)) throw io_error("cannot read spectrum", "stdin", std::strerror(errno));
  return content;
}

void write_stdout(const std::string& content) {
  if (std::fwrite(content.data(), 1, content.size(), stdout) != content.size() || std::fflush(stdout) != 0)
    throw io_error("cannot write spectrum", "stdout", std::strerror(errno));
}

// ISO "YYYY-MM-DDTHH:MM:SS" -> Amptek "MM/DD/YYYY HH:MM:SS", or "".
std::string amptek_from_iso(const std::string& iso) {
  int v[6];
  if (scan_ints(iso, "-T:", v, 6) != 6 || iso_time(v[0], v[1], v[2], v[3], v[4], v[5]).empty()) return {};
  return fmt::format("{:02}/{:02}/{:04} {:02}:{:02}:{:02}", v[1], v[2], v[0], v[3], v[4], v[5]);
}

std::string metadata_string(const json& md, const char* key) {
  if (!md.is_object() || !md.contains(key)) return {};
  const json& v = md[key];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return format_number(v.get<double>());
  return {};
}

// Metadata text must not break the line structure of a text format.
std::string one_line(std::string s) {
  for (char& c : s)
    if (c == '\n' || c == '\r') c = ' ';
  return s;
}

}  // namespace

// ---------------------------------------------------------------------------

std::string_view format_name(SpectrumFormat format) {
  switch (format) {
    case SpectrumFormat::amptek_mca: return "mca";
    case SpectrumFormat::bruker_spx: return "spx";
    case SpectrumFormat::csv: return "csv";
  }
  return "unknown";
}

SpectrumFormat parse_spectrum_format(std::string_view name, std::string_view what) {
  const std::string n = lower(trim(name));
  if (n == "mca" || n == "amptek") return SpectrumFormat::amptek_mca;
  if (n == "spx" || n == "bruker") return SpectrumFormat::bruker_spx;
  if (n == "csv" || n == "tsv" || n == "txt") return SpectrumFormat::csv;
  throw usage_error(std::string(what), std::string(name), "unknown spectrum format; expected mca, spx or csv");
}

double Spectrum::energy_keV(double channel) const {
  if (!has_calibration())
    throw internal_error("cannot compute an energy", source, "the spectrum has no energy calibration");
  return *offset_keV + *gain_keV_per_channel * channel + quadratic_keV.value_or(0.0) * channel * channel;
}

SpectrumFormat sniff_spectrum_format(std::string_view content, const fs::path& name) {
  const std::string_view head = trim(strip_bom(content.substr(0, 4096)));
  if (starts_with_icase(head, "<<PMCA SPECTRUM>>")) return SpectrumFormat::amptek_mca;
  if (!head.empty() && head.front() == '<') return SpectrumFormat::bruker_spx;
  const std::string ext = lower(name.extension().string());
  if (ext == ".mca") return SpectrumFormat::amptek_mca;
  if (ext == ".spx") return SpectrumFormat::bruker_spx;
  return SpectrumFormat::csv;
}

Spectrum parse_spectrum(std::string_view content, std::string source, std::optional<SpectrumFormat> format) {
  content = strip_bom(content);
  if (trim(content).empty()) throw data_error("cannot read spectrum", source, "the file is empty");
  if (content.substr(0, 8) == std::string_view("\x89HDF\r\n\x1a\n", 8))
    throw data_error("cannot read spectrum", source,
                     "this is an HDF5 file, not a single-spectrum file; name a dataset as FILE.h5:/path");
  if (content.substr(0, 4096).find('\0') != std::string_view::npos)
    throw data_error("cannot read spectrum", source, "this is a binary file, not an .mca, .spx or CSV spectrum");

  const SpectrumFormat f = format ? *format : sniff_spectrum_format(content, source);
  Spectrum s;
  switch (f) {
    case SpectrumFormat::amptek_mca: s = AmptekReader(source).read(content); break;
    case SpectrumFormat::bruker_spx: s = BrukerReader(source).read(content); break;
    case SpectrumFormat::csv: s = CsvReader(source).read(content); break;
  }
  s.source = std::move(source);
  s.metadata["format"] = std::string(format_name(f));
  return s;
}

Spectrum read_spectrum(const fs::path& path, std::optional<SpectrumFormat> format) {
  if (path == "-") return parse_spectrum(read_stdin(), "stdin", format);
  return parse_spectrum(read_whole_file(path), path.string(), format);
}

std::string format_mca(const Spectrum& s) {
  std::string out;
  out.reserve(s.counts.size() * 8 + 512);
  auto line = [&out](std::string_view text) {
    out.append(text);
    out += '\n';
  };
  line("<<PMCA SPECTRUM>>");
  line("TAG - live_data");
  line("DESCRIPTION - " + one_line(metadata_string(s.metadata, "description")));
  if (std::isfinite(s.live_time_s)) line(fmt::format("LIVE_TIME - {:.6f}", s.live_time_s));
  if (std::isfinite(s.real_time_s)) line(fmt::format("REAL_TIME - {:.6f}", s.real_time_s));
  const std::string start = amptek_from_iso(metadata_string(s.metadata, "start_time"));
  if (!start.empty()) line("START_TIME - " + start);
  const std::string serial = one_line(metadata_string(s.metadata, "detector_serial"));
  if (!serial.empty()) line("SERIAL_NUMBER - " + serial);
  if (s.has_calibration()) {
    // Points the reader's fit passes through exactly: 2 for a line, 3 for a
    // parabola, spread over the spectrum; energies at full precision.
    const std::size_t n = s.counts.size();
    std::vector<std::size_t> channels;
    if (s.quadratic_keV) channels = {0, std::max<std::size_t>(n / 2, 1), std::max<std::size_t>(n - 1, 2)};
    else channels = {0, std::max<std::size_t>(n - 1, 1)};
    line("<<CALIBRATION>>");
    line("LABEL - keV");
    for (std::size_t ch : channels) line(fmt::format("{} {}", ch, s.energy_keV(static_cast<double>(ch))));
  }
  line("<<DATA>>");
  for (double c : s.counts) line(format_number(c));
  line("<<END>>");
  // "KEY=VALUE;" in the configuration block, "Key: Value" in the status block.
  const auto block = [&](const char* key, const char* begin, const char* end, bool configuration) {
    if (!s.metadata.contains(key) || !s.metadata[key].is_object() || s.metadata[key].empty()) return;
    line(begin);
    for (const auto& [k, v] : s.metadata[key].items()) {
      const std::string value = one_line(v.is_string() ? v.get<std::string>() : v.dump());
      line(configuration ? one_line(k) + "=" + value + ";" : one_line(k) + ": " + value);
    }
    line(end);
  };
  if (metadata_string(s.metadata, "format") == "mca") {
    // Only an Amptek file's own blocks are Amptek configuration and status.
    block("configuration", "<<DP5 CONFIGURATION>>", "<<DP5 CONFIGURATION END>>", true);
    block("status", "<<DPP STATUS>>", "<<DPP STATUS END>>", false);
  }
  return out;
}

std::string format_csv(const Spectrum& s) {
  std::string out;
  out.reserve(s.counts.size() * 24 + 512);
  out += "# opx spectrum\n";
  if (!s.source.empty()) out += "# source: " + one_line(s.source) + "\n";
  if (std::isfinite(s.live_time_s)) out += fmt::format("# live_time_s: {}\n", s.live_time_s);
  if (std::isfinite(s.real_time_s)) out += fmt::format("# real_time_s: {}\n", s.real_time_s);
  for (const char* key : {"start_time", "description", "detector", "detector_serial"}) {
    const std::string v = one_line(metadata_string(s.metadata, key));
    if (!v.empty()) out += fmt::format("# {}: {}\n", key, v);
  }
  if (s.has_calibration()) {
    out += fmt::format("# offset_keV: {}\n# gain_keV_per_channel: {}\n", *s.offset_keV, *s.gain_keV_per_channel);
    if (s.quadratic_keV) out += fmt::format("# quadratic_keV: {}\n", *s.quadratic_keV);
    out += "channel,energy_keV,counts\n";
    for (std::size_t i = 0; i < s.counts.size(); ++i)
      out += fmt::format("{},{:.6f},{}\n", i, s.energy_keV(static_cast<double>(i)), format_number(s.counts[i]));
  } else {
    out += "channel,counts\n";
    for (std::size_t i = 0; i < s.counts.size(); ++i) out += fmt::format("{},{}\n", i, format_number(s.counts[i]));
  }
  return out;
}

void write_spectrum(const Spectrum& s, const fs::path& path, std::optional<SpectrumFormat> format) {
  const std::string ext = lower(path.extension().string());
  const SpectrumFormat f = format          ? *format
                           : ext == ".mca" ? SpectrumFormat::amptek_mca
                           : ext == ".spx" ? SpectrumFormat::bruker_spx  // refused below, not written as CSV
                                           : SpectrumFormat::csv;
  if (f == SpectrumFormat::bruker_spx)
    throw usage_error("cannot write spectrum", path.string(),
                      "writing Bruker .spx is not supported; write .mca or .csv");
  if (s.counts.empty()) throw internal_error("cannot write spectrum", path.string(), "the spectrum has no channels");
  const std::string text = f == SpectrumFormat::amptek_mca ? format_mca(s) : format_csv(s);
  if (path == "-") write_stdout(text);
  else write_file_atomic(path, text);
}

}  // namespace opx::io
