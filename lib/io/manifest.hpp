#pragma once
// The JSON manifest written beside every output as "<output>.json": which
// tool and version made it, from which command line, inputs and parameters,
// when, on which host, and a short summary of the result. Inputs and outputs
// carry their SHA-256, so Makefiles and people can follow provenance.
// Layout: schemas/manifest.schema.json ("opx.manifest", version 1).
//
//   auto manifest = opx::Manifest::begin("cmx-fit");
//   manifest.add_input(spectra_path);
//   manifest.set_parameters(config);
//   ... write and commit the output ...
//   manifest.set_summary({{"spectra", n}});
//   manifest.write(output_path);          // writes output_path + ".json"
#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace opx {

class Manifest {
 public:
  static constexpr const char* schema_name = "opx.manifest";
  static constexpr int schema_version = 1;

  // Starts a manifest now: records the start time, the command line
  // (opx::command_line()), the working folder and the host.
  static Manifest begin(std::string tool);

  // Records an input as read: its path as given and, hashed now, its SHA-256 and size.
  void add_input(const std::filesystem::path& path);
  // Records an input read from a stream ("-") from the bytes the tool read.
  void add_input_data(std::string label, std::string_view content);
  // Records an output; it is hashed when the manifest is written, so it may
  // be declared before it is complete.
  void add_output(const std::filesystem::path& path);

  void set_parameters(nlohmann::json parameters) { parameters_ = std::move(parameters); }
  void set_summary(nlohmann::json summary) { summary_ = std::move(summary); }

  // The manifest as it would be written now (end time = now, outputs hashed).
  nlohmann::json to_json() const;

  // Validates against the schema and writes "<output>.json" atomically.
  // `output` is added to the outputs when not declared yet. Returns the
  // manifest's path.
  std::filesystem::path write(const std::filesystem::path& output);

 private:
  struct FileRecord {
    std::string path;
    std::string sha256;
    std::uintmax_t bytes = 0;
  };
  Manifest() = default;
  static nlohmann::json to_json(const FileRecord& record);

  std::string tool_;
  std::vector<std::string> argv_;
  std::string cwd_;
  std::string host_;
  double start_time_ = 0;
  std::vector<FileRecord> inputs_;
  std::vector<std::filesystem::path> outputs_;
  nlohmann::json parameters_ = nlohmann::json::object();
  nlohmann::json summary_ = nlohmann::json::object();
};

}  // namespace opx
