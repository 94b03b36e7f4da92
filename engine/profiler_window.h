// A window of training steps for Nsight Systems / Nsight Compute: cudaProfilerStart before step
// `first`, cudaProfilerStop after step `last` (1-based, counting this process's training steps).
// With `nsys profile --capture-range=cudaProfilerApi` or `ncu --profile-from-start off` only the
// window is recorded (README "Profiling"). On the CPU it does nothing and says so in note().
#pragma once

#include "engine/device.h"

#include <cstdint>
#include <functional>
#include <string>

namespace ffr {

struct ProfileSteps {
  int64_t first = 0, last = 0;  // 0: no window
  bool empty() const { return first == 0; }
};

// "A:B" with 1 <= A <= B ("A" alone is A:A); InputError naming `flag` otherwise.
ProfileSteps parse_profile_steps(const std::string& text, const std::string& flag = "--profile-steps");

class ProfilerWindow {
 public:
  using Hook = std::function<void()>;
  // On a CUDA device: cudaProfilerStart/Stop (checked). Tests pass their own hooks.
  ProfilerWindow(ProfileSteps steps, Device device);
  ProfilerWindow(ProfileSteps steps, Hook start, Hook stop);
  // Stops a window still open (the run ended inside it); never throws.
  ~ProfilerWindow();
  ProfilerWindow(const ProfilerWindow&) = delete;
  ProfilerWindow& operator=(const ProfilerWindow&) = delete;

  // Call once before the first step (opens a window that starts at step 1) and after every step
  // with the number of steps done so far.
  void begin();
  void step_done(int64_t steps_done);

  bool open() const { return open_; }
  // Empty, or why the window does nothing (no window asked for, or not on a GPU).
  const std::string& note() const { return note_; }

 private:
  void start();
  void stop();

  ProfileSteps steps_;
  Hook start_, stop_;
  bool open_ = false, done_ = false;
  std::string note_;
};

// Checked cudaProfilerStart / cudaProfilerStop; ffr::Error in a build without CUDA.
void cuda_profiler_start();
void cuda_profiler_stop();

}  // namespace ffr
