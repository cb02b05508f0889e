#include "io/jsonl.hpp"

#include <cerrno>
#include <cstring>
#include <exception>
#include <random>
#include <utility>

#include <fmt/format.h>

#include "core/error.hpp"

namespace opx::jsonl {
namespace {

const std::set<std::string> k_dtypes = {"number", "integer", "string", "boolean", "array"};

}  // namespace

std::string new_uid() {
  // A non-deterministic source (the kernel's or the CPU's), so uids from
  // separate processes and runs do not collide.
  thread_local std::random_device source;
  std::uint64_t high = (std::uint64_t(source()) << 32) | source();
  std::uint64_t low = (std::uint64_t(source()) << 32) | source();
  return fmt::format("{:016x}{:016x}", high, low);
}

const char* to_string(ExitStatus status) {
  switch (status) {
    case ExitStatus::success: return "success";
    case ExitStatus::abort: return "abort";
    case ExitStatus::fail: return "fail";
  }
  return "fail";
}

// --- Writer ----------------------------------------------------------------------

Writer::Writer(std::FILE* out, std::string label) : out_(out), label_(std::move(label)) {}

Writer::~Writer() {
  if (!running()) return;
  try {
    stop(ExitStatus::abort, std::uncaught_exceptions() > 0 ? "the program stopped on an error"
                                                           : "the program ended without finishing the run");
  } catch (...) {
    // The stream is already broken (closed pipe, full disk); nothing more to tell it.
  }
}

void Writer::emit(const nlohmann::json& document) {
  // Non-UTF-8 bytes (a device's odd reply) are replaced, not fatal.
  const std::string line = document.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace) + "\n";
  errno = 0;
  if (std::fwrite(line.data(), 1, line.size(), out_) != line.size() || std::fflush(out_) != 0)
    throw io_error("cannot write event stream", label_, errno ? std::strerror(errno) : "write error");
}

std::string Writer::start(const nlohmann::json& metadata) {
  if (running()) throw internal_error("cannot start run", label_, "a run is already open");
  if (!metadata.is_object()) throw internal_error("cannot start run", label_, "metadata must be a JSON object");
  nlohmann::json document = metadata;
  const std::string uid = new_uid();
  document["type"] = "start";
  document["uid"] = uid;
  document["time"] = clock::unix_time();
  emit(document);
  run_uid_ = uid;
  streams_.clear();
  return uid;
}

std::string Writer::descriptor(const std::string& name, const std::map<std::string, DataKey>& data_keys) {
  if (!running()) throw internal_error("cannot describe stream", label_, "no run started");
  nlohmann::json keys = nlohmann::json::object();
  Stream stream{name, {}, 0};
  for (const auto& [key, description] : data_keys) {
    if (!k_dtypes.contains(description.dtype))
      throw internal_error("cannot describe stream", fmt::format("{}: {}", label_, key),
                           fmt::format("dtype '{}' is not one of number, integer, string, boolean, array",
                                       description.dtype));
    keys[key] = {{"dtype", description.dtype},
                 {"shape", description.shape},
                 {"units", description.units},
                 {"source", description.source}};
    stream.keys.insert(key);
  }
  const std::string uid = new_uid();
  emit({{"type", "descriptor"},
        {"uid", uid},
        {"run_start", run_uid_},
        {"time", clock::unix_time()},
        {"name", name},
        {"data_keys", keys}});
  streams_.emplace(uid, std::move(stream));
  return uid;
}

void Writer::event(const std::string& descriptor_uid, const nlohmann::json& data, double time) {
  const auto found = streams_.find(descriptor_uid);
  if (found == streams_.end())
    throw internal_error("cannot write event", label_, "unknown descriptor uid " + descriptor_uid);
  Stream& stream = found->second;
  if (!data.is_object() || data.size() != stream.keys.size())
    throw internal_error("cannot write event", label_,
                         fmt::format("stream '{}' needs exactly the values of its data keys", stream.name));
  nlohmann::json timestamps = nlohmann::json::object();
  for (const auto& [key, value] : data.items()) {
    if (!stream.keys.contains(key))
      throw internal_error("cannot write event", label_,
                           fmt::format("'{}' is not a data key of stream '{}'", key, stream.name));
    timestamps[key] = time;
  }
  emit({{"type", "event"},
        {"uid", new_uid()},
        {"descriptor", descriptor_uid},
        {"seq_num", stream.events + 1},
        {"time", time},
        {"data", data},
        {"timestamps", timestamps}});
  ++stream.events;
}

