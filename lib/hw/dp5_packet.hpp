#pragma once
// Packet layer of the Amptek DP5 protocol (DP5, PX5, X-123 MCAs), after the
// DP5 Programmer's Guide: every packet is
//   SYNC1 0xF5, SYNC2 0xFA, PID1, PID2, LEN (16 bit, MSB first), DATA[LEN],
//   CHECKSUM (16 bit, MSB first)
// where the checksum is the two's complement of the 16-bit sum of all the
// bytes before it (so the sum of the whole packet is 0 modulo 65536). The
// request-status packet is F5 FA 01 01 00 00 FE 0F.
#include <cstdint>
#include <string>
#include <vector>

#include "hw/transport.hpp"

namespace opx::hw::dp5 {

struct Packet {
  std::uint8_t pid1 = 0, pid2 = 0;
  std::vector<std::uint8_t> data;
};

// Packet IDs (PID1, PID2) of the requests and responses opx uses.
namespace pid {
inline constexpr std::uint8_t request_status[2] = {0x01, 0x01};
inline constexpr std::uint8_t request_spectrum[2] = {0x02, 0x01};
inline constexpr std::uint8_t request_spectrum_status[2] = {0x02, 0x03};
inline constexpr std::uint8_t clear_spectrum[2] = {0xF0, 0x01};
inline constexpr std::uint8_t enable_mca[2] = {0xF0, 0x02};
inline constexpr std::uint8_t disable_mca[2] = {0xF0, 0x03};
inline constexpr std::uint8_t text_configuration[2] = {0x20, 0x02};
inline constexpr std::uint8_t text_configuration_readback[2] = {0x20, 0x03};
inline constexpr std::uint8_t keep_alive[2] = {0xF0, 0x21};
inline constexpr std::uint8_t status_response = 0x80;   // PID2 0x01
inline constexpr std::uint8_t spectrum_response = 0x81; // PID2 0x01..0x0C
inline constexpr std::uint8_t acknowledge = 0xFF;
}  // namespace pid

// The largest DATA a DP5 sends: 8192 channels x 3 bytes + 64 status bytes.
inline constexpr std::size_t max_data_length = 8192 * 3 + 64;

std::uint16_t checksum(const std::uint8_t* bytes, std::size_t size);
std::vector<std::uint8_t> encode(std::uint8_t pid1, std::uint8_t pid2, const std::vector<std::uint8_t>& data = {});
std::vector<std::uint8_t> encode(const Packet& p);

// Reads one packet: skips bytes until SYNC1 SYNC2 (a lost or extra byte
// costs at most the bytes before the next sync), then checks LEN and the
// checksum. Timeout (75) when the packet does not complete within
// `timeout`; protocol error (76) for a bad length or checksum, naming both sums.
Packet read_packet(Transport& t, Milliseconds timeout);

// For an acknowledge packet (PID1 0xFF): the meaning of its PID2, e.g.
// "checksum error", "busy, another interface in use".
std::string acknowledge_text(std::uint8_t pid2);
// True for the acknowledge codes that mean success (OK, OK + sharing
// request, OK + FPGA upload address).
bool acknowledge_ok(std::uint8_t pid2);
// Throws protocol error (76), or unavailable (69) for "busy", when `p` is an
// error acknowledgement; `command` names what was sent.
void check_acknowledge(const Packet& p, const std::string& command, const std::string& device);

// Spectrum response PID2 -> channel count (256 ... 8192) and whether a status
// block follows the counts; channels 0 for a PID2 that is not a spectrum.
struct SpectrumLayout {
  int channels = 0;
  bool with_status = false;
};
SpectrumLayout spectrum_layout(std::uint8_t pid2);

}  // namespace opx::hw::dp5
