#include "hw/device_uri.hpp"

#include <cctype>
#include <charconv>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/text.hpp"

namespace opx::hw {
namespace {

Error bad_uri(std::string_view text, const std::string& why) {
  return usage_error("invalid device", std::string(text),
                     why + " (expected DRIVER:CONNECTION[,key=value...], e.g. dp5:/dev/ttyUSB0 or gcs2:sim)");
}

}  // namespace

DeviceUri parse_device_uri(std::string_view text) {
  DeviceUri uri;
  uri.text = std::string(text);
  const auto colon = text.find(':');
  if (colon == std::string_view::npos) throw bad_uri(text, "no ':' between driver and connection");
  uri.driver = text::lower(text::trim(text.substr(0, colon)));
  if (uri.driver.empty()) throw bad_uri(text, "no driver name before ':'");
  for (char c : uri.driver)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_')
      throw bad_uri(text, fmt::format("'{}' is not a driver name", uri.driver));
  std::string_view rest = text.substr(colon + 1);
  const auto comma = rest.find(',');
  uri.connection = std::string(text::trim(rest.substr(0, comma)));
  if (uri.connection.empty()) throw bad_uri(text, "no connection after ':'");
  std::string_view options = comma == std::string_view::npos ? std::string_view() : rest.substr(comma + 1);
  while (comma != std::string_view::npos) {
    const auto next = options.find(',');
    std::string_view item = text::trim(options.substr(0, next));
    const auto eq = item.find('=');
    if (eq == std::string_view::npos || eq == 0)
      throw bad_uri(text, fmt::format("option '{}' is not key=value", item));
    std::string key = text::lower(text::trim(item.substr(0, eq)));
    if (uri.options.count(key)) throw bad_uri(text, fmt::format("option '{}' given twice", key));
    uri.options[key] = std::string(text::trim(item.substr(eq + 1)));
    if (next == std::string_view::npos) break;
    options = options.substr(next + 1);
  }
  return uri;
}

std::optional<std::string> DeviceUri::option(const std::string& key) const {
  auto it = options.find(key);
  if (it == options.end()) return std::nullopt;
  return it->second;
}

std::optional<long> DeviceUri::integer_option(const std::string& key) const {
  auto v = option(key);
  if (!v) return std::nullopt;
  long out = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), out);
  if (ec != std::errc() || ptr != v->data() + v->size())
    throw usage_error("invalid device", text, fmt::format("option {}={} is not a whole number", key, *v));
  return out;
}

}  // namespace opx::hw
