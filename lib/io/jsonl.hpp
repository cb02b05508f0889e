#pragma once
// JSON Lines event streams after the Bluesky event model, so that another
// program can follow an acquisition, a cycling run or a force log through a
// pipe. One JSON object per line, flushed as soon as it is written:
//
//   {"type":"start","uid":...,"time":...,<metadata>}
//   {"type":"descriptor","uid":...,"run_start":...,"time":...,"name":"primary",
//    "data_keys":{"force":{"dtype":"number","shape":[],"units":"N","source":"gsv3:sim"}}}
//   {"type":"event","uid":...,"descriptor":...,"seq_num":1,"time":...,
//    "data":{"force":1.25},"timestamps":{"force":...}}
//   {"type":"stop","uid":...,"run_start":...,"time":...,"exit_status":"success",
//    "reason":"","num_events":{"primary":1}}
//
// Times are Unix seconds (UTC); uids are 128-bit random hex.
#include <cstdio>
#include <istream>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "core/clock.hpp"

namespace opx::jsonl {

// 32 lowercase hex digits from the system's random source.
std::string new_uid();

enum class ExitStatus { success, abort, fail };
const char* to_string(ExitStatus status);

// How one quantity of a stream is described, as in Bluesky.
struct DataKey {
  std::string dtype;               // "number", "integer", "string", "boolean" or "array"
  std::vector<std::size_t> shape;  // empty for a single value; [2048] for a spectrum
  std::string units;               // "" when dimensionless
  std::string source;              // where it comes from, e.g. "dp5:/dev/ttyUSB0"
};

class Writer {
 public:
  // `out` stays owned by the caller; `label` names it in messages.
  explicit Writer(std::FILE* out = stdout, std::string label = "standard output");
  // Writes a stop with exit_status "abort" when a run was started and not
  // stopped, so a reader learns of the end even when an exception unwinds.
  ~Writer();
  Writer(const Writer&) = delete;
  Writer& operator=(const Writer&) = delete;

  // Starts a run; `metadata` (an object: tool, plan_name, sample...) is
  // copied into the start document. Returns the run's uid.
  std::string start(const nlohmann::json& metadata = nlohmann::json::object());
  // Describes a stream ("primary", "baseline"...); returns the descriptor uid.
  std::string descriptor(const std::string& name, const std::map<std::string, DataKey>& data_keys);
  // One reading; `data` holds a value for each data key of the descriptor.
  void event(const std::string& descriptor_uid, const nlohmann::json& data, double time = clock::unix_time());
  // Ends the run. `reason` says why when the status is not success.
  void stop(ExitStatus status = ExitStatus::success, const std::string& reason = "");

  bool running() const { return !run_uid_.empty(); }

 private:
  struct Stream {
    std::string name;
    std::set<std::string> keys;
    std::size_t events = 0;
  };
  void emit(const nlohmann::json& document);

  std::FILE* out_;
  std::string label_;
  std::string run_uid_;
  std::map<std::string, Stream> streams_;  // by descriptor uid
};

// One document of a stream.
struct Document {
  std::string type;      // "start", "descriptor", "event" or "stop"
  nlohmann::json body;   // the whole record
  std::size_t line = 0;  // 1-based line number in the stream
};

// Reads a stream line by line (blank lines are skipped), checking each
// document's required fields and that events refer to a known descriptor.
// Errors are data_error with "<label>:<line>".
class Reader {
 public:
  explicit Reader(std::istream& in, std::string label = "<stdin>");
  // The next document, or nothing at the end of the stream.
  std::optional<Document> next();

 private:
  // Checks one parsed line and returns its type.
  std::string check(const nlohmann::json& body, const std::string& where);

  std::istream& in_;
  std::string label_;
  std::size_t line_ = 0;
  bool started_ = false;
  std::set<std::string> descriptors_;
};

}  // namespace opx::jsonl
