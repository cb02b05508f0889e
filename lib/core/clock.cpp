#include "core/clock.hpp"

#include <ctime>
#include <cmath>

#include <fmt/format.h>

namespace opx::clock {

double unix_time() {
  timespec ts{};
  ::clock_gettime(CLOCK_REALTIME, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

double monotonic() {
  timespec ts{};
  ::clock_gettime(CLOCK_MONOTONIC, &ts);
  return double(ts.tv_sec) + 1e-9 * double(ts.tv_nsec);
}

std::string iso8601(double t) {
  double whole = std::floor(t);
  auto secs = static_cast<time_t>(whole);
  int ms = static_cast<int>(std::lround((t - whole) * 1000.0));
  if (ms == 1000) { ms = 0; ++secs; }
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  return fmt::format("{:04d}-{:02d}-{:02d}T{:02d}:{:02d}:{:02d}.{:03d}Z", tm.tm_year + 1900,
                     tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, ms);
}

std::string now_iso8601() { return iso8601(unix_time()); }

}  // namespace opx::clock
