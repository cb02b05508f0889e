// DP5 packet layer against the DP5 Programmer's Guide: the documented
// request-status packet, checksums, and byte streams with lost, extra and
// corrupted bytes through the loopback transport.
#define BOOST_TEST_MODULE hw_dp5_packet
#include <boost/test/unit_test.hpp>

#include <memory>

#include "core/error.hpp"
#include "io_test_support.hpp"
#include "hw/dp5_packet.hpp"
#include "hw/transport.hpp"

using namespace opx;
using namespace opx::hw;
using namespace std::chrono_literals;
using opx::test::exit_code_of;

namespace {

// Replies to any write with the bytes it was loaded with.
class Canned : public Emulator {
 public:
  std::vector<std::uint8_t> bytes;
  void receive(const std::uint8_t*, std::size_t, std::vector<std::uint8_t>& reply) override {
    reply.insert(reply.end(), bytes.begin(), bytes.end());
    bytes.clear();
  }
  std::string name() const override { return "canned"; }
};

struct Link {
  std::shared_ptr<Canned> device = std::make_shared<Canned>();
  LoopbackTransport t{device};
  dp5::Packet exchange(std::vector<std::uint8_t> reply) {
    device->bytes = std::move(reply);
    t.write(dp5::encode(0x01, 0x01));
    return dp5::read_packet(t, 100ms);
  }
};

}  // namespace

BOOST_AUTO_TEST_CASE(request_status_packet_is_byte_exact) {
  // DP5 Programmer's Guide, "Request Status Packet": F5 FA 01 01 00 00 FE 0F.
  BOOST_TEST(dp5::encode(0x01, 0x01) == std::vector<std::uint8_t>({0xF5, 0xFA, 0x01, 0x01, 0x00, 0x00, 0xFE, 0x0F}));
  // Any packet sums to zero modulo 65536, checksum included.
  auto p = dp5::encode(0x20, 0x02, {'P', 'R', 'E', 'T', '=', '3', '0', ';'});
  std::uint32_t sum = 0;
  for (std::size_t i = 0; i + 2 < p.size(); ++i) sum += p[i];
  sum += (std::uint32_t(p[p.size() - 2]) << 8) | p.back();
  BOOST_TEST((sum & 0xFFFF) == 0u);
  BOOST_TEST(p[5] == 8);
}

BOOST_AUTO_TEST_CASE(packets_survive_lost_and_extra_bytes) {
  Link link;
  std::vector<std::uint8_t> status(64);
  for (int i = 0; i < 64; ++i) status[i] = static_cast<std::uint8_t>(i * 3);
  auto good = dp5::encode(0x80, 0x01, status);
  dp5::Packet p = link.exchange(good);
  BOOST_TEST(p.pid1 == 0x80);
  BOOST_TEST(p.pid2 == 0x01);
  BOOST_TEST(p.data == status);
  // Garbage (including a lone SYNC1) before the packet: skipped.
  std::vector<std::uint8_t> noisy = {0x00, 0xF5, 0x13, 0xFA, 0xF5};
  noisy.insert(noisy.end(), good.begin(), good.end());
  BOOST_TEST(link.exchange(noisy).data == status);
}

BOOST_AUTO_TEST_CASE(corrupted_and_truncated_packets_are_errors) {
  Link link;
  auto good = dp5::encode(0x80, 0x01, std::vector<std::uint8_t>(64, 7));
  auto flipped = good;
  flipped[20] ^= 0x01;  // one bit in the data
  BOOST_TEST(exit_code_of([&] { link.exchange(flipped); }) == 76);
  try {
    link.exchange(flipped);
  } catch (const Error& e) {
    BOOST_TEST(e.why().find("checksum") != std::string::npos);
  }
  auto cut = good;
  cut.resize(30);  // the device stopped sending
  BOOST_TEST(exit_code_of([&] { link.exchange(cut); }) == 75);
  BOOST_TEST(exit_code_of([&] { link.exchange({}); }) == 75);  // no answer at all
  std::vector<std::uint8_t> huge = {0xF5, 0xFA, 0x81, 0x0C, 0x7F, 0xFF};  // LEN 32767
  BOOST_TEST(exit_code_of([&] { link.exchange(huge); }) == 76);
}

BOOST_AUTO_TEST_CASE(acknowledgements) {
  BOOST_TEST(dp5::acknowledge_text(0x04) == "checksum error");
  BOOST_TEST(dp5::acknowledge_text(0x0D) == "busy, another interface in use");
  BOOST_TEST(dp5::acknowledge_text(0x42).find("unknown") != std::string::npos);
  BOOST_TEST(dp5::acknowledge_ok(0x00));
  BOOST_TEST(dp5::acknowledge_ok(0x0C));
  BOOST_TEST(!dp5::acknowledge_ok(0x07));
  dp5::Packet ok{0xFF, 0x00, {}};
  BOOST_CHECK_NO_THROW(dp5::check_acknowledge(ok, "ENABLE", "dp5:sim"));
  dp5::Packet bad{0xFF, 0x05, {'T', 'P', 'E', 'A', '=', '9', '9', '9'}};
  try {
    dp5::check_acknowledge(bad, "text configuration", "dp5:sim");
    BOOST_FAIL("accepted an error acknowledgement");
  } catch (const Error& e) {
    BOOST_TEST(static_cast<int>(e.code()) == 76);
    BOOST_TEST(e.why() == "text configuration answered 'bad parameter' (TPEA=999)");
  }
  dp5::Packet busy{0xFF, 0x0D, {}};
  BOOST_TEST(exit_code_of([&] { dp5::check_acknowledge(busy, "status", "dp5:/dev/ttyUSB0"); }) == 69);
}

BOOST_AUTO_TEST_CASE(spectrum_layouts) {
  BOOST_TEST(dp5::spectrum_layout(0x01).channels == 256);
  BOOST_TEST(!dp5::spectrum_layout(0x01).with_status);
  BOOST_TEST(dp5::spectrum_layout(0x02).with_status);
  BOOST_TEST(dp5::spectrum_layout(0x08).channels == 2048);
  BOOST_TEST(dp5::spectrum_layout(0x0C).channels == 8192);
  BOOST_TEST(dp5::spectrum_layout(0x0D).channels == 0);
}
