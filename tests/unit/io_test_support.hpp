#pragma once
// Shared by the unit tests: a scratch folder, running an independent
// program (h5py, h5dump, sha256sum) and capturing its output, and catching
// the opx::Error a call should throw.
#include <stdlib.h>
#include <sys/wait.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <stdexcept>
#include <string>

#include <boost/test/unit_test.hpp>
#include <fmt/format.h>

#include "core/error.hpp"

namespace opx::test {

// A fresh folder under /tmp, removed at the end of the test.
struct ScratchDir {
  std::filesystem::path dir;
  ScratchDir() {
    char pattern[] = "/tmp/opx-io-test-XXXXXX";
    if (!::mkdtemp(pattern)) throw std::runtime_error("mkdtemp failed");
    dir = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  std::filesystem::path operator/(const std::string& name) const { return dir / name; }
};

struct Output {
  int status = -1;
  std::string text;  // standard output
};

// Runs a shell command and captures its standard output.
inline Output run(const std::string& command) {
  Output result;
  FILE* pipe = ::popen(command.c_str(), "r");
  if (!pipe) throw std::runtime_error("popen failed: " + command);
  char buffer[4096];
  std::size_t n;
  while ((n = std::fread(buffer, 1, sizeof buffer, pipe)) > 0) result.text.append(buffer, n);
  const int status = ::pclose(pipe);
  result.status = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  return result;
}

inline void write_text(const std::filesystem::path& path, const std::string& text) {
  std::ofstream(path, std::ios::binary) << text;
}

// The path in single quotes for the shell.
inline std::string quoted(const std::filesystem::path& path) { return fmt::format("'{}'", path.string()); }

// Debian's interpreter, which has h5py (a plain `python3` on PATH may not).
inline const char* python = "/usr/bin/python3";

// The opx::Error that `call` throws; fails the test when it throws nothing.
template <typename Call>
opx::Error error_of(Call&& call) {
  try {
    call();
  } catch (const opx::Error& e) {
    return e;
  }
  BOOST_FAIL("expected an opx::Error");
  throw std::logic_error("unreachable");
}

// The exit code of the opx::Error `call` throws (a test failure if none).
template <typename Call>
int exit_code_of(Call&& call) {
  return static_cast<int>(error_of(std::forward<Call>(call)).code());
}

}  // namespace opx::test
