// Where a CPU step's time goes, op by op: while a profile is on, every NVTX range (engine/nvtx.h:
// each op, each autograd backward node, each layer, the optimizer step) also times itself on the
// host. A range's self time is its time minus its child ranges', so a layer's self time is its
// glue (allocation, autograd recording) and the ops' own times add up without double counting.
// `ffr-bench perf --op-profile` prints it. On the CPU ops are synchronous, so this is where the
// time goes; on CUDA it measures only the host's launch cost (use Nsight there: README, Profiling).
// Off, a range costs one relaxed atomic load more. Ranges are recorded on the thread that opens
// them; ops open theirs on the calling thread, before any worker threads of their own.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace ffr {

struct OpProfileEntry {
  std::string name;
  int64_t calls = 0;
  double total_ms = 0.0;  // inclusive of child ranges
  double self_ms = 0.0;   // exclusive
};

// Clears what an earlier profile gathered and starts recording.
void start_op_profile();
// Stops recording; every range name seen, by self time, largest first.
std::vector<OpProfileEntry> stop_op_profile();
bool op_profile_on();

namespace detail {
void op_profile_push(const char* name);
void op_profile_pop();
}  // namespace detail

}  // namespace ffr
