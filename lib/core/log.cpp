#include "core/log.hpp"

#include <cstdio>
#include <mutex>

namespace opx::log {
namespace {
std::string g_program = "opx";
Level g_level = Level::normal;
std::mutex g_mutex;
}  // namespace

void set_program(std::string name) { g_program = std::move(name); }
const std::string& program() { return g_program; }
void set_level(Level l) { g_level = l; }
Level level() { return g_level; }

void write(std::string_view kind, std::string_view message) {
  std::lock_guard<std::mutex> lock(g_mutex);
  std::string line = fmt::format("{}: {}{}\n", g_program, kind, message);
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

}  // namespace opx::log
