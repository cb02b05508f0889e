#include "hw/dp5_packet.hpp"

#include <fmt/format.h>

#include "core/error.hpp"

namespace opx::hw::dp5 {
namespace {
constexpr std::uint8_t kSync1 = 0xF5, kSync2 = 0xFA;

// Two's complement of the 16-bit byte sum.
std::uint16_t complement(std::uint32_t sum) { return static_cast<std::uint16_t>((0x10000u - (sum & 0xFFFFu)) & 0xFFFFu); }
}  // namespace

std::uint16_t checksum(const std::uint8_t* bytes, std::size_t size) {
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i < size; ++i) sum += bytes[i];
  return complement(sum);
}

std::vector<std::uint8_t> encode(std::uint8_t pid1, std::uint8_t pid2, const std::vector<std::uint8_t>& data) {
  if (data.size() > 0x7FFF) throw internal_error("cannot encode DP5 packet", "", "data longer than 32767 bytes");
  std::vector<std::uint8_t> out;
  out.reserve(data.size() + 8);
  for (std::uint8_t b : {kSync1, kSync2, pid1, pid2, static_cast<std::uint8_t>(data.size() >> 8),
                         static_cast<std::uint8_t>(data.size() & 0xFF)})
    out.push_back(b);
  for (std::uint8_t b : data) out.push_back(b);
  std::uint16_t c = checksum(out.data(), out.size());
  out.push_back(static_cast<std::uint8_t>(c >> 8));
  out.push_back(static_cast<std::uint8_t>(c & 0xFF));
  return out;
}

std::vector<std::uint8_t> encode(const Packet& p) { return encode(p.pid1, p.pid2, p.data); }

Packet read_packet(Transport& t, Milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  // Resynchronize: find SYNC1 followed by SYNC2.
  std::uint8_t prev = 0, byte = 0;
  std::size_t seen = 0;
  for (;;) {
    if (t.read(&byte, 1, remaining(deadline)) == 0)
      throw Error(ExitCode::temp_fail, "device did not answer in time", t.describe(),
                  fmt::format("no DP5 packet within {} ms ({} bytes without a packet start)", timeout.count(), seen));
    ++seen;
    if (prev == kSync1 && byte == kSync2) break;
    prev = byte;
  }
  std::vector<std::uint8_t> head = read_exact(t, 4, remaining(deadline), "DP5 packet header");
  const std::size_t len = (std::size_t(head[2]) << 8) | head[3];
  if (len > max_data_length)
    throw Error(ExitCode::protocol, "bad DP5 packet", t.describe(),
                fmt::format("PID {:02X} {:02X} announces {} data bytes, more than any DP5 packet ({})", head[0],
                            head[1], len, max_data_length));
  std::vector<std::uint8_t> body = read_exact(t, len + 2, remaining(deadline), "DP5 packet data");
  // The checksum covers SYNC, PIDs, LEN and DATA.
  std::uint32_t sum = kSync1 + kSync2 + head[0] + head[1] + head[2] + head[3];
  for (std::size_t i = 0; i < len; ++i) sum += body[i];
  const std::uint16_t expected = complement(sum);
  const std::uint16_t received = static_cast<std::uint16_t>((body[len] << 8) | body[len + 1]);
  if (expected != received)
    throw Error(ExitCode::protocol, "bad DP5 packet", t.describe(),
                fmt::format("PID {:02X} {:02X}, {} data bytes: checksum 0x{:04X} received, 0x{:04X} computed", head[0],
                            head[1], len, received, expected));
  Packet p;
  p.pid1 = head[0];
  p.pid2 = head[1];
  p.data.assign(body.begin(), body.end() - 2);
  return p;
}

std::string acknowledge_text(std::uint8_t pid2) {
  static const char* const kText[] = {
      "OK",
      "sync error",
      "PID error",
      "LEN error",
      "checksum error",
      "bad parameter",
      "bad hex record",
      "unrecognized command",
      "FPGA error (not initialized)",
      "CP2201 not found",
      "scope data not available",
      "PC5 not present",
      "OK, interface sharing request",
      "busy, another interface in use",
      "I2C error",
      "OK, FPGA upload address",
      "feature not supported by this FPGA version",
      "calibration data not present",
  };
  if (pid2 < sizeof kText / sizeof kText[0]) return kText[pid2];
  return fmt::format("unknown acknowledge code 0x{:02X}", pid2);
}

bool acknowledge_ok(std::uint8_t pid2) { return pid2 == 0x00 || pid2 == 0x0C || pid2 == 0x0F; }

void check_acknowledge(const Packet& p, const std::string& command, const std::string& device) {
  if (p.pid1 != pid::acknowledge || acknowledge_ok(p.pid2)) return;
  std::string why = fmt::format("{} answered '{}'", command, acknowledge_text(p.pid2));
  // A bad parameter is echoed back in the data as text: show it.
  if (p.pid2 == 0x05 && !p.data.empty()) why += fmt::format(" ({})", std::string(p.data.begin(), p.data.end()));
  throw Error(p.pid2 == 0x0D ? ExitCode::unavailable : ExitCode::protocol, "device refused a command", device, why);
}

SpectrumLayout spectrum_layout(std::uint8_t pid2) {
  if (pid2 < 0x01 || pid2 > 0x0C) return {};
  // PID2 1/2: 256 channels (without/with status), 3/4: 512, ... 11/12: 8192.
  return {256 << ((pid2 - 1) / 2), (pid2 % 2) == 0};
}

}  // namespace opx::hw::dp5
