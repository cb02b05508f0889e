#include "io/manifest.hpp"

#include <unistd.h>

#include <algorithm>

#include "core/atomic_file.hpp"
#include "core/clock.hpp"
#include "core/config.hpp"
#include "core/error.hpp"
#include "core/run_tool.hpp"
#include "io/json_schema.hpp"
#include "io/sha256.hpp"

namespace opx {
namespace fs = std::filesystem;

namespace {

std::string host_name() {
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) != 0) return "unknown";
  return name;
}

}  // namespace

Manifest Manifest::begin(std::string tool) {
  Manifest manifest;
  manifest.tool_ = std::move(tool);
  manifest.argv_ = command_line();
  std::error_code ec;
  manifest.cwd_ = fs::current_path(ec).string();
  manifest.host_ = host_name();
  manifest.start_time_ = clock::unix_time();
  return manifest;
}

void Manifest::add_input(const fs::path& path) {
  FileRecord record{path.string(), {}, 0};
  record.sha256 = sha256_file(path, &record.bytes);
  inputs_.push_back(std::move(record));
}

void Manifest::add_input_data(std::string label, std::string_view content) {
  inputs_.push_back(FileRecord{std::move(label), sha256_hex(content), content.size()});
}

void Manifest::add_output(const fs::path& path) {
  if (std::find(outputs_.begin(), outputs_.end(), path) == outputs_.end()) outputs_.push_back(path);
}

nlohmann::json Manifest::to_json(const FileRecord& record) {
  return {{"path", record.path}, {"sha256", record.sha256}, {"bytes", record.bytes}};
}

nlohmann::json Manifest::to_json() const {
  nlohmann::json inputs = nlohmann::json::array();
  for (const FileRecord& input : inputs_) inputs.push_back(to_json(input));
  nlohmann::json outputs = nlohmann::json::array();
  for (const fs::path& output : outputs_) {
    FileRecord record{output.string(), {}, 0};
    try {
      record.sha256 = sha256_file(output, &record.bytes);
    } catch (const Error& e) {
      throw internal_error("cannot write manifest", output.string(),
                           "the output to record does not exist: " + e.why());
    }
    outputs.push_back(to_json(record));
  }
  return {
      {"schema", schema_name},
      {"schema_version", schema_version},
      {"tool", tool_},
      {"version", config::version},
      {"argv", argv_},
      {"cwd", cwd_},
      {"host", host_},
      {"start_time", clock::iso8601(start_time_)},
      {"end_time", clock::now_iso8601()},
      {"inputs", std::move(inputs)},
      {"outputs", std::move(outputs)},
      {"parameters", parameters_},
      {"summary", summary_},
  };
}

fs::path Manifest::write(const fs::path& output) {
  add_output(output);
  const nlohmann::json document = to_json();
  fs::path path = output;
  path += ".json";
  // A manifest that does not match its own schema is a bug in opx.
  try {
    validate_json(document, "manifest", path.string(), ExitCode::software);
  } catch (const Error& e) {
    throw internal_error("cannot write manifest", e.where(), e.why());
  }
  // Command lines may hold file names that are not UTF-8; replace those bytes
  // rather than fail at the very end of a run.
  write_file_atomic(path, document.dump(2, ' ', false, nlohmann::json::error_handler_t::replace) + "\n");
  return path;
}

}  // namespace opx