void Writer::stop(ExitStatus status, const std::string& reason) {
  if (!running()) throw internal_error("cannot stop run", label_, "no run started");
  nlohmann::json counts = nlohmann::json::object();
  for (const auto& [uid, stream] : streams_) {
    const std::size_t before = counts.contains(stream.name) ? counts[stream.name].get<std::size_t>() : 0;
    counts[stream.name] = before + stream.events;
  }
  const std::string run = std::exchange(run_uid_, std::string());  // stopped even if the write fails
  emit({{"type", "stop"},
        {"uid", new_uid()},
        {"run_start", run},
        {"time", clock::unix_time()},
        {"exit_status", to_string(status)},
        {"reason", reason},
        {"num_events", counts}});
}

// --- Reader ----------------------------------------------------------------------

Reader::Reader(std::istream& in, std::string label) : in_(in), label_(std::move(label)) {}

std::optional<Document> Reader::next() {
  std::string text;
  while (std::getline(in_, text)) {
    ++line_;
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = fmt::format("{}:{}", label_, line_);
    Document document;
    document.line = line_;
    try {
      document.body = nlohmann::json::parse(text);
    } catch (const nlohmann::json::parse_error& e) {
      const std::string message = e.what();
      const std::size_t colon = message.find(": ");
      throw data_error("invalid event stream", where,
                       colon == std::string::npos ? message : message.substr(colon + 2));
    }
    document.type = check(document.body, where);
    return document;
  }
  if (in_.bad()) throw io_error("cannot read event stream", label_, std::strerror(errno));
  return std::nullopt;
}

std::string Reader::check(const nlohmann::json& body, const std::string& where) {
  auto require = [&](const char* field, bool ok, const char* expected) {
    if (!ok) throw data_error("invalid event stream", where, fmt::format("'{}' must be {}", field, expected));
  };
  require("the line", body.is_object(), "a JSON object");
  require("type", body.contains("type") && body["type"].is_string(), "a string");
  const std::string type = body["type"];
  require("uid", body.contains("uid") && body["uid"].is_string(), "a string");
  require("time", body.contains("time") && body["time"].is_number(), "a number");
  if (type == "start") {
    started_ = true;
    return type;
  }
  if (type != "descriptor" && type != "event" && type != "stop")
    throw data_error("invalid event stream", where,
                     fmt::format("unknown document type '{}' (expected start, descriptor, event or stop)", type));
  if (!started_)
    throw data_error("invalid event stream", where, fmt::format("a {} before any start document", type));
  if (type == "descriptor") {
    require("run_start", body.contains("run_start") && body["run_start"].is_string(), "a string");
    require("data_keys", body.contains("data_keys") && body["data_keys"].is_object(), "an object");
    for (const auto& [key, description] : body["data_keys"].items()) {
      if (!description.is_object() || !description.contains("dtype") || !description.contains("shape"))
        throw data_error("invalid event stream", where,
                         fmt::format("data key '{}' needs a dtype and a shape", key));
    }
    descriptors_.insert(body["uid"].get<std::string>());
  } else if (type == "event") {
    require("descriptor", body.contains("descriptor") && body["descriptor"].is_string(), "a string");
    require("seq_num", body.contains("seq_num") && body["seq_num"].is_number_integer(), "an integer");
    require("data", body.contains("data") && body["data"].is_object(), "an object");
    if (!descriptors_.contains(body["descriptor"].get<std::string>()))
      throw data_error("invalid event stream", where, "the event refers to a descriptor not seen before");
  } else {
    require("run_start", body.contains("run_start") && body["run_start"].is_string(), "a string");
    require("exit_status",
            body.contains("exit_status") && body["exit_status"].is_string() &&
                (body["exit_status"] == "success" || body["exit_status"] == "abort" || body["exit_status"] == "fail"),
            "\"success\", \"abort\" or \"fail\"");
  }
  return type;
}

}  // namespace opx::jsonl
