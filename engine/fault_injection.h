// Faults injected on purpose, so tests (and a user who doubts the resume logic) can show that a
// killed, out-of-memory or diverging run loses nothing. Off unless the FFR_FAULT environment
// variable names faults (read once, on first use); then each fires once, at a run-wide training
// step counted from 1 (the step a resumed run starts from is the one after its checkpoint):
//
//   FFR_FAULT=kill-at-step=7              SIGKILL this process just before step 7 trains
//   FFR_FAULT=kill-after-epoch=2          SIGKILL it right after the 2nd epoch checkpoint of this
//                                         process is on disk (counting across stages)
//   FFR_FAULT=oom-at-step=7               from step 7 on, the device's allocator refuses any
//                                         allocation beyond what is in use (a real allocation
//                                         failure, through the allocator's own limit)
//   FFR_FAULT=nan-at-step=7@layer1.0.conv2      the output of that layer is NaN at step 7
//   FFR_FAULT=nan-grad-at-step=7@fc.weight      that parameter's gradient is NaN at step 7
//
// Several faults are separated by commas. A malformed value is an InputError naming FFR_FAULT.
// The hooks cost one branch on a cached bool when nothing is injected.
#pragma once

#include <cstdint>
#include <string>

namespace ffr::fault {

struct Plan {
  int64_t kill_at_step = -1;
  int64_t kill_after_epoch = -1;
  int64_t oom_at_step = -1;
  int64_t nan_at_step = -1;
  std::string nan_layer;           // with nan_at_step
  int64_t nan_grad_at_step = -1;
  std::string nan_grad_parameter;  // with nan_grad_at_step
  bool any() const {
    return kill_at_step > 0 || kill_after_epoch > 0 || oom_at_step > 0 || nan_at_step > 0 || nan_grad_at_step > 0;
  }
};

// Parses an FFR_FAULT value ("" = no faults); InputError naming FFR_FAULT on a malformed one.
Plan parse_plan(const std::string& spec);

// The active plan: FFR_FAULT's, unless a test set another with set_plan.
const Plan& plan();
void set_plan(const Plan& plan);

// True when a fault is active (the trainer's hooks return at once otherwise).
inline bool active() { return plan().any(); }

// SIGKILL, as a scheduler or the OOM killer would: no destructors, no buffered output flushed.
[[noreturn]] void kill_process(const std::string& why);

}  // namespace ffr::fault
