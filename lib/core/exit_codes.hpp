#pragma once
// Exit codes of every opx program: the BSD sysexits(3) values, defined here so
// that no program depends on the system header being present or complete.
namespace opx {

enum class ExitCode : int {
  ok = 0,
  usage = 64,          // EX_USAGE: bad command line
  data_error = 65,     // EX_DATAERR: input data is malformed or inconsistent
  no_input = 66,       // EX_NOINPUT: an input file does not exist or is unreadable
  unavailable = 69,    // EX_UNAVAILABLE: a device or service is not there
  software = 70,       // EX_SOFTWARE: internal error (a bug in opx)
  cannot_create = 73,  // EX_CANTCREAT: an output cannot be created
  io_error = 74,       // EX_IOERR: a read or write failed part-way
  temp_fail = 75,      // EX_TEMPFAIL: timeout; worth retrying
  protocol = 76,       // EX_PROTOCOL: a device answered outside its protocol
  config = 78,         // EX_CONFIG: a configuration is invalid
};

inline constexpr int to_int(ExitCode c) { return static_cast<int>(c); }
const char* exit_code_name(ExitCode c);

}  // namespace opx
