#include "hw/gcs2.hpp"

#include <charconv>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/text.hpp"

namespace opx::hw::gcs2 {

void send(Transport& t, const std::string& command) { t.write(command + "\n"); }

std::vector<std::string> read_answer(Transport& t, Milliseconds timeout, std::size_t max_lines) {
  std::vector<std::string> lines;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::string line = read_until(t, '\n', 4096, remaining(deadline), "GCS answer");
    line.pop_back();  // LF
    const bool more = !line.empty() && line.back() == ' ';
    if (more) line.pop_back();
    lines.push_back(std::move(line));
    if (!more) return lines;
    if (lines.size() >= max_lines)
      throw Error(ExitCode::protocol, "answer too long", t.describe(),
                  fmt::format("more than {} lines in one GCS answer", max_lines));
  }
}

std::vector<std::string> query(Transport& t, const std::string& command, Milliseconds timeout) {
  send(t, command);
  return read_answer(t, timeout);
}

std::pair<std::string, double> axis_value(const std::string& line, const std::string& device) {
  const auto eq = line.find('=');
  if (eq == std::string::npos || eq == 0)
    throw Error(ExitCode::protocol, "unexpected answer", device, fmt::format("'{}' is not AXIS=VALUE", line));
  std::string axis(text::trim(std::string_view(line).substr(0, eq)));
  std::string_view value = text::trim(std::string_view(line).substr(eq + 1));
  if (!value.empty() && value.front() == '+') value.remove_prefix(1);
  double v = 0;
  auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
  if (ec != std::errc() || ptr != value.data() + value.size())
    throw Error(ExitCode::protocol, "unexpected answer", device,
                fmt::format("'{}': the value of axis {} is not a number", line, axis));
  return {axis, v};
}

std::string error_text(int code) {
  // PI_CNTR_* codes 0-15 of the GCS error list.
  static const char* const kText[] = {
      "no error",
      "parameter syntax error",
      "unknown command",
      "command too long",
      "error while scanning",
      "unallowable move attempted on unreferenced axis, or move attempted with servo off",
      "parameter for SGA not valid",
      "position out of limits",
      "velocity out of limits",
      "attempt to set pivot point while U, V and W not all 0",
      "controller was stopped by command",
      "parameter for SST or for one of the embedded scan algorithms out of range",
      "invalid axis combination for fast scan",
      "parameter for NAV out of range",
      "invalid analog channel",
      "invalid axis identifier",
  };
  if (code >= 0 && code < static_cast<int>(sizeof kText / sizeof kText[0])) return kText[code];
  return fmt::format("GCS error {}", code);
}

void check_error(Transport& t, const std::string& command, Milliseconds timeout) {
  auto lines = query(t, "ERR?", timeout);
  int code = 0;
  const std::string& s = lines.front();
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), code);
  if (lines.size() != 1 || ec != std::errc() || ptr != s.data() + s.size())
    throw Error(ExitCode::protocol, "unexpected answer to ERR?", t.describe(),
                fmt::format("'{}' is not an error code", s));
  if (code == 0) return;
  const ExitCode exit = (code == 7 || code == 8) ? ExitCode::data_error : ExitCode::protocol;
  throw Error(exit, "stage controller refused a command", t.describe(),
              fmt::format("{}: error {}: {}", command, code, error_text(code)));
}

}  // namespace opx::hw::gcs2
