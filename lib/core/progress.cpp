#include "core/progress.hpp"

#include <unistd.h>

#include <cstdio>

#include "core/log.hpp"

namespace opx {

Progress::Progress(std::string label, std::size_t total, ProgressMode mode)
    : label_(std::move(label)), total_(total) {
  is_tty_ = ::isatty(STDERR_FILENO) == 1;
  enabled_ = mode == ProgressMode::always || (mode == ProgressMode::automatic && is_tty_);
  if (log::level() == log::Level::quiet) enabled_ = false;
  start_ = last_draw_ = std::chrono::steady_clock::now();
}

Progress::~Progress() { finish(); }

void Progress::advance(std::size_t n) {
  done_ += n;
  if (!enabled_) return;
  auto now = std::chrono::steady_clock::now();
  if (now - last_draw_ > std::chrono::milliseconds(is_tty_ ? 200 : 2000)) {
    last_draw_ = now;
    draw(false);
  }
}

void Progress::finish() {
  if (finished_) return;
  finished_ = true;
  if (enabled_) draw(true);
}

void Progress::draw(bool final_line) {
  double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double pct = total_ ? 100.0 * double(done_) / double(total_) : 100.0;
  double rate = secs > 0 ? double(done_) / secs : 0.0;
  std::string line = fmt::format("{}: {} {}/{} ({:.0f} %, {:.0f}/s)", log::program(), label_,
                                 done_, total_, pct, rate);
  if (is_tty_) {
    std::fprintf(stderr, "\r%s\033[K%s", line.c_str(), final_line ? "\n" : "");
  } else {
    std::fprintf(stderr, "%s\n", line.c_str());
  }
  std::fflush(stderr);
}

}  // namespace opx
