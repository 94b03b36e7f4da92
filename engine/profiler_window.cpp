#include "engine/profiler_window.h"

#include "engine/error.h"

#include <cstdio>
#include <exception>

#ifdef FFR_WITH_CUDA
#include "engine/cuda/check.h"

#include <cuda_profiler_api.h>
#endif

namespace ffr {

ProfileSteps parse_profile_steps(const std::string& text, const std::string& flag) {
  auto number = [&](const std::string& part) -> int64_t {
    size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(part, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (part.empty() || used != part.size() || v < 1) {
      throw InputError(flag + ": expected A:B with whole numbers 1 <= A <= B (training steps), got '" + text + "'");
    }
    return v;
  };
  const size_t colon = text.find(':');
  ProfileSteps s;
  s.first = number(text.substr(0, colon));
  s.last = colon == std::string::npos ? s.first : number(text.substr(colon + 1));
  if (s.last < s.first) {
    throw InputError(flag + ": the window's end comes before its start in '" + text + "'");
  }
  return s;
}

ProfilerWindow::ProfilerWindow(ProfileSteps steps, Device device) : steps_(steps) {
  if (steps_.empty()) {
    note_ = "no profiling window";
  } else if (!device.is_cuda()) {
    note_ = "--profile-steps: running on the CPU, so no CUDA profiler window (nothing to capture)";
    steps_ = {};
  } else {
    start_ = cuda_profiler_start;
    stop_ = cuda_profiler_stop;
  }
}

ProfilerWindow::ProfilerWindow(ProfileSteps steps, Hook start, Hook stop)
    : steps_(steps), start_(std::move(start)), stop_(std::move(stop)) {
  if (steps_.empty()) note_ = "no profiling window";
}

ProfilerWindow::~ProfilerWindow() {
  if (!open_) return;
  try {
    stop();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ffr-bench: warning: closing the profiler window failed: %s\n", e.what());
  }
}

void ProfilerWindow::begin() {
  if (!steps_.empty() && steps_.first == 1 && !open_ && !done_) start();
}

void ProfilerWindow::step_done(int64_t steps_done) {
  if (steps_.empty() || done_) return;
  if (open_ && steps_done >= steps_.last) {
    stop();
  } else if (!open_ && steps_done + 1 == steps_.first) {
    start();
  }
}

void ProfilerWindow::start() {
  start_();
  open_ = true;
}

void ProfilerWindow::stop() {
  open_ = false;
  done_ = true;
  stop_();
}

#ifdef FFR_WITH_CUDA
void cuda_profiler_start() { FFR_CUDA_CHECK(cudaProfilerStart()); }
// The window's last step is queued, not necessarily run: wait for it, so the capture holds it.
void cuda_profiler_stop() {
  FFR_CUDA_CHECK(cudaDeviceSynchronize());
  FFR_CUDA_CHECK(cudaProfilerStop());
}
#else
void cuda_profiler_start() { FFR_FAIL("cudaProfilerStart: this build has no CUDA"); }
void cuda_profiler_stop() { FFR_FAIL("cudaProfilerStop: this build has no CUDA"); }
#endif

}  // namespace ffr
