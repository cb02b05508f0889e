#pragma once
// Messages for people go to stderr, prefixed with the program's name;
// stdout is reserved for data and machine-readable JSON.
#include <string>
#include <string_view>

#include <fmt/format.h>

namespace opx::log {

enum class Level { quiet = 0, normal = 1, verbose = 2, debug = 3 };

void set_program(std::string name);
const std::string& program();
void set_level(Level level);
Level level();

void write(std::string_view kind, std::string_view message);

template <typename... Args>
void info(fmt::format_string<Args...> f, Args&&... args) {
  if (level() >= Level::verbose) write("", fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void note(fmt::format_string<Args...> f, Args&&... args) {
  if (level() >= Level::normal) write("", fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void warn(fmt::format_string<Args...> f, Args&&... args) {
  if (level() >= Level::normal) write("warning: ", fmt::format(f, std::forward<Args>(args)...));
}
template <typename... Args>
void debug(fmt::format_string<Args...> f, Args&&... args) {
  if (level() >= Level::debug) write("debug: ", fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace opx::log
