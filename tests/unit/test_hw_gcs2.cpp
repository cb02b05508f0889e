// GCS 2.0 line layer: multi-line answer framing, AXIS=VALUE parsing and the
// ERR? error check, against a scripted controller on the loopback.
#define BOOST_TEST_MODULE hw_gcs2
#include <boost/test/unit_test.hpp>

#include <map>
#include <memory>

#include "core/error.hpp"
#include "io_test_support.hpp"
#include "hw/gcs2.hpp"
#include "hw/transport.hpp"

using namespace opx;
using namespace opx::hw;
using namespace std::chrono_literals;
using opx::test::exit_code_of;

namespace {

// Answers each LF-terminated command from a script; unknown commands get nothing.
class ScriptedController : public Emulator {
 public:
  std::map<std::string, std::string> answers;
  std::vector<std::string> received;
  void receive(const std::uint8_t* data, std::size_t size, std::vector<std::uint8_t>& reply) override {
    buffer_.append(reinterpret_cast<const char*>(data), size);
    for (auto lf = buffer_.find('\n'); lf != std::string::npos; lf = buffer_.find('\n')) {
      std::string cmd = buffer_.substr(0, lf);
      buffer_.erase(0, lf + 1);
      received.push_back(cmd);
      auto it = answers.find(cmd);
      if (it != answers.end()) reply.insert(reply.end(), it->second.begin(), it->second.end());
    }
  }
  std::string name() const override { return "gcs2-script"; }

 private:
  std::string buffer_;
};

}  // namespace

BOOST_AUTO_TEST_CASE(multi_line_answers) {
  auto c = std::make_shared<ScriptedController>();
  c->answers["POS?"] = "1=+0.5000000 \n2=-12.2500000 \n3=+1e-3\n";
  c->answers["*IDN?"] = "(c)2023 Physik Instrumente (PI) GmbH & Co. KG, C-884.4DC, 0, 1.0.0\n";
  LoopbackTransport t(c);
  auto pos = gcs2::query(t, "POS?", 100ms);
  BOOST_REQUIRE(pos.size() == 3u);
  BOOST_TEST(gcs2::axis_value(pos[0], "stage").second == 0.5);
  BOOST_TEST(gcs2::axis_value(pos[1], "stage").first == "2");
  BOOST_TEST(gcs2::axis_value(pos[1], "stage").second == -12.25);
  BOOST_TEST(gcs2::axis_value(pos[2], "stage").second == 1e-3);
  BOOST_TEST(gcs2::query(t, "*IDN?", 100ms).size() == 1u);
  BOOST_TEST(c->received == std::vector<std::string>({"POS?", "*IDN?"}));
}

BOOST_AUTO_TEST_CASE(short_garbled_and_missing_answers) {
  auto c = std::make_shared<ScriptedController>();
  c->answers["POS?"] = "1=+0.5 \n";  // promises a second line that never comes
  c->answers["VEL?"] = "1=fast\n";
  c->answers["TMN?"] = "garbage\n";
  LoopbackTransport t(c);
  BOOST_TEST(exit_code_of([&] { gcs2::query(t, "POS?", 50ms); }) == 75);
  BOOST_TEST(exit_code_of([&] { gcs2::axis_value(gcs2::query(t, "VEL?", 50ms)[0], "stage"); }) == 76);
  BOOST_TEST(exit_code_of([&] { gcs2::axis_value(gcs2::query(t, "TMN?", 50ms)[0], "stage"); }) == 76);
  BOOST_TEST(exit_code_of([&] { gcs2::query(t, "ONT?", 50ms); }) == 75);  // no answer at all
}

BOOST_AUTO_TEST_CASE(error_codes_after_commands) {
  auto c = std::make_shared<ScriptedController>();
  LoopbackTransport t(c);
  c->answers["ERR?"] = "0\n";
  gcs2::send(t, "MOV 1 10");
  BOOST_CHECK_NO_THROW(gcs2::check_error(t, "MOV 1 10", 100ms));
  c->answers["ERR?"] = "7\n";
  try {
    gcs2::check_error(t, "MOV 1 900", 100ms);
    BOOST_FAIL("out-of-limits move accepted");
  } catch (const Error& e) {
    BOOST_TEST(static_cast<int>(e.code()) == 65);
    BOOST_TEST(e.why() == "MOV 1 900: error 7: position out of limits");
  }
  c->answers["ERR?"] = "5\n";
  BOOST_TEST(exit_code_of([&] { gcs2::check_error(t, "MOV 1 1", 100ms); }) == 76);
  c->answers["ERR?"] = "nonsense\n";
  BOOST_TEST(exit_code_of([&] { gcs2::check_error(t, "SVO 1 1", 100ms); }) == 76);
  BOOST_TEST(gcs2::error_text(2) == "unknown command");
  BOOST_TEST(gcs2::error_text(1234) == "GCS error 1234");
}
