#pragma once
// A progress line on stderr, drawn only when stderr is a terminal or when the
// user asked for it (--progress); otherwise every call is a no-op.
#include <chrono>
#include <cstddef>
#include <string>

namespace opx {

enum class ProgressMode { automatic, always, never };

class Progress {
 public:
  Progress(std::string label, std::size_t total, ProgressMode mode = ProgressMode::automatic);
  ~Progress();
  Progress(const Progress&) = delete;
  Progress& operator=(const Progress&) = delete;

  void advance(std::size_t n = 1);
  void finish();
  bool enabled() const { return enabled_; }

 private:
  void draw(bool final_line);
  std::string label_;
  std::size_t total_, done_ = 0;
  bool enabled_, finished_ = false;
  bool is_tty_ = false;
  std::chrono::steady_clock::time_point start_, last_draw_;
};

}  // namespace opx
