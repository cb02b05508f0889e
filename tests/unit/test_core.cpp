#define BOOST_TEST_MODULE core
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/atomic_file.hpp"
#include "core/clock.hpp"
#include "core/error.hpp"
#include "core/units.hpp"

using namespace opx;
namespace fs = std::filesystem;

BOOST_AUTO_TEST_CASE(quantities_convert_between_units) {
  BOOST_TEST(units::parse_as("30 s", "s") == 30.0);
  BOOST_TEST(units::parse_as("2 min", "s") == 120.0);
  BOOST_TEST(std::abs(units::parse_as("5 um", "mm") - 0.005) < 1e-15);
  BOOST_TEST(std::abs(units::parse_as("8.8 keV", "eV") - 8800.0) < 1e-9);
  BOOST_TEST(std::abs(units::parse_as("600uA", "mA") - 0.6) < 1e-12);
  BOOST_TEST(std::abs(units::parse_as("1.75 MPa", "Pa") - 1.75e6) < 1e-6);
  BOOST_TEST(std::abs(units::parse_as("2 cm^2", "mm2") - 200.0) < 1e-9);
  BOOST_TEST(units::parse_as("12", "um") == 12.0);  // a bare number is in the asked unit
}

BOOST_AUTO_TEST_CASE(bad_quantities_are_usage_errors_naming_the_text) {
  for (const char* bad : {"fast", "30 parsecs", "5 keV", "", "nan s"}) {
    try {
      units::parse_as(bad, "s", "--live-time");
      BOOST_FAIL("accepted " << bad);
    } catch (const Error& e) {
      BOOST_TEST(static_cast<int>(e.code()) == 64);
      BOOST_TEST(std::string(e.what()).find("--live-time") != std::string::npos);
    }
  }
}

BOOST_AUTO_TEST_CASE(error_message_has_what_where_why) {
  Error e = data_error("invalid spectrum", "scan.h5:/entry/data/counts", "negative count");
  BOOST_TEST(std::string(e.what()) == "invalid spectrum: scan.h5:/entry/data/counts: negative count");
  BOOST_TEST(static_cast<int>(e.code()) == 65);
  BOOST_TEST(std::string(input_missing("a", "", "b").what()) == "a: b");
}

BOOST_AUTO_TEST_CASE(atomic_output_replaces_only_on_commit) {
  fs::path dir = fs::temp_directory_path() / ("opx-core-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  fs::path target = dir / "out.txt";
  { std::ofstream(target) << "old"; }
  {
    AtomicOutput out(target);
    std::ofstream(out.temp_path()) << "partial";
    // no commit: an exception or a kill leaves the old file
  }
  std::string content;
  std::getline(std::ifstream(target), content);
  BOOST_TEST(content == "old");
  write_file_atomic(target, "new");
  std::getline(std::ifstream(target), content);
  BOOST_TEST(content == "new");
  std::size_t files = 0;
  for (auto& f : fs::directory_iterator(dir)) (void)f, ++files;
  BOOST_TEST(files == 1u);  // no temporary left behind
  BOOST_CHECK_THROW(AtomicOutput(dir / "missing" / "x.h5"), Error);
  fs::remove_all(dir);
}

BOOST_AUTO_TEST_CASE(iso8601_timestamps) {
  BOOST_TEST(clock::iso8601(0.0) == "1970-01-01T00:00:00.000Z");
  // Reference: `date -u -d @1795000000` prints 2026-11-18T11:06:40.
  BOOST_TEST(clock::iso8601(1795000000.25) == "2026-11-18T11:06:40.250Z");
}
