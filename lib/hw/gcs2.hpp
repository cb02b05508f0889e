#pragma once
// Line layer of PI's General Command Set (GCS 2.0) for stage controllers
// (C-863, C-884, E-873 ...): ASCII commands ended by LF; a query's answer is
// one or more lines, every line but the last ending with a space before the
// LF ("1=+0.5000 \n2=+1.2500\n"); values come as AXIS=VALUE. Errors are not
// sent with the answer: the host asks "ERR?" after a command and gets the
// code of the last error (0 = none).
#include <string>
#include <utility>
#include <vector>

#include "hw/transport.hpp"

namespace opx::hw::gcs2 {

// Sends `command` followed by LF.
void send(Transport& t, const std::string& command);

// Reads one (possibly multi-line) answer; each returned line without its
// end. Timeout (75) when the answer does not end in time, protocol error
// (76) when it exceeds `max_lines`.
std::vector<std::string> read_answer(Transport& t, Milliseconds timeout, std::size_t max_lines = 256);

// Sends a query and returns its answer lines.
std::vector<std::string> query(Transport& t, const std::string& command, Milliseconds timeout);

// "1=+12.5000" -> {"1", 12.5}; protocol error (76) naming the line otherwise.
std::pair<std::string, double> axis_value(const std::string& line, const std::string& device);

// The controller's description of a GCS error code (PI_CNTR_*).
std::string error_text(int code);

// Asks ERR? and throws when the controller reports an error after `command`:
// position or velocity out of limits is bad input (65), anything else a
// protocol error (76); the message names the command, the code and its text.
void check_error(Transport& t, const std::string& command, Milliseconds timeout);

}  // namespace opx::hw::gcs2
