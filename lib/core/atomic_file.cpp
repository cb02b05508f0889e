#include "core/atomic_file.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <cstdio>

#include <fmt/format.h>

#include "core/error.hpp"

namespace opx {
namespace fs = std::filesystem;

namespace {
std::atomic<int> g_counter{0};
}

void AtomicOutput::check_target(const fs::path& target) {
  if (target.empty() || target == "-")
    throw usage_error("cannot write output", target.string(), "this output needs a file name");
  fs::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw create_error("cannot create output", target.string(),
                       fmt::format("folder '{}' does not exist", dir.string()));
  if (::access(dir.c_str(), W_OK) != 0)
    throw create_error("cannot create output", target.string(),
                       fmt::format("folder '{}' is not writable: {}", dir.string(), std::strerror(errno)));
  if (fs::is_directory(target, ec))
    throw create_error("cannot create output", target.string(), "a folder of that name exists");
}

AtomicOutput::AtomicOutput(fs::path target) : target_(std::move(target)) {
  check_target(target_);
  fs::path dir = target_.parent_path();
  if (dir.empty()) dir = ".";
  temp_ = dir / fmt::format(".{}.tmp-{}-{}", target_.filename().string(), ::getpid(), g_counter++);
}

AtomicOutput::~AtomicOutput() {
  if (!committed_) {
    std::error_code ec;
    fs::remove(temp_, ec);
  }
}

void AtomicOutput::commit() {
  int fd = ::open(temp_.c_str(), O_RDONLY);
  if (fd < 0)
    throw io_error("cannot finish output", target_.string(),
                   fmt::format("temporary file vanished: {}", std::strerror(errno)));
  ::fsync(fd);
  ::close(fd);
  if (std::rename(temp_.c_str(), target_.c_str()) != 0)
    throw create_error("cannot finish output", target_.string(), std::strerror(errno));
  committed_ = true;
}

void write_file_atomic(const fs::path& target, const std::string& content) {
  AtomicOutput out(target);
  FILE* f = std::fopen(out.temp_path().c_str(), "wb");
  if (!f) throw create_error("cannot create output", target.string(), std::strerror(errno));
  bool ok = std::fwrite(content.data(), 1, content.size(), f) == content.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) throw io_error("cannot write output", target.string(), std::strerror(errno));
  out.commit();
}

}  // namespace opx
