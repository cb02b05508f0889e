// io/jsonl: the event stream written by one program and followed by another.
#define BOOST_TEST_MODULE io_jsonl
#include <boost/test/unit_test.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <stdexcept>

#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include "io/jsonl.hpp"
#include "io_test_support.hpp"

using namespace opx;
using opx::test::error_of;

namespace {

// A FILE* whose content can be read back as a string.
struct MemoryStream {
  char* buffer = nullptr;
  std::size_t size = 0;
  std::FILE* file = ::open_memstream(&buffer, &size);
  ~MemoryStream() {
    if (file) std::fclose(file);
    std::free(buffer);
  }
  std::vector<nlohmann::json> lines() {
    std::fflush(file);
    std::vector<nlohmann::json> out;
    std::istringstream in(std::string(buffer, size));
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }
};

std::map<std::string, jsonl::DataKey> force_keys() {
  return {{"force", {"number", {}, "N", "gsv3:sim"}}, {"spectrum", {"array", {4}, "counts", "dp5:sim"}}};
}

}  // namespace

BOOST_AUTO_TEST_CASE(uids_are_128_bit_hex_and_unique) {
  std::set<std::string> seen;
  const std::regex hex("[0-9a-f]{32}");
  for (int i = 0; i < 1000; ++i) {
    const std::string uid = jsonl::new_uid();
    BOOST_REQUIRE(std::regex_match(uid, hex));
    seen.insert(uid);
  }
  BOOST_CHECK_EQUAL(seen.size(), 1000u);
}

BOOST_AUTO_TEST_CASE(a_run_follows_the_event_model) {
  MemoryStream out;
  {
    jsonl::Writer writer(out.file);
    const std::string run = writer.start({{"tool", "forcelog"}, {"plan_name", "count"}});
    const std::string primary = writer.descriptor("primary", force_keys());
    for (int i = 0; i < 3; ++i)
      writer.event(primary, {{"force", 1.5 * i}, {"spectrum", {i, i, i, i}}}, 1000.0 + i);
    writer.stop();
    BOOST_CHECK(!writer.running());
    BOOST_CHECK_EQUAL(run.size(), 32u);
  }
  const std::vector<nlohmann::json> docs = out.lines();
  BOOST_REQUIRE_EQUAL(docs.size(), 6u);  // no second stop from the destructor
  const nlohmann::json &start = docs[0], &descriptor = docs[1], &stop = docs[5];
  BOOST_CHECK_EQUAL(start["type"], "start");
  BOOST_CHECK_EQUAL(start["tool"], "forcelog");
  BOOST_CHECK(start["time"].is_number());
  BOOST_CHECK_EQUAL(descriptor["type"], "descriptor");
  BOOST_CHECK_EQUAL(descriptor["run_start"], start["uid"]);
  BOOST_CHECK_EQUAL(descriptor["name"], "primary");
  BOOST_CHECK(descriptor["data_keys"]["force"] ==
              nlohmann::json({{"dtype", "number"}, {"shape", nlohmann::json::array()}, {"units", "N"}, {"source", "gsv3:sim"}}));
  BOOST_CHECK(descriptor["data_keys"]["spectrum"]["shape"] == nlohmann::json({4}));
  for (int i = 0; i < 3; ++i) {
    const nlohmann::json& event = docs[2 + i];
    BOOST_CHECK_EQUAL(event["type"], "event");
    BOOST_CHECK_EQUAL(event["descriptor"], descriptor["uid"]);
    BOOST_CHECK_EQUAL(event["seq_num"], i + 1);
    BOOST_CHECK_EQUAL(event["time"], 1000.0 + i);
    BOOST_CHECK_EQUAL(event["data"]["force"], 1.5 * i);
    BOOST_CHECK_EQUAL(event["timestamps"]["force"], 1000.0 + i);
  }
  BOOST_CHECK_EQUAL(stop["type"], "stop");
  BOOST_CHECK_EQUAL(stop["run_start"], start["uid"]);
  BOOST_CHECK_EQUAL(stop["exit_status"], "success");
  BOOST_CHECK(stop["num_events"] == nlohmann::json({{"primary", 3}}));
  std::set<std::string> uids;
  for (const auto& doc : docs) uids.insert(doc["uid"].get<std::string>());
  BOOST_CHECK_EQUAL(uids.size(), docs.size());
}

BOOST_AUTO_TEST_CASE(every_record_is_flushed_at_once) {
  int fds[2];
  BOOST_REQUIRE_EQUAL(::pipe(fds), 0);
  ::fcntl(fds[0], F_SETFL, O_NONBLOCK);
  std::FILE* write_end = ::fdopen(fds[1], "w");  // fully buffered by default
  {
    jsonl::Writer writer(write_end, "pipe");
    writer.start();
    const std::string primary = writer.descriptor("primary", {{"force", {"number", {}, "N", ""}}});
    char buffer[4096];
    while (::read(fds[0], buffer, sizeof buffer) > 0) {
    }
    writer.event(primary, {{"force", 2.0}});
    // The pipe is not closed, yet the line is already there.
    const ssize_t n = ::read(fds[0], buffer, sizeof buffer);
    BOOST_REQUIRE_GT(n, 0);
    const std::string line(buffer, std::size_t(n));
    BOOST_CHECK(line.ends_with("\n"));
    BOOST_CHECK_EQUAL(nlohmann::json::parse(line)["data"]["force"], 2.0);
    writer.stop();
  }
  std::fclose(write_end);
  ::close(fds[0]);
}

