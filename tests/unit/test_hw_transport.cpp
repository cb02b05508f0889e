// hw: device URIs, the loopback into an emulator, and the termios transport
// over a real pseudo-terminal pair (the other end played by this test).
#define BOOST_TEST_MODULE hw_transport
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <unistd.h>

#include <cstring>
#include <memory>
#include <string>

#include "core/error.hpp"
#include "io_test_support.hpp"
#include "hw/device_uri.hpp"
#include "hw/termios_transport.hpp"
#include "hw/transport.hpp"

using namespace opx;
using namespace opx::hw;
using namespace std::chrono_literals;
using opx::test::exit_code_of;

namespace {

// Answers "PING\n" with "PONG\n" and echoes anything else reversed.
class PingEmulator : public Emulator {
 public:
  void receive(const std::uint8_t* data, std::size_t size, std::vector<std::uint8_t>& reply) override {
    std::string in(reinterpret_cast<const char*>(data), size);
    std::string out = in == "PING\n" ? "PONG\n" : std::string(in.rbegin(), in.rend());
    reply.insert(reply.end(), out.begin(), out.end());
  }
  std::string name() const override { return "ping"; }
};

// The master side of a pseudo-terminal; its slave path is what a driver opens.
struct Pty {
  int master = -1;
  std::string slave;
  Pty() {
    master = ::posix_openpt(O_RDWR | O_NOCTTY);
    BOOST_REQUIRE(master >= 0);
    BOOST_REQUIRE(::grantpt(master) == 0);
    BOOST_REQUIRE(::unlockpt(master) == 0);
    slave = ::ptsname(master);
  }
  ~Pty() { ::close(master); }
  std::string read_master(std::size_t n, int timeout_ms = 1000) {
    std::string out;
    while (out.size() < n) {
      pollfd p{master, POLLIN, 0};
      if (::poll(&p, 1, timeout_ms) <= 0) break;
      char buf[256];
      ssize_t r = ::read(master, buf, std::min(sizeof buf, n - out.size()));
      if (r <= 0) break;
      out.append(buf, static_cast<std::size_t>(r));
    }
    return out;
  }
  void write_master(const std::string& s) { BOOST_REQUIRE(::write(master, s.data(), s.size()) == ssize_t(s.size())); }
};

}  // namespace

BOOST_AUTO_TEST_CASE(device_uris) {
  DeviceUri a = parse_device_uri("dp5:/dev/ttyUSB0");
  BOOST_TEST(a.driver == "dp5");
  BOOST_TEST(a.connection == "/dev/ttyUSB0");
  BOOST_TEST(a.options.empty());
  BOOST_TEST(!a.simulated());
  DeviceUri b = parse_device_uri("GCS2:/dev/ttyS1, baud=115200,axis=Z");
  BOOST_TEST(b.driver == "gcs2");
  BOOST_TEST(*b.integer_option("baud") == 115200);
  BOOST_TEST(*b.option("axis") == "Z");
  BOOST_TEST(!b.option("parity").has_value());
  BOOST_TEST(parse_device_uri("gsv3:sim,speed=100").simulated());
  for (const char* bad : {"", "dp5", ":sim", "dp5:", "dp5:sim,baud", "dp5:sim,=3", "dp5:sim,a=1,a=2", "d p5:sim"}) {
    BOOST_TEST_INFO(bad);
    BOOST_TEST(exit_code_of([&] { parse_device_uri(bad); }) == 64);
  }
  BOOST_TEST(exit_code_of([&] { parse_device_uri("dp5:sim,baud=fast").integer_option("baud"); }) == 64);
}

BOOST_AUTO_TEST_CASE(loopback_delivers_the_emulator_replies) {
  LoopbackTransport t(std::make_shared<PingEmulator>());
  t.write(std::string("PING\n"));
  BOOST_TEST(read_until(t, '\n', 64, 100ms, "ping reply") == "PONG\n");
  t.write(std::string("abc"));
  auto bytes = read_exact(t, 3, 100ms, "echo");
  BOOST_TEST(std::string(bytes.begin(), bytes.end()) == "cba");
  // Nothing more will come: a timeout (75).
  BOOST_TEST(exit_code_of([&] { read_exact(t, 1, 100ms, "nothing"); }) == 75);
  t.write(std::string("xyz"));
  t.flush();
  BOOST_TEST(exit_code_of([&] { read_exact(t, 1, 10ms, "after flush"); }) == 75);
  BOOST_TEST(t.describe() == "loopback:ping");
}

BOOST_AUTO_TEST_CASE(termios_transport_over_a_pseudo_terminal) {
  Pty pty;
  TermiosTransport t(pty.slave, SerialSettings{});
  t.write(std::string("*IDN?\n"));
  t.drain();
  BOOST_TEST(pty.read_master(6) == "*IDN?\n");
  pty.write_master("opx,emulator,1\n");
  BOOST_TEST(read_until(t, '\n', 64, 1000ms, "identity") == "opx,emulator,1\n");
  // Part of a reply, then silence: a timeout (75) naming what was awaited.
  pty.write_master("ab");
  BOOST_TEST(exit_code_of([&] { read_exact(t, 4, 150ms, "status"); }) == 75);
  // A reply without its terminator beyond the limit is a protocol error (76).
  pty.write_master(std::string(100, 'x'));
  BOOST_TEST(exit_code_of([&] { read_until(t, '\n', 32, 1000ms, "runaway"); }) == 76);
}

BOOST_AUTO_TEST_CASE(one_program_per_port) {
  Pty pty;
  TermiosTransport first(pty.slave, SerialSettings{});
  BOOST_TEST(exit_code_of([&] { TermiosTransport second(pty.slave, SerialSettings{}); }) == 69);
}

BOOST_AUTO_TEST_CASE(bad_ports_and_settings) {
  BOOST_TEST(exit_code_of([] { TermiosTransport t("/dev/opx-no-such-port", SerialSettings{}); }) == 66);
  BOOST_TEST(exit_code_of([] { TermiosTransport t("/dev/null", SerialSettings{}); }) == 69);  // not a tty
  Pty pty;
  SerialSettings odd;
  odd.baud = 12345;
  BOOST_TEST(exit_code_of([&] { TermiosTransport t(pty.slave, odd); }) == 64);
  SerialSettings s7e2{9600, 7, 'E', 2, false, false};
  BOOST_TEST(s7e2.describe() == "9600 7E2");
  TermiosTransport t(pty.slave, s7e2);
  BOOST_TEST(t.describe() == pty.slave + " (9600 7E2)");
}
