#pragma once
#include <stdexcept>
#include <string>

#include "core/exit_codes.hpp"

namespace opx {

// The one exception type of libopx. It carries the exit code the program ends
// with and the three parts of the message users see:
//   <tool>: <what>: <where>: <why>
// e.g. "cmx-fit: cannot read spectrum: scan.h5:/entry/data/counts: dataset not found".
// `where` names the file, dataset, field path, line or byte; it may be empty.
class Error : public std::runtime_error {
 public:
  Error(ExitCode code, std::string what, std::string where, std::string why);

  ExitCode code() const noexcept { return code_; }
  const std::string& what_part() const noexcept { return what_; }
  const std::string& where() const noexcept { return where_; }
  const std::string& why() const noexcept { return why_; }

  // Returns a copy whose `where` is prefixed by `outer` ("file.json" + "/a/b").
  Error located(const std::string& outer) const;

 private:
  static std::string compose(const std::string& what, const std::string& where,
                             const std::string& why);
  ExitCode code_;
  std::string what_, where_, why_;
};

// Shorthands for the common kinds of error.
Error usage_error(std::string what, std::string where, std::string why);
Error data_error(std::string what, std::string where, std::string why);
Error input_missing(std::string what, std::string where, std::string why);
Error config_error(std::string what, std::string where, std::string why);
Error io_error(std::string what, std::string where, std::string why);
Error create_error(std::string what, std::string where, std::string why);
Error internal_error(std::string what, std::string where, std::string why);

}  // namespace opx