BOOST_AUTO_TEST_CASE(an_exception_still_ends_the_run_with_abort) {
  MemoryStream out;
  try {
    jsonl::Writer writer(out.file);
    writer.start();
    const std::string primary = writer.descriptor("primary", {{"force", {"number", {}, "N", ""}}});
    writer.event(primary, {{"force", 1.0}});
    throw std::runtime_error("device went away");
  } catch (const std::runtime_error&) {
  }
  const std::vector<nlohmann::json> docs = out.lines();
  BOOST_REQUIRE_EQUAL(docs.size(), 4u);
  BOOST_CHECK_EQUAL(docs.back()["type"], "stop");
  BOOST_CHECK_EQUAL(docs.back()["exit_status"], "abort");
  BOOST_CHECK_EQUAL(docs.back()["reason"], "the program stopped on an error");
  BOOST_CHECK(docs.back()["num_events"] == nlohmann::json({{"primary", 1}}));
}

BOOST_AUTO_TEST_CASE(writer_refuses_events_that_do_not_match_their_descriptor) {
  MemoryStream out;
  jsonl::Writer writer(out.file);
  writer.start();
  const std::string primary = writer.descriptor("primary", {{"force", {"number", {}, "N", ""}}});
  BOOST_CHECK(error_of([&] { writer.event(primary, {{"torque", 1.0}}); }).code() == ExitCode::software);
  BOOST_CHECK(error_of([&] { writer.event(primary, {{"force", 1.0}, {"torque", 1.0}}); }).code() == ExitCode::software);
  BOOST_CHECK(error_of([&] { writer.event("nope", {{"force", 1.0}}); }).code() == ExitCode::software);
  BOOST_CHECK(error_of([&] { writer.descriptor("bad", {{"x", {"float64", {}, "", ""}}}); }).code() == ExitCode::software);
  writer.stop(jsonl::ExitStatus::fail, "cell voltage out of range");
  BOOST_CHECK_EQUAL(out.lines().back()["exit_status"], "fail");
  BOOST_CHECK_EQUAL(out.lines().back()["reason"], "cell voltage out of range");
}

BOOST_AUTO_TEST_CASE(reader_round_trips_a_stream_and_a_follower_in_a_pipe_reads_it) {
  MemoryStream out;
  {
    jsonl::Writer writer(out.file);
    writer.start({{"tool", "cycler"}});
    const std::string primary = writer.descriptor("primary", force_keys());
    writer.event(primary, {{"force", 1.0}, {"spectrum", {1, 2, 3, 4}}});
    writer.event(primary, {{"force", 2.0}, {"spectrum", {5, 6, 7, 8}}});
    writer.stop();
  }
  std::fflush(out.file);
  const std::string text(out.buffer, out.size);

  std::istringstream in(text + "\n");  // a trailing blank line is fine
  jsonl::Reader reader(in, "run.jsonl");
  std::vector<std::string> types;
  while (auto doc = reader.next()) {
    types.push_back(doc->type);
    if (doc->type == "event") BOOST_CHECK_EQUAL(doc->body["seq_num"], doc->line - 2);
  }
  BOOST_CHECK(types == std::vector<std::string>({"start", "descriptor", "event", "event", "stop"}));

  // An independent program follows the stream through a pipe.
  test::ScratchDir scratch;
  const std::filesystem::path result = scratch / "sum.txt";
  FILE* follower = ::popen(fmt::format("{} -c 'import sys, json\n"
                                       "docs = [json.loads(l) for l in sys.stdin]\n"
                                       "print(sum(d[\"data\"][\"force\"] for d in docs if d[\"type\"] == \"event\"))' > {}",
                                       test::python, test::quoted(result))
                               .c_str(),
                           "w");
  BOOST_REQUIRE(follower);
  BOOST_CHECK_EQUAL(std::fwrite(text.data(), 1, text.size(), follower), text.size());
  BOOST_CHECK_EQUAL(::pclose(follower), 0);
  std::ifstream sum(result);
  std::string line;
  std::getline(sum, line);
  BOOST_CHECK_EQUAL(line, "3.0");
}

BOOST_AUTO_TEST_CASE(reader_errors_name_the_line) {
  const std::string start = R"({"type":"start","uid":"a","time":1})";
  const std::string descriptor = R"({"type":"descriptor","uid":"d","run_start":"a","time":1,"data_keys":{"x":{"dtype":"number","shape":[]}}})";
  auto error_at = [](const std::string& text) {
    std::istringstream in(text);
    jsonl::Reader reader(in, "run.jsonl");
    return error_of([&] {
      while (reader.next()) {
      }
    });
  };
  const Error broken = error_at(start + "\n\n" + R"({"type":"event",)" + "\n");
  BOOST_CHECK(broken.code() == ExitCode::data_error);
  BOOST_CHECK_EQUAL(broken.where(), "run.jsonl:3");
  const Error unknown_descriptor =
      error_at(start + "\n" + descriptor + "\n" + R"({"type":"event","uid":"e","time":2,"descriptor":"zz","seq_num":1,"data":{}})");
  BOOST_CHECK_EQUAL(unknown_descriptor.where(), "run.jsonl:3");
  BOOST_CHECK_EQUAL(unknown_descriptor.why(), "the event refers to a descriptor not seen before");
  const Error no_start = error_at(descriptor);
  BOOST_CHECK_EQUAL(no_start.why(), "a descriptor before any start document");
  const Error no_type = error_at(R"({"uid":"a","time":1})");
  BOOST_CHECK_EQUAL(no_type.why(), "'type' must be a string");
  const Error bad_status = error_at(start + "\n" + R"({"type":"stop","uid":"s","time":2,"run_start":"a","exit_status":"ok"})");
  BOOST_CHECK_EQUAL(bad_status.where(), "run.jsonl:2");
  const Error bad_type = error_at(R"({"type":"resource","uid":"a","time":1})");
  BOOST_CHECK(bad_type.why().starts_with("unknown document type 'resource'"));
}
