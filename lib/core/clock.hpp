#pragma once
// Time stamps shared by every program, so logs from cycler, forcelog and the
// acquisitions line up: Unix time in seconds (UTC) and ISO 8601 text.
#include <string>

namespace opx::clock {

double unix_time();                         // seconds since 1970-01-01T00:00:00Z
double monotonic();                         // seconds on CLOCK_MONOTONIC
std::string iso8601(double unix_seconds);   // "2026-11-22T02:38:56.123Z"
std::string now_iso8601();

}  // namespace opx::clock
