#include "core/error.hpp"

namespace opx {

const char* exit_code_name(ExitCode c) {
  switch (c) {
    case ExitCode::ok: return "ok";
    case ExitCode::usage: return "usage";
    case ExitCode::data_error: return "data error";
    case ExitCode::no_input: return "no input";
    case ExitCode::unavailable: return "unavailable";
    case ExitCode::software: return "internal error";
    case ExitCode::cannot_create: return "cannot create";
    case ExitCode::io_error: return "I/O error";
    case ExitCode::temp_fail: return "timeout";
    case ExitCode::protocol: return "protocol error";
    case ExitCode::config: return "configuration error";
  }
  return "unknown";
}

std::string Error::compose(const std::string& what, const std::string& where,
                           const std::string& why) {
  std::string s = what;
  if (!where.empty()) s += ": " + where;
  if (!why.empty()) s += ": " + why;
  return s;
}

Error::Error(ExitCode code, std::string what, std::string where, std::string why)
    : std::runtime_error(compose(what, where, why)),
      code_(code), what_(std::move(what)), where_(std::move(where)), why_(std::move(why)) {}

Error Error::located(const std::string& outer) const {
  std::string w = outer;
  if (!where_.empty()) w += (where_.front() == '/' || where_.front() == ':') ? where_ : ":" + where_;
  return Error(code_, what_, w, why_);
}

Error usage_error(std::string a, std::string b, std::string c) { return {ExitCode::usage, std::move(a), std::move(b), std::move(c)}; }
Error data_error(std::string a, std::string b, std::string c) { return {ExitCode::data_error, std::move(a), std::move(b), std::move(c)}; }
Error input_missing(std::string a, std::string b, std::string c) { return {ExitCode::no_input, std::move(a), std::move(b), std::move(c)}; }
Error config_error(std::string a, std::string b, std::string c) { return {ExitCode::config, std::move(a), std::move(b), std::move(c)}; }
Error io_error(std::string a, std::string b, std::string c) { return {ExitCode::io_error, std::move(a), std::move(b), std::move(c)}; }
Error create_error(std::string a, std::string b, std::string c) { return {ExitCode::cannot_create, std::move(a), std::move(b), std::move(c)}; }
Error internal_error(std::string a, std::string b, std::string c) { return {ExitCode::software, std::move(a), std::move(b), std::move(c)}; }

}  // namespace opx
