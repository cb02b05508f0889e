#include "hw/transport.hpp"

#include <algorithm>

#include <fmt/format.h>

#include "core/error.hpp"

namespace opx::hw {

Milliseconds remaining(Deadline deadline) {
  auto left = std::chrono::duration_cast<Milliseconds>(deadline - std::chrono::steady_clock::now());
  return left.count() < 0 ? Milliseconds(0) : left;
}

void Transport::write(const std::string& text) {
  write(reinterpret_cast<const std::uint8_t*>(text.data()), text.size());
}

std::vector<std::uint8_t> read_exact(Transport& t, std::size_t size, Milliseconds timeout, const std::string& what) {
  std::vector<std::uint8_t> out(size);
  std::size_t got = 0;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (got < size) {
    std::size_t n = t.read(out.data() + got, size - got, remaining(deadline));
    if (n == 0) break;  // a read returns nothing only once its timeout has passed
    got += n;
  }
  if (got < size)
    throw Error(ExitCode::temp_fail, "device did not answer in time", t.describe(),
                fmt::format("{}: {} of {} bytes within {} ms", what, got, size, timeout.count()));
  return out;
}

std::string read_until(Transport& t, char terminator, std::size_t max_size, Milliseconds timeout,
                       const std::string& what) {
  std::string out;
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    std::uint8_t c = 0;
    std::size_t n = t.read(&c, 1, remaining(deadline));
    if (n == 0)
      throw Error(ExitCode::temp_fail, "device did not answer in time", t.describe(),
                  fmt::format("{}: no end of reply within {} ms ({} bytes received)", what, timeout.count(),
                              out.size()));
    out.push_back(static_cast<char>(c));
    if (static_cast<char>(c) == terminator) return out;
    if (out.size() >= max_size)
      throw Error(ExitCode::protocol, "reply too long", t.describe(),
                  fmt::format("{}: {} bytes without the end-of-reply byte 0x{:02x}", what, out.size(),
                              static_cast<unsigned char>(terminator)));
  }
}

LoopbackTransport::LoopbackTransport(std::shared_ptr<Emulator> emulator) : emulator_(std::move(emulator)) {
  if (!emulator_) throw internal_error("cannot open loopback", "", "no emulator");
}

std::size_t LoopbackTransport::read(std::uint8_t* data, std::size_t size, Milliseconds) {
  std::size_t n = std::min(size, pending_.size() - head_);
  std::copy_n(pending_.begin() + static_cast<std::ptrdiff_t>(head_), n, data);
  head_ += n;
  if (head_ == pending_.size()) {
    pending_.clear();
    head_ = 0;
  }
  return n;
}

void LoopbackTransport::write(const std::uint8_t* data, std::size_t size) {
  std::vector<std::uint8_t> reply;
  emulator_->receive(data, size, reply);
  pending_.insert(pending_.end(), reply.begin(), reply.end());
}

std::string LoopbackTransport::describe() const { return "loopback:" + emulator_->name(); }

}  // namespace opx::hw
