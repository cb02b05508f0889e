#pragma once
// Byte transports under every instrument driver (see DESIGN.md, Hardware).
// Protocol code sees only "read with timeout", "write", "flush" and "drain",
// so one driver runs on a serial port, a pseudo-terminal served by
// opx-devsim, or an in-process emulator through the loopback; nothing above
// the byte level is mocked.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace opx::hw {

using Milliseconds = std::chrono::milliseconds;
using Deadline = std::chrono::steady_clock::time_point;

// Time left until `deadline`, never negative: the timeout of the next read
// of a reply that must be complete by then.
Milliseconds remaining(Deadline deadline);

class Transport {
 public:
  virtual ~Transport() = default;

  // Reads up to `size` bytes into `data`, waiting at most `timeout` for the
  // first byte; returns how many were read. 0 means the timeout passed with
  // nothing received (for a loopback: the emulator has nothing to send).
  virtual std::size_t read(std::uint8_t* data, std::size_t size, Milliseconds timeout) = 0;
  // Writes all `size` bytes or throws (io_error, or unavailable when the
  // device went away).
  virtual void write(const std::uint8_t* data, std::size_t size) = 0;
  // Discards input received but not read yet (stale replies before a command).
  virtual void flush() = 0;
  // Returns when everything written has left the host.
  virtual void drain() = 0;
  // "termios:/dev/pts/3 115200 8N1", "loopback:dp5" — for messages.
  virtual std::string describe() const = 0;

  void write(const std::vector<std::uint8_t>& bytes) { write(bytes.data(), bytes.size()); }
  void write(const std::string& text);
};

// Reads exactly `size` bytes or throws a timeout error (exit 75) naming
// `what` and how many bytes did arrive. `timeout` bounds the whole read.
std::vector<std::uint8_t> read_exact(Transport& t, std::size_t size, Milliseconds timeout, const std::string& what);

// Reads up to and including `terminator`; throws timeout (75) when it does not
// come within `timeout`, protocol error (76) when `max_size` bytes pass first.
std::string read_until(Transport& t, char terminator, std::size_t max_size, Milliseconds timeout,
                       const std::string& what);

// An instrument emulator behind a LoopbackTransport: it receives the bytes a
// driver writes and queues the bytes the device would send back.
class Emulator {
 public:
  virtual ~Emulator() = default;
  virtual void receive(const std::uint8_t* data, std::size_t size, std::vector<std::uint8_t>& reply) = 0;
  virtual std::string name() const = 0;
};

// In-process transport into an emulator. Replies are available as soon as
// the emulator produced them; a read that finds nothing returns 0 at once
// (the emulator's clock, not the wall clock, decides what "later" means).
class LoopbackTransport : public Transport {
 public:
  explicit LoopbackTransport(std::shared_ptr<Emulator> emulator);
  std::size_t read(std::uint8_t* data, std::size_t size, Milliseconds timeout) override;
  using Transport::write;
  void write(const std::uint8_t* data, std::size_t size) override;
  void flush() override { pending_.clear(); head_ = 0; }
  void drain() override {}
  std::string describe() const override;

 private:
  std::shared_ptr<Emulator> emulator_;
  std::vector<std::uint8_t> pending_;
  std::size_t head_ = 0;
};

}  // namespace opx::hw
