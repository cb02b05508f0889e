#pragma once
// The one wrapper every opx program's main() goes through:
//   options parsed by CLI11 into a struct  ->  one libopx call  ->
//   exceptions mapped to exit codes and "<tool>: <what>: <where>: <why>"  ->
//   stdout flushed, closed and checked (a full disk or closed pipe is an error).
#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "core/progress.hpp"

namespace opx {

class Tool {
 public:
  // `name` is the program name used in every message; `description` is the
  // one-line summary at the top of --help; `footer` typically holds examples.
  Tool(std::string name, std::string description, std::string footer = {});

  CLI::App& app() { return app_; }
  const std::string& name() const { return name_; }

  // Parses argv, then calls body(); returns the process exit code.
  int run(int argc, char** argv, const std::function<int()>& body);

 private:
  std::string name_;
  CLI::App app_;
  int verbosity_ = 0;
  bool quiet_ = false;
  std::string progress_ = "auto";
};

// The progress mode chosen on the command line (--progress=auto|always|never).
ProgressMode progress_mode();

// The command line as given, for manifests.
const std::vector<std::string>& command_line();

}  // namespace opx
