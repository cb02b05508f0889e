#pragma once
// Outputs are written under a temporary name in the target's folder and
// renamed into place only when complete, so a failed or killed run never
// leaves a half-written file and never damages an existing one.
#include <filesystem>
#include <string>

namespace opx {

class AtomicOutput {
 public:
  // Reserves a temporary name next to `target` (".<name>.tmp-<pid>-<n>").
  // Throws cannot_create when the folder does not exist or is not writable.
  explicit AtomicOutput(std::filesystem::path target);
  // The same checks without reserving a name: call it before long work so a
  // run fails at once, not after hours, when its output cannot be written.
  static void check_target(const std::filesystem::path& target);
  ~AtomicOutput();  // removes the temporary file unless committed
  AtomicOutput(const AtomicOutput&) = delete;
  AtomicOutput& operator=(const AtomicOutput&) = delete;

  const std::filesystem::path& temp_path() const { return temp_; }
  const std::filesystem::path& target() const { return target_; }

  // fsyncs the temporary file and renames it over the target.
  void commit();
  bool committed() const { return committed_; }

 private:
  std::filesystem::path target_, temp_;
  bool committed_ = false;
};

// Writes `content` to `target` atomically.
void write_file_atomic(const std::filesystem::path& target, const std::string& content);

}  // namespace opx
