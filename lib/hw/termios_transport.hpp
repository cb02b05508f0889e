#pragma once
// A serial transport over POSIX termios: opens any tty path, pseudo-terminals
// included (Debian's libserialport cannot open PTYs, and opx-devsim serves
// its emulators on them), in raw mode with the given line settings, and
// locks it so that two programs cannot drive one port.
#include <string>

#include "hw/transport.hpp"

namespace opx::hw {

struct SerialSettings {
  int baud = 115200;
  int data_bits = 8;            // 5..8
  char parity = 'N';            // N, E, O
  int stop_bits = 1;            // 1, 2
  bool hardware_flow = false;   // RTS/CTS
  bool software_flow = false;   // XON/XOFF
  std::string describe() const; // "115200 8N1"
};

class TermiosTransport : public Transport {
 public:
  // Throws no_input (66) when the path does not exist, unavailable (69) when
  // it cannot be opened or another program holds it, usage (64) for a baud
  // rate the system does not know.
  TermiosTransport(std::string path, const SerialSettings& settings);
  ~TermiosTransport() override;
  TermiosTransport(const TermiosTransport&) = delete;
  TermiosTransport& operator=(const TermiosTransport&) = delete;

  std::size_t read(std::uint8_t* data, std::size_t size, Milliseconds timeout) override;
  using Transport::write;
  void write(const std::uint8_t* data, std::size_t size) override;
  void flush() override;
  void drain() override;
  std::string describe() const override;

 private:
  std::string path_;
  SerialSettings settings_;
  int fd_ = -1;
};

}  // namespace opx::hw
