#include "core/run_tool.hpp"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <new>

#include "core/config.hpp"
#include "core/error.hpp"
#include "core/log.hpp"

namespace opx {
namespace {
ProgressMode g_progress = ProgressMode::automatic;
std::vector<std::string> g_argv;

// Flushes and closes stdout; reports a failed write (ENOSPC, EPIPE, EIO)
// with the reason of the first write that failed.
int close_stdout(const std::string& name, int rc) {
  errno = 0;
  std::cout.flush();
  int err = errno;
  bool bad = std::cout.fail();
  if (std::fflush(stdout) != 0 || std::ferror(stdout)) {
    bad = true;
    if (!err) err = errno;
  }
  if (std::fclose(stdout) != 0 && !bad) {
    bad = true;
    err = errno;
  }
  if (bad) {
    std::fprintf(stderr, "%s: cannot write to standard output: %s\n", name.c_str(),
                 err ? std::strerror(err) : "write error");
    return rc == 0 ? to_int(ExitCode::io_error) : rc;
  }
  return rc;
}
}  // namespace

ProgressMode progress_mode() { return g_progress; }
const std::vector<std::string>& command_line() { return g_argv; }

Tool::Tool(std::string name, std::string description, std::string footer)
    : name_(std::move(name)), app_(std::move(description), name_) {
  log::set_program(name_);
  app_.set_version_flag("--version", fmt::format("{} (opx) {}", name_, config::version),
                        "Print the version and exit");
  app_.add_flag("-v,--verbose", verbosity_, "More messages on stderr (repeat for debug)");
  app_.add_flag("-q,--quiet", quiet_, "Only errors on stderr");
  app_.add_option("--progress", progress_, "Progress on stderr: auto (when a terminal), always, never")
      ->check(CLI::IsMember({"auto", "always", "never"}))
      ->capture_default_str();
  if (!footer.empty()) app_.footer(footer);
  app_.get_formatter()->column_width(32);
}

int Tool::run(int argc, char** argv, const std::function<int()>& body) {
  g_argv.assign(argv, argv + argc);
  try {
    app_.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return close_stdout(name_, app_.exit(e));
  } catch (const CLI::CallForAllHelp& e) {
    return close_stdout(name_, app_.exit(e));
  } catch (const CLI::CallForVersion& e) {
    return close_stdout(name_, app_.exit(e));
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "%s: usage: %s\nRun '%s --help' for more information.\n", name_.c_str(),
                 e.what(), name_.c_str());
    return to_int(ExitCode::usage);
  }
  if (quiet_) log::set_level(log::Level::quiet);
  else if (verbosity_ >= 2) log::set_level(log::Level::debug);
  else if (verbosity_ == 1) log::set_level(log::Level::verbose);
  g_progress = progress_ == "always" ? ProgressMode::always
               : progress_ == "never" ? ProgressMode::never
                                      : ProgressMode::automatic;
  int rc = 0;
  try {
    rc = body();
  } catch (const Error& e) {
    std::fprintf(stderr, "%s: %s\n", name_.c_str(), e.what());
    if (e.code() == ExitCode::usage)
      std::fprintf(stderr, "Run '%s --help' for more information.\n", name_.c_str());
    rc = to_int(e.code());
  } catch (const CLI::Error& e) {
    std::fprintf(stderr, "%s: usage: %s\n", name_.c_str(), e.what());
    rc = to_int(ExitCode::usage);
  } catch (const std::bad_alloc&) {
    std::fprintf(stderr, "%s: out of memory: try a smaller --chunk or --memory limit\n", name_.c_str());
    rc = to_int(ExitCode::software);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: internal error: %s (please report this)\n", name_.c_str(), e.what());
    rc = to_int(ExitCode::software);
  }
  return close_stdout(name_, rc);
}

}  // namespace opx
