// io/sha256, io/json_schema and io/manifest, checked against independent
// references: the FIPS 180-2 vectors and sha256sum for SHA-256, Python's
// jsonschema for the manifest schema, nlohmann's own line/column report for
// parse errors.
#define BOOST_TEST_MODULE io_manifest
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <iostream>
#include <regex>
#include <sstream>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "io/json_schema.hpp"
#include "io/manifest.hpp"
#include "io/sha256.hpp"
#include "io_test_support.hpp"

namespace fs = std::filesystem;
using namespace opx;
using opx::test::error_of;
using opx::test::quoted;
using opx::test::run;
using opx::test::ScratchDir;

namespace {

std::string sha256sum(const fs::path& file) {
  const test::Output out = run("sha256sum " + quoted(file));
  BOOST_REQUIRE_EQUAL(out.status, 0);
  return out.text.substr(0, 64);
}

// Points OPX_SCHEMA_DIR at a folder for the life of the object.
struct SchemaDirOverride {
  explicit SchemaDirOverride(const fs::path& dir) { ::setenv("OPX_SCHEMA_DIR", dir.c_str(), 1); }
  ~SchemaDirOverride() { ::unsetenv("OPX_SCHEMA_DIR"); }
};

// A small configuration schema with a reference into a second file.
void write_test_schemas(const ScratchDir& scratch) {
  test::write_text(scratch / "fit.schema.json", R"({
    "$schema": "http://json-schema.org/draft-07/schema#",
    "$id": "https://opx.invalid/schemas/fit.schema.json",
    "type": "object",
    "required": ["elements", "detector"],
    "additionalProperties": false,
    "properties": {
      "elements": {"type": "array", "items": {"type": "string", "pattern": "^[A-Z][a-z]?$"}},
      "detector": {
        "type": "object",
        "required": ["fano", "noise"],
        "properties": {
          "fano": {"type": "number", "minimum": 0},
          "noise": {"$ref": "common.schema.json#/definitions/energy"}
        }
      }
    }
  })");
  test::write_text(scratch / "common.schema.json", R"({
    "$schema": "http://json-schema.org/draft-07/schema#",
    "$id": "https://opx.invalid/schemas/common.schema.json",
    "definitions": {"energy": {"type": "number", "exclusiveMinimum": 0}}
  })");
}

}  // namespace

BOOST_AUTO_TEST_SUITE(sha256)

