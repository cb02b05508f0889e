#define BOOST_TEST_MODULE io_spectrum_file
#include <boost/test/unit_test.hpp>

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>
#include <string>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "core/error.hpp"
#include "io/spectrum_file.hpp"

namespace fs = std::filesystem;
using opx::Error;
using opx::ExitCode;
using namespace opx::io;

namespace {

const fs::path data_dir = fs::path(OPX_TEST_DATA_DIR) / "spectra";

// What the fixtures hold, computed by make_fixtures.py and not by the reader.
const nlohmann::json& expected() {
  static const nlohmann::json j = [] {
    std::ifstream in(data_dir / "expected.json");
    return nlohmann::json::parse(in);
  }();
  return j;
}

double total(const Spectrum& s) { return std::accumulate(s.counts.begin(), s.counts.end(), 0.0); }

// The reference spectrum, whatever file it came from.
void check_reference_counts(const Spectrum& s) {
  const auto& e = expected();
  BOOST_TEST(s.channel_count() == e["channels"].get<std::size_t>());
  BOOST_TEST(total(s) == e["total_counts"].get<double>());
  const auto first = e["first_channel"].get<std::size_t>();
  const auto& window = e["counts_from_first_channel"];
  for (std::size_t i = 0; i < window.size(); ++i) BOOST_TEST(s.counts.at(first + i) == window[i].get<double>());
}

void check_reference_calibration(const Spectrum& s, double tolerance) {
  BOOST_REQUIRE(s.has_calibration());
  BOOST_TEST(std::fabs(*s.offset_keV - expected()["offset_keV"].get<double>()) < tolerance);
  BOOST_TEST(std::fabs(*s.gain_keV_per_channel - expected()["gain_keV_per_channel"].get<double>()) < tolerance);
}

// Runs `f`, which must throw opx::Error with `code`; returns it.
template <typename F>
Error expect_error(F&& f, ExitCode code) {
  try {
    f();
  } catch (const Error& e) {
    BOOST_TEST(static_cast<int>(e.code()) == static_cast<int>(code), "exit code for: " << e.what());
    return e;
  } catch (const std::exception& e) {
    BOOST_FAIL("expected opx::Error, got std::exception: " << e.what());
  }
  BOOST_FAIL("expected opx::Error, nothing was thrown");
  return Error(ExitCode::ok, "", "", "");  // not reached: BOOST_FAIL throws
}

// A malformed fixture: data_error naming the file, the line when given, and why.
Error expect_bad_file(const std::string& name, const std::string& why_contains, int line = 0) {
  const Error e = expect_error([&] { read_spectrum(data_dir / name); }, ExitCode::data_error);
  BOOST_TEST(e.where().find(name) != std::string::npos, "where names the file: " << e.what());
  if (line > 0)
    BOOST_TEST(e.where().find(fmt::format(":{}", line)) != std::string::npos,
               "where names line " << line << ": " << e.what());
  BOOST_TEST(e.why().find(why_contains) != std::string::npos, "why says '" << why_contains << "': " << e.what());
  return e;
}

int bad_line(const std::string& name) { return expected()["bad_lines"][name].get<int>(); }

Error expect_bad_text(const std::string& text, const std::string& why_contains,
                      std::optional<SpectrumFormat> format = {}, const std::string& source = "x.mca") {
  const Error e = expect_error([&] { parse_spectrum(text, source, format); }, ExitCode::data_error);
  BOOST_TEST(e.why().find(why_contains) != std::string::npos, "why says '" << why_contains << "': " << e.what());
  return e;
}

std::string amptek_text(const std::string& data, const std::string& extra_header = "",
                        const std::string& after = "") {
  return "<<PMCA SPECTRUM>>\nTAG - live_data\nLIVE_TIME - 10.5\nREAL_TIME - 11\n" + extra_header + "<<DATA>>\n" +
         data + "<<END>>\n" + after;
}

std::string spx_text(const std::string& header, const std::string& channels) {
  return "<?xml version=\"1.0\" encoding=\"WINDOWS-1252\"?>\n<TRTSpectrum>\n"
         "<ClassInstance Type=\"TRTSpectrum\" Name=\"s\">\n"
         "<ClassInstance Type=\"TRTSpectrumHeader\">\n" +
         header + "</ClassInstance>\n<Channels>" + channels + "</Channels>\n</ClassInstance>\n</TRTSpectrum>\n";
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / fmt::format("opx-test-spectrum-{}", ::getpid());
    fs::create_directories(path);
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

}  // namespace

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(fixtures)

BOOST_AUTO_TEST_CASE(amptek_mca) {
  const Spectrum s = read_spectrum(data_dir / "nmc_cu_tube.mca");
  check_reference_counts(s);
  // The file's calibration points are (297.00, 5.8988) and (404.45, 8.0478).
  check_reference_calibration(s, 1e-9);
  BOOST_TEST(!s.quadratic_keV.has_value());
  BOOST_TEST(s.live_time_s == 29.95);
  BOOST_TEST(s.real_time_s == 31.25);
  BOOST_TEST(s.source == (data_dir / "nmc_cu_tube.mca").string());
  const auto& md = s.metadata;
  BOOST_TEST(md["format"] == "mca");
  BOOST_TEST(md["start_time"] == expected()["start_time"]);
  BOOST_TEST(md["detector"] == "PX5");
  BOOST_TEST(md["detector_serial"] == "23817");
  BOOST_TEST(md["description"] == "NMC622 coin cell, confocal point z=120um");
  BOOST_TEST(md["configuration"]["TPEA"] == "4.000");
  BOOST_TEST(md["configuration"]["MCAC"] == "1024");
  BOOST_TEST(md["status"]["Firmware"] == "6.08  Build:  6");
  // Written as Windows-1252 by the instrument's PC; kept as UTF-8.
  BOOST_TEST(md["status"]["Board Temp"] == "32\u00b0C");
  BOOST_TEST(md["roi"] == nlohmann::json::parse("[[290,304],[397,412]]"));
  BOOST_TEST(md["header"]["PRESET_TIME"] == "30");
  BOOST_CHECK_NO_THROW(md.dump());
}

BOOST_AUTO_TEST_CASE(bruker_spx) {
  const Spectrum s = read_spectrum(data_dir / "nmc_cu_tube.spx");
  check_reference_counts(s);
  check_reference_calibration(s, 1e-12);
  BOOST_TEST(s.live_time_s == 29.95);  // <LifeTime>29950</LifeTime> ms
  BOOST_TEST(s.real_time_s == 31.25);
  const auto& md = s.metadata;
  BOOST_TEST(md["format"] == "spx");
  BOOST_TEST(md["start_time"] == expected()["start_time"]);  // <Date>5.3.2024</Date> <Time>14:2:9</Time>
  BOOST_TEST(md["tube_voltage_kV"] == 50.0);
  BOOST_TEST(md["tube_current_uA"] == 599.0);
  BOOST_TEST(md["tube_anode"] == "Rh");  // <Anode>45</Anode>
  BOOST_TEST(md["tube_type"] == "MCBM 50-0.6B Rh");
  BOOST_TEST(md["detector"] == "XFlash 430");
  BOOST_TEST(md["detector_serial"] == "16442");
  BOOST_TEST(md["name"] == "NMC622 point z=120\u00b5m");
  BOOST_TEST(md["hardware"]["ZeroPeakFrequency"] == 800.0);
  BOOST_TEST(md["spectrum_header"]["SigmaAbs"] == 4.5e-4);
  BOOST_TEST(md["xrf"]["Atmosphere"] == "Air");
  BOOST_TEST(!md["xrf"].contains("TubeWindow"));  // nested, not a plain value
  BOOST_CHECK_NO_THROW(md.dump());
}

BOOST_AUTO_TEST_CASE(csv_with_energy_column) {
  const Spectrum s = read_spectrum(data_dir / "nmc_energy.csv");
  check_reference_counts(s);
  check_reference_calibration(s, 1e-9);
  BOOST_TEST(!s.quadratic_keV.has_value());
  BOOST_TEST(s.live_time_s == 29.95);  // from "# live_time_s: 29.95"
  BOOST_TEST(s.real_time_s == 31.25);
  BOOST_TEST(s.metadata["format"] == "csv");
}

BOOST_AUTO_TEST_CASE(bare_column_of_counts) {
  const Spectrum s = read_spectrum(data_dir / "nmc_counts.txt");
  check_reference_counts(s);
  BOOST_TEST(!s.has_calibration());
  BOOST_TEST(std::isnan(s.live_time_s));
  BOOST_TEST(std::isnan(s.real_time_s));
}

BOOST_AUTO_TEST_CASE(semicolons_decimal_commas_and_eV) {
  const Spectrum s = read_spectrum(data_dir / "nmc_semicolon.csv");
  check_reference_counts(s);
  check_reference_calibration(s, 1e-9);
}

BOOST_AUTO_TEST_CASE(every_format_reads_the_same_counts) {
  const Spectrum mca = read_spectrum(data_dir / "nmc_cu_tube.mca");
  for (const char* name : {"nmc_cu_tube.spx", "nmc_energy.csv", "nmc_counts.txt", "nmc_semicolon.csv"})
    BOOST_TEST(read_spectrum(data_dir / name).counts == mca.counts, name);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(malformed_fixtures)

BOOST_AUTO_TEST_CASE(amptek) {
  expect_bad_file("bad/empty.mca", "empty");
  expect_bad_file("bad/no_data.mca", "no <<DATA>>");
  expect_bad_file("bad/truncated.mca", "no <<END>>", bad_line("bad/truncated.mca"));
  const Error e = expect_bad_file("bad/non_numeric.mca", "not a number", bad_line("bad/non_numeric.mca"));
  BOOST_TEST(e.why().find("'12a'") != std::string::npos);
  BOOST_TEST(e.why().find("channel 17") != std::string::npos);
  BOOST_TEST(e.what_part() == "cannot read Amptek .mca spectrum");
  expect_bad_file("bad/negative.mca", "negative", bad_line("bad/negative.mca"));
  expect_bad_file("bad/nan.mca", "not a finite number", bad_line("bad/nan.mca"));
  expect_bad_file("bad/not_amptek.mca", "not an Amptek .mca file", 1);
}

BOOST_AUTO_TEST_CASE(bruker) {
  const Error count = expect_bad_file("bad/channel_count.spx", "ChannelCount is 1024 but <Channels>");
  BOOST_TEST(count.why().find("1000 values") != std::string::npos);
  BOOST_TEST(count.where().find("<ChannelCount>") != std::string::npos);
  expect_bad_file("bad/truncated.spx", "truncated");
  const Error bad = expect_bad_file("bad/non_numeric.spx", "not a number");
  BOOST_TEST(bad.why().find("channel 9") != std::string::npos);
  BOOST_TEST(bad.where().find("<Channels>") != std::string::npos);
}

BOOST_AUTO_TEST_CASE(csv) {
  expect_bad_file("bad/negative.csv", "negative", bad_line("bad/negative.csv"));
  expect_bad_file("bad/inf.csv", "not a finite number", bad_line("bad/inf.csv"));
  expect_bad_file("bad/ragged.csv", "3 fields", bad_line("bad/ragged.csv"));
}

BOOST_AUTO_TEST_CASE(missing_and_unreadable_inputs) {
  const Error missing = expect_error([] { read_spectrum(data_dir / "no_such_file.mca"); }, ExitCode::no_input);
  BOOST_TEST(missing.where().find("no_such_file.mca") != std::string::npos);
  expect_error([] { read_spectrum(data_dir); }, ExitCode::no_input);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(amptek_details)

BOOST_AUTO_TEST_CASE(quadratic_calibration_through_three_points) {
  // E = 0.1 + 0.01 ch + 2e-6 ch^2 at channels 100, 500, 900.
  const auto e = [](double ch) { return 0.1 + 0.01 * ch + 2e-6 * ch * ch; };
  const std::string cal = fmt::format("<<CALIBRATION>>\nLABEL - keV\n100 {:.17g}\n500 {:.17g}\n900 {:.17g}\n",
                                      e(100), e(500), e(900));
  std::string data;
  for (int i = 0; i < 1024; ++i) data += "5\n";
  const Spectrum s = parse_spectrum(amptek_text(data, cal), "q.mca");
  BOOST_REQUIRE(s.quadratic_keV.has_value());
  BOOST_TEST(*s.offset_keV == 0.1, boost::test_tools::tolerance(1e-10));
  BOOST_TEST(*s.gain_keV_per_channel == 0.01, boost::test_tools::tolerance(1e-10));
  BOOST_TEST(*s.quadratic_keV == 2e-6, boost::test_tools::tolerance(1e-8));
  BOOST_TEST(s.energy_keV(700) == e(700), boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(calibration_in_eV_and_without_an_energy_label) {
  const Spectrum ev = parse_spectrum(amptek_text("1\n2\n3\n", "<<CALIBRATION>>\nLABEL - eV\n0 -50\n2 -10\n"), "ev.mca");
  BOOST_TEST(*ev.offset_keV == -0.05, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(*ev.gain_keV_per_channel == 0.02, boost::test_tools::tolerance(1e-12));
  // A label that is not an energy unit: the points are kept, not used.
  const Spectrum ch = parse_spectrum(amptek_text("1\n2\n3\n", "<<CALIBRATION>>\nLABEL - Channel\n0 0\n2 2\n"), "c.mca");
  BOOST_TEST(!ch.has_calibration());
  BOOST_TEST(ch.metadata["calibration_points"].size() == 2u);
}

BOOST_AUTO_TEST_CASE(bad_calibrations) {
  expect_bad_text(amptek_text("1\n2\n", "<<CALIBRATION>>\nLABEL - keV\n10 5\n20 4\n"), "does not rise");
  expect_bad_text(amptek_text("1\n2\n", "<<CALIBRATION>>\nLABEL - keV\n10 5\n10 6\n"), "same channel");
  const Error e = expect_bad_text(amptek_text("1\n2\n", "<<CALIBRATION>>\nLABEL - keV\n10 five\n"), "channel energy");
  BOOST_TEST(e.where() == "x.mca:7");
}

BOOST_AUTO_TEST_CASE(structure) {
  expect_bad_text(amptek_text("1\n2\n", "", "<<DATA>>\n3\n<<END>>\n"), "second <<DATA>>");
  expect_bad_text(amptek_text("1\n2\n", "", "<<PMCA SPECTRUM>>\n"), "more than one spectrum");
  expect_bad_text("<<PMCA SPECTRUM>>\n<<DATA>>\n1\n2\n<<DP5 CONFIGURATION>>\n", "before <<END>>");
  expect_bad_text("<<PMCA SPECTRUM>>\n<<DATA>>\n<<END>>\n", "holds no counts");
  expect_bad_text("<<PMCA SPECTRUM>>\n<<END>>\n", "before any <<DATA>>");
  const Error two = expect_bad_text(amptek_text("1\n2 3\n"), "one count per line");
  BOOST_TEST(two.where() == "x.mca:7");
  const Error live = expect_bad_text("<<PMCA SPECTRUM>>\nLIVE_TIME - soon\n<<DATA>>\n1\n<<END>>\n", "LIVE_TIME");
  BOOST_TEST(live.where() == "x.mca:2");
  expect_bad_text("<<PMCA SPECTRUM>>\nREAL_TIME - -1\n<<DATA>>\n1\n<<END>>\n", "negative");
}

BOOST_AUTO_TEST_CASE(channel_count_against_the_dp5_configuration) {
  expect_bad_text(amptek_text("1\n2\n3\n", "", "<<DP5 CONFIGURATION>>\nMCAC=1024;    MCA/MCS Channels\n"
                                               "<<DP5 CONFIGURATION END>>\n"),
                  "holds 3 counts but the DP5 configuration says MCAC=1024");
}

BOOST_AUTO_TEST_CASE(tolerated_variations) {
  // Lone-CR line ends, blank lines, a UTF-8 byte order mark, an empty
  // DESCRIPTION, a missing REAL_TIME, unknown sections.
  const std::string text =
      "\xEF\xBB\xBF<<PMCA SPECTRUM>>\rDESCRIPTION - \rLIVE_TIME - 2.5\r<<ROI>>\rnot a roi\r<<DATA>>\r4\r\r5\r"
      "<<END>>\r<<SOMETHING NEW>>\rwhatever\r";
  const Spectrum s = parse_spectrum(text, "cr.mca");
  BOOST_TEST(s.counts == (std::vector<double>{4, 5}));
  BOOST_TEST(s.live_time_s == 2.5);
  BOOST_TEST(std::isnan(s.real_time_s));
  BOOST_TEST(!s.metadata.contains("description"));
  BOOST_TEST(!s.metadata.contains("roi"));
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(bruker_details)

BOOST_AUTO_TEST_CASE(decimal_comma_trailing_comma_entities) {
  const std::string text =
      "<?xml version=\"1.0\"?>\n<!-- exported -->\n<TRTSpectrum>\n"
      "<ClassInstance Type=\"TRTSpectrum\" Name=\"a &amp; b &#181;m &#x3bc;\">\n"
      "<ClassInstance Type=\"TRTSpectrumHeader\"><ChannelCount>3</ChannelCount>"
      "<CalibAbs>-9,56E-1</CalibAbs><CalibLin>1,0E-2</CalibLin></ClassInstance>\n"
      "<Channels> 1, 2 ,3,</Channels>\n</ClassInstance>\n</TRTSpectrum>\n";
  const Spectrum s = parse_spectrum(text, "a.spx");
  BOOST_TEST(s.counts == (std::vector<double>{1, 2, 3}));
  BOOST_TEST(*s.offset_keV == -0.956);
  BOOST_TEST(*s.gain_keV_per_channel == 0.01);
  BOOST_TEST(s.metadata["name"] == "a & b \u00b5m \u03bc");
  BOOST_TEST(std::isnan(s.live_time_s));  // no hardware header: not recorded
}

BOOST_AUTO_TEST_CASE(not_a_bruker_spectrum) {
  expect_bad_text("<?xml version=\"1.0\"?>\n<html><body/></html>\n", "not a Bruker spectrum", {}, "a.spx");
  BOOST_TEST(parse_spectrum(spx_text("", "1,2"), "a.spx").counts.size() == 2u);
}

BOOST_AUTO_TEST_CASE(not_well_formed) {
  const Error e = expect_bad_text("<TRTSpectrum>\n<ClassInstance Type=\"TRTSpectrum\">\n<Channels>1,2</Channel>\n",
                                  "</Channel> closes <Channels>", {}, "a.spx");
  BOOST_TEST(e.where() == "a.spx:3");
  expect_bad_text("<TRTSpectrum><ClassInstance Type=\"TRTSpectrum", "truncated", {}, "a.spx");
  expect_bad_text("<TRTSpectrum><a b=c/></TRTSpectrum>", "not quoted", {}, "a.spx");
  expect_bad_text("<TRTSpectrum><!-- never closed", "comment", {}, "a.spx");
  // Deep nesting is refused, not a stack overflow.
  std::string deep;
  for (int i = 0; i < 5000; ++i) deep += "<a>";
  expect_bad_text(deep, "nested deeper", {}, "a.spx");
}

BOOST_AUTO_TEST_CASE(content_problems) {
  expect_bad_text(spx_text("<ChannelCount>2</ChannelCount>", ""), "<Channels> is empty", {}, "a.spx");
  expect_bad_text(spx_text("<ChannelCount>x</ChannelCount>", "1,2"), "ChannelCount 'x' is not a number", {}, "a.spx");
  expect_bad_text(spx_text("<CalibLin>0.01</CalibLin>", "1,2"), "CalibLin but no CalibAbs", {}, "a.spx");
  expect_bad_text(spx_text("<CalibAbs>0</CalibAbs><CalibLin>0</CalibLin>", "1,2"), "does not rise", {}, "a.spx");
  expect_bad_text(spx_text("", "1,,2"), "value 2 (channel 1): count is empty", {}, "a.spx");
  expect_bad_text(spx_text("", "1,-2"), "negative", {}, "a.spx");
  expect_bad_text("<TRTSpectrum><ClassInstance Type=\"TRTSpectrum\"></ClassInstance></TRTSpectrum>",
                  "no <Channels>", {}, "a.spx");
  const std::string two = "<TRTSpectrum><ClassInstance Type=\"TRTSpectrum\"><Channels>1</Channels></ClassInstance>"
                          "<ClassInstance Type=\"TRTSpectrum\"><Channels>2</Channels></ClassInstance></TRTSpectrum>";
  expect_bad_text(two, "holds 2 spectra", {}, "a.spx");
  const std::string hw = "<TRTSpectrum><ClassInstance Type=\"TRTSpectrum\"><TRTHeaderedClass>"
                         "<ClassInstance Type=\"TRTSpectrumHardwareHeader\"><LifeTime>-5</LifeTime></ClassInstance>"
                         "</TRTHeaderedClass><Channels>1</Channels></ClassInstance></TRTSpectrum>";
  expect_bad_text(hw, "LifeTime -5 ms is negative", {}, "a.spx");
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(csv_details)

BOOST_AUTO_TEST_CASE(channels_without_header_one_based_and_blank_separated) {
  const Spectrum s = parse_spectrum("# a comment\n1 10\n2   20  # trailing comment\n3\t30\n", "a.txt");
  BOOST_TEST(s.counts == (std::vector<double>{10, 20, 30}));
  BOOST_TEST(!s.has_calibration());
}

BOOST_AUTO_TEST_CASE(tab_separated_with_header_and_extra_columns) {
  const Spectrum s = parse_spectrum(
      "channel\tenergy_keV\tcounts\tfit\n0\t1.00\t7\t6.5\n1\t1.01\t8\t7.5\n2\t1.02\t9\t8\n", "a.tsv");
  BOOST_TEST(s.counts == (std::vector<double>{7, 8, 9}));
  BOOST_TEST(*s.offset_keV == 1.0, boost::test_tools::tolerance(1e-12));
  BOOST_TEST(*s.gain_keV_per_channel == 0.01, boost::test_tools::tolerance(1e-12));
}

BOOST_AUTO_TEST_CASE(quadratic_energy_column) {
  std::string text = "energy_keV,counts\n";
  for (int ch = 0; ch < 512; ++ch) text += fmt::format("{:.6f},1\n", -0.1 + 0.02 * ch + 1e-5 * ch * ch);
  const Spectrum s = parse_spectrum(text, "q.csv");
  BOOST_REQUIRE(s.quadratic_keV.has_value());
  BOOST_TEST(*s.quadratic_keV == 1e-5, boost::test_tools::tolerance(1e-4));
}

BOOST_AUTO_TEST_CASE(problems) {
  expect_bad_text("channel,counts\n", "a header line but no data lines", {}, "a.csv");
  expect_bad_text("# only comments\n", "no data lines", {}, "a.csv");
  expect_bad_text("channel,counts\n0,1\n1,2\n3,4\n", "channel 3 follows channel 1", {}, "a.csv");
  expect_bad_text("channel,counts\n5,1\n6,2\n", "channels start at 5", {}, "a.csv");
  expect_bad_text("1,2,3\n4,5,6\n", "no header line", {}, "a.csv");
  expect_bad_text("a,b,c\n4,5,6\n", "which of the 3 columns", {}, "a.csv");
  expect_bad_text("energy_keV,counts\n1.0,1\n1.1,1\n1.2,1\n1.3,1\n5.0,1\n5.1,1\n5.2,1\n5.3,1\n",
                  "not evenly spaced", {}, "a.csv");
  expect_bad_text("energy_keV,counts\n1.0,1\n0.9,1\n", "does not rise", {}, "a.csv");
  expect_bad_text("0,1\n1,,\n", "field 2 is empty", {}, "a.csv");
  expect_bad_text("counts\n12\nabc\n", "'abc' is not a number", {}, "a.csv");
  // A corrupted first count is an error, not a header line.
  const Error first = expect_bad_text("12a\n13\n14\n", "'12a' is not a number", {}, "a.csv");
  BOOST_TEST(first.where() == "a.csv:1");
  expect_bad_text("0,-1\n1,2\n", "negative", {}, "a.csv");
  expect_bad_text("# live_time_s: soon\n1\n", "live_time_s 'soon' is not a number", {}, "a.csv");
  const Error e = expect_bad_text("counts\n1\n2\nNaN\n", "not a finite number", {}, "a.csv");
  BOOST_TEST(e.where() == "a.csv:4");
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(any_format)

BOOST_AUTO_TEST_CASE(sniffing) {
  BOOST_TEST(format_name(sniff_spectrum_format("<<PMCA SPECTRUM>>\n", "a.csv")) == "mca");
  BOOST_TEST(format_name(sniff_spectrum_format("\xEF\xBB\xBF  <?xml version=\"1.0\"?>", "a.txt")) == "spx");
  BOOST_TEST(format_name(sniff_spectrum_format("1\n2\n", "a.mca")) == "mca");
  BOOST_TEST(format_name(sniff_spectrum_format("1\n2\n", "a.SPX")) == "spx");
  BOOST_TEST(format_name(sniff_spectrum_format("1\n2\n", "a.dat")) == "csv");
  BOOST_TEST(format_name(sniff_spectrum_format("1\n2\n", "-")) == "csv");
  // An explicit format wins over the extension.
  BOOST_TEST(parse_spectrum("1\n2\n", "a.mca", SpectrumFormat::csv).counts.size() == 2u);
}

BOOST_AUTO_TEST_CASE(format_names) {
  BOOST_TEST(format_name(parse_spectrum_format("MCA")) == "mca");
  BOOST_TEST(format_name(parse_spectrum_format("bruker")) == "spx");
  BOOST_TEST(format_name(parse_spectrum_format("tsv")) == "csv");
  BOOST_TEST(format_name(SpectrumFormat::bruker_spx) == "spx");
  expect_error([] { parse_spectrum_format("h5"); }, ExitCode::usage);
}

BOOST_AUTO_TEST_CASE(binary_and_empty_content) {
  expect_bad_text(std::string("\x89HDF\r\n\x1a\n\0\0\0", 11), "HDF5 file", {}, "a.h5");
  expect_bad_text(std::string("PK\x03\x04\0\0", 6), "binary file", {}, "a.zip");
  expect_bad_text("   \n\n", "empty", {}, "a.csv");
}

BOOST_AUTO_TEST_CASE(energy_needs_a_calibration) {
  Spectrum s;
  s.counts = {1, 2};
  expect_error([&] { (void)s.energy_keV(1); }, ExitCode::software);
}

BOOST_AUTO_TEST_SUITE_END()

// ---------------------------------------------------------------------------
BOOST_AUTO_TEST_SUITE(writers)

Spectrum simulated(bool quadratic) {
  Spectrum s;
  for (int i = 0; i < 300; ++i) s.counts.push_back(i % 7 == 0 ? 1234567 : i % 13);
  s.live_time_s = 29.95;
  s.real_time_s = 31.25;
  s.offset_keV = -0.0412;
  s.gain_keV_per_channel = 0.0200123;
  if (quadratic) s.quadratic_keV = 3.1e-7;
  s.source = "sim";
  s.metadata["start_time"] = "2024-03-05T14:02:09";
  s.metadata["detector_serial"] = "23817";
  s.metadata["description"] = "simulated\nover two lines";
  return s;
}

BOOST_AUTO_TEST_CASE(mca_round_trip) {
  for (bool quadratic : {false, true}) {
    const Spectrum s = simulated(quadratic);
    const Spectrum r = parse_spectrum(format_mca(s), "r.mca");
    BOOST_TEST(r.counts == s.counts);
    BOOST_TEST(r.live_time_s == s.live_time_s);
    BOOST_TEST(r.real_time_s == s.real_time_s);
    BOOST_TEST(r.quadratic_keV.has_value() == quadratic);
    for (double ch : {0.0, 150.0, 299.0})
      BOOST_TEST(r.energy_keV(ch) == s.energy_keV(ch), boost::test_tools::tolerance(1e-12));
    BOOST_TEST(r.metadata["start_time"] == "2024-03-05T14:02:09");
    BOOST_TEST(r.metadata["detector_serial"] == "23817");
    BOOST_TEST(r.metadata["description"] == "simulated over two lines");
  }
}

BOOST_AUTO_TEST_CASE(mca_keeps_the_dp5_blocks) {
  const Spectrum s = read_spectrum(data_dir / "nmc_cu_tube.mca");
  const Spectrum r = parse_spectrum(format_mca(s), "r.mca");
  BOOST_TEST(r.counts == s.counts);
  BOOST_TEST(r.metadata["configuration"] == s.metadata["configuration"]);
  BOOST_TEST(r.metadata["status"] == s.metadata["status"]);
}

BOOST_AUTO_TEST_CASE(csv_round_trip_is_exact) {
  for (bool quadratic : {false, true}) {
    Spectrum s = simulated(quadratic);
    s.counts[3] = 2.75;  // processed spectra may hold fractions
    const Spectrum r = parse_spectrum(format_csv(s), "r.csv");
    BOOST_TEST(r.counts == s.counts);
    BOOST_TEST(r.live_time_s == s.live_time_s);
    BOOST_TEST(*r.offset_keV == *s.offset_keV);
    BOOST_TEST(*r.gain_keV_per_channel == *s.gain_keV_per_channel);
    BOOST_CHECK(r.quadratic_keV == s.quadratic_keV);
    BOOST_TEST(r.metadata["start_time"] == "2024-03-05T14:02:09");
  }
  Spectrum plain;
  plain.counts = {0, 1, 2};
  const Spectrum r = parse_spectrum(format_csv(plain), "p.csv");
  BOOST_TEST(r.counts == plain.counts);
  BOOST_TEST(!r.has_calibration());
  BOOST_TEST(std::isnan(r.live_time_s));
}

BOOST_AUTO_TEST_CASE(files) {
  TempDir dir;
  const Spectrum s = simulated(false);
  write_spectrum(s, dir.path / "a.mca");
  write_spectrum(s, dir.path / "a.csv");
  write_spectrum(s, dir.path / "a.dat", SpectrumFormat::amptek_mca);
  BOOST_TEST(read_spectrum(dir.path / "a.mca").metadata["format"] == "mca");
  BOOST_TEST(read_spectrum(dir.path / "a.csv").metadata["format"] == "csv");
  BOOST_TEST(read_spectrum(dir.path / "a.dat").metadata["format"] == "mca");  // sniffed from the content
  BOOST_TEST(read_spectrum(dir.path / "a.csv").counts == s.counts);
  expect_error([&] { write_spectrum(s, dir.path / "a.spx"); }, ExitCode::usage);
  expect_error([&] { write_spectrum(s, dir.path / "no_such_folder" / "a.mca"); }, ExitCode::cannot_create);
  // Nothing but the three outputs: no temporary files left behind.
  BOOST_TEST(std::distance(fs::directory_iterator(dir.path), fs::directory_iterator()) == 3);
}

BOOST_AUTO_TEST_SUITE_END()
