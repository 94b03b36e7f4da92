#include "bench/progress.h"

#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <memory>

namespace ffr::bench {

std::string format_duration(double seconds) {
  const long long s = seconds > 0 ? static_cast<long long>(seconds + 0.5) : 0;
  char text[32];
  if (s >= 3600) {
    std::snprintf(text, sizeof text, "%lldh%02lldm", s / 3600, (s / 60) % 60);
  } else if (s >= 60) {
    std::snprintf(text, sizeof text, "%lldm%02llds", s / 60, s % 60);
  } else {
    std::snprintf(text, sizeof text, "%llds", s);
  }
  return text;
}

void end_progress_line() {
  if (::isatty(STDERR_FILENO) != 0) std::fprintf(stderr, "\n");
}

ProgressCallback progress_printer(const std::string& label) {
  using Clock = std::chrono::steady_clock;
  constexpr auto kLogInterval = std::chrono::seconds(30);
  const bool terminal = ::isatty(STDERR_FILENO) != 0;
  auto last_print = std::make_shared<Clock::time_point>(Clock::time_point{});
  return [=](const Progress& p) {
    char val[32] = "";
    if (p.val_worst_group_accuracy >= 0.0) std::snprintf(val, sizeof val, ", val WA %.3f", p.val_worst_group_accuracy);
    const Clock::time_point now = Clock::now();
    if (!terminal) {
      if (*last_print == Clock::time_point{}) *last_print = now;  // the first report starts the clock
      if (p.epoch_done) {
        std::fprintf(stderr, "%s: %s epoch %lld/%lld%s, %.0f images/s, ETA %s\n", label.c_str(), p.stage.c_str(),
                     static_cast<long long>(p.epoch), static_cast<long long>(p.epochs), val, p.images_per_second,
                     format_duration(p.eta_seconds).c_str());
      } else if (now - *last_print >= kLogInterval) {
        // Long epochs: a log (a batch job's file) still hears from the run at least every 30 s.
        std::fprintf(stderr, "%s: %s epoch %lld/%lld step %lld/%lld, %.0f images/s, ETA %s\n", label.c_str(),
                     p.stage.c_str(), static_cast<long long>(p.epoch), static_cast<long long>(p.epochs),
                     static_cast<long long>(p.step), static_cast<long long>(p.steps), p.images_per_second,
                     format_duration(p.eta_seconds).c_str());
      } else {
        return;
      }
      std::fflush(stderr);
      *last_print = now;
      return;
    }
    if (!p.epoch_done && now - *last_print < std::chrono::milliseconds(200)) return;
    *last_print = now;
    // \033[K clears what a longer previous line left on the right.
    std::fprintf(stderr, "\r%s: %s epoch %lld/%lld step %lld/%lld  %.0f img/s  ETA %s%s\033[K", label.c_str(),
                 p.stage.c_str(), static_cast<long long>(p.epoch), static_cast<long long>(p.epochs),
                 static_cast<long long>(p.step), static_cast<long long>(p.steps), p.images_per_second,
                 format_duration(p.eta_seconds).c_str(), val);
    std::fflush(stderr);
  };
}

}  // namespace ffr::bench