BOOST_AUTO_TEST_CASE(fips_180_2_vectors) {
  BOOST_CHECK_EQUAL(sha256_hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  BOOST_CHECK_EQUAL(sha256_hex("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"),
                    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  BOOST_CHECK_EQUAL(sha256_hex(std::string(1000000, 'a')),
                    "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
  BOOST_CHECK_EQUAL(sha256_hex(""), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

BOOST_AUTO_TEST_CASE(streaming_in_uneven_pieces_matches_one_piece) {
  std::string data(10000, '\0');
  for (std::size_t i = 0; i < data.size(); ++i) data[i] = char((i * 7919) % 251);
  const std::string whole = sha256_hex(data);
  for (std::size_t piece : {1u, 3u, 55u, 63u, 64u, 65u, 1000u}) {
    Sha256 hash;
    for (std::size_t at = 0; at < data.size(); at += piece) hash.update(std::string_view(data).substr(at, piece));
    BOOST_CHECK_EQUAL(hash.hex(), whole);
  }
}

BOOST_AUTO_TEST_CASE(files_match_sha256sum) {
  ScratchDir scratch;
  // Sizes around the padding boundary (55/56/64 bytes) and the 1 MiB read block.
  for (std::size_t size : {0u, 55u, 56u, 64u, 1000u, (1u << 20) + 3u}) {
    const fs::path file = scratch / fmt::format("f{}", size);
    std::string content(size, '\0');
    for (std::size_t i = 0; i < size; ++i) content[i] = char((i * 31 + 7) % 256);
    test::write_text(file, content);
    std::uintmax_t bytes = 0;
    BOOST_CHECK_EQUAL(sha256_file(file, &bytes), sha256sum(file));
    BOOST_CHECK_EQUAL(bytes, size);
  }
  const Error missing = error_of([&] { sha256_file(scratch / "absent"); });
  BOOST_CHECK(missing.code() == ExitCode::no_input);
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(json_schema)

BOOST_AUTO_TEST_CASE(failures_name_the_file_and_field_path) {
  ScratchDir scratch;
  write_test_schemas(scratch);
  SchemaDirOverride schemas(scratch.dir);
  BOOST_CHECK_EQUAL(schema_dir(), scratch.dir);

  const auto good = nlohmann::json::parse(R"({"elements": ["Mn", "Ni"], "detector": {"fano": 0.114, "noise": 0.1}})");
  validate_json(good, "fit", "fit.json");
  validate_json(good, "fit.schema.json", "fit.json");

  auto bad = good;
  bad["detector"]["fano"] = -0.1;
  const Error fano = error_of([&] { validate_json(bad, "fit", "fit.json"); });
  BOOST_TEST_MESSAGE(fano.what());
  BOOST_CHECK(fano.code() == ExitCode::config);
  BOOST_CHECK_EQUAL(fano.where(), "fit.json:/detector/fano");
  BOOST_CHECK_EQUAL(fano.why(), "Expected number greater than or equal to 0 (found -0.1)");

  bad = good;
  bad["elements"][1] = "nickel";
  const Error element = error_of([&] { validate_json(bad, "fit", "scan.json", ExitCode::data_error); });
  BOOST_TEST_MESSAGE(element.what());
  BOOST_CHECK(element.code() == ExitCode::data_error);
  BOOST_CHECK_EQUAL(element.where(), "scan.json:/elements/1");
  BOOST_CHECK(element.why().ends_with("(found \"nickel\")"));

  bad = good;
  bad["detector"]["noise"] = 0;  // fails in the referenced file's definition
  const Error noise = error_of([&] { validate_json(bad, "fit", "fit.json"); });
  BOOST_TEST_MESSAGE(noise.what());
  BOOST_CHECK_EQUAL(noise.where(), "fit.json:/detector/noise");

  bad = good;
  bad["detector"].erase("fano");
  const Error required = error_of([&] { validate_json(bad, "fit", "fit.json"); });
  BOOST_TEST_MESSAGE(required.what());
  BOOST_CHECK_EQUAL(required.where(), "fit.json:/detector");
  BOOST_CHECK(required.why().find("fano") != std::string::npos);

  bad = good;
  bad["background"] = "snip";
  const Error extra = error_of([&] { validate_json(bad, "fit", "fit.json"); });
  BOOST_TEST_MESSAGE(extra.what());
  BOOST_CHECK(extra.why().find("background") != std::string::npos || extra.where() == "fit.json:/background");

  const Error unknown = error_of([&] { validate_json(good, "no-such", "fit.json"); });
  BOOST_CHECK(unknown.code() == ExitCode::software);
}

BOOST_AUTO_TEST_CASE(parse_errors_give_line_and_column) {
  ScratchDir scratch;
  const fs::path file = scratch / "fit.json";
  const std::string text = "{\n  \"elements\": [\"Mn\",\n    \"Ni\" \"Fe\"]\n}\n";
  test::write_text(file, text);
  const Error e = error_of([&] { read_json_file(file); });
  BOOST_TEST_MESSAGE(e.what());
  BOOST_CHECK(e.code() == ExitCode::config);
  // The position is that of the last character read ("Fe" ends at column
  // 13), as nlohmann's own message, worked out separately, says.
  BOOST_CHECK_EQUAL(e.where(), file.string() + ":3:13");
  std::string reference;
  try {
    reference = nlohmann::json::parse(text).dump();
  } catch (const nlohmann::json::parse_error& error) {
    reference = error.what();
  }
  std::smatch position;
  BOOST_REQUIRE(std::regex_search(reference, position, std::regex(R"(line (\d+), column (\d+))")));
  BOOST_CHECK_EQUAL(e.where(), fmt::format("{}:{}:{}", file.string(), position[1].str(), position[2].str()));
  BOOST_CHECK(e.why().find("unexpected string literal") != std::string::npos);

  const Error truncated = error_of([&] { parse_json("{\"a\": [1, 2", "data.json", ExitCode::data_error); });
  BOOST_CHECK(truncated.code() == ExitCode::data_error);
  BOOST_CHECK_EQUAL(truncated.where(), "data.json:1:12");

  const Error missing = error_of([&] { read_json_file(scratch / "absent.json"); });
  BOOST_CHECK(missing.code() == ExitCode::no_input);

  // "-" reads standard input.
  std::istringstream input("{\"from\": \"stdin\"}");
  std::streambuf* saved = std::cin.rdbuf(input.rdbuf());
  const nlohmann::json from_stdin = read_json_file("-");
  std::cin.rdbuf(saved);
  BOOST_CHECK_EQUAL(from_stdin["from"], "stdin");
}

BOOST_AUTO_TEST_SUITE_END()

BOOST_AUTO_TEST_SUITE(manifest)

BOOST_AUTO_TEST_CASE(written_beside_the_output_and_valid_for_an_independent_validator) {
  ScratchDir scratch;
  const fs::path input = scratch / "spectra.h5";
  const fs::path output = scratch / "fit.h5";
  test::write_text(input, "pretend spectra");
  auto manifest = Manifest::begin("cmx-fit");
  manifest.add_input(input);
  manifest.add_input_data("-", "{\"elements\": [\"Ni\"]}");
  manifest.set_parameters({{"elements", {"Ni"}}, {"snip_width", 20}});
  test::write_text(output, "pretend result");  // the output is complete before the manifest
  manifest.set_summary({{"spectra", 150}});
  const fs::path written = manifest.write(output);
  BOOST_CHECK_EQUAL(written, scratch / "fit.h5.json");

  const nlohmann::json m = read_json_file(written);
  BOOST_CHECK_EQUAL(m["schema"], "opx.manifest");
  BOOST_CHECK_EQUAL(m["schema_version"], 1);
  BOOST_CHECK_EQUAL(m["tool"], "cmx-fit");
  BOOST_CHECK_EQUAL(m["inputs"][0]["path"], input.string());
  BOOST_CHECK_EQUAL(m["inputs"][0]["sha256"], sha256sum(input));
  BOOST_CHECK_EQUAL(m["inputs"][0]["bytes"], 15);
  BOOST_CHECK_EQUAL(m["inputs"][1]["path"], "-");
  BOOST_CHECK_EQUAL(m["outputs"].size(), 1u);
  BOOST_CHECK_EQUAL(m["outputs"][0]["sha256"], sha256sum(output));
  BOOST_CHECK_EQUAL(m["parameters"]["snip_width"], 20);
  BOOST_CHECK_EQUAL(m["summary"]["spectra"], 150);
  BOOST_CHECK_EQUAL(m["cwd"], fs::current_path().string());
  const std::regex iso(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)");
  BOOST_CHECK(std::regex_match(m["start_time"].get<std::string>(), iso));
  BOOST_CHECK(std::regex_match(m["end_time"].get<std::string>(), iso));
  BOOST_CHECK_LE(m["start_time"].get<std::string>(), m["end_time"].get<std::string>());

  // Python's jsonschema checks the schema itself and the manifest against it.
  const fs::path schema = fs::path(OPX_SOURCE_DIR) / "schemas" / "manifest.schema.json";
  const fs::path script = scratch / "check.py";
  test::write_text(script, R"PY(
import json, sys, jsonschema
schema = json.load(open(sys.argv[1]))
jsonschema.Draft7Validator.check_schema(schema)
validator = jsonschema.Draft7Validator(schema, format_checker=jsonschema.FormatChecker())
errors = list(validator.iter_errors(json.load(open(sys.argv[2]))))
for e in errors: print("/" + "/".join(str(p) for p in e.absolute_path), e.message)
sys.exit(1 if errors else 0)
)PY");
  const test::Output checked = run(fmt::format("{} {} {} {}", test::python, quoted(script), quoted(schema), quoted(written)));
  BOOST_CHECK_MESSAGE(checked.status == 0, checked.text);

  // Our validator reads the same schema and rejects a tampered manifest.
  nlohmann::json tampered = m;
  tampered["inputs"][0]["sha256"] = "not-a-digest";
  const Error e = error_of([&] { validate_json(tampered, "manifest", "fit.h5.json", ExitCode::data_error); });
  BOOST_CHECK_EQUAL(e.where(), "fit.h5.json:/inputs/0/sha256");
  test::write_text(scratch / "tampered.json", tampered.dump());
  const test::Output rejected = run(fmt::format("{} {} {} {}", test::python, quoted(script), quoted(schema),
                                                quoted(scratch / "tampered.json")));
  BOOST_CHECK_NE(rejected.status, 0);
}

BOOST_AUTO_TEST_CASE(a_missing_input_or_output_is_reported) {
  ScratchDir scratch;
  auto manifest = Manifest::begin("cmx-fit");
  BOOST_CHECK(error_of([&] { manifest.add_input(scratch / "absent.h5"); }).code() == ExitCode::no_input);
  const Error e = error_of([&] { manifest.write(scratch / "never_written.h5"); });
  BOOST_CHECK(e.code() == ExitCode::software);
  BOOST_CHECK(!fs::exists(scratch / "never_written.h5.json"));
}

BOOST_AUTO_TEST_SUITE_END()
