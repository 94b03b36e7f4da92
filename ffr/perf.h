// Timing of whole training steps (forward, cross-entropy, backward, Adam: the trainer's optimizer)
// or forward-only eval steps, on random data held on the device: what `ffr-bench perf` reports,
// and what bench/compare_pytorch.py sets against PyTorch eager.
//
// CPU: each step is timed with the wall clock (the ops are synchronous). CUDA: an event is recorded
// on the engine's stream before and after each step and the host waits only once, after the last
// step of the timed window, so the host never stalls the queue inside the window.
#pragma once

#include "engine/device.h"
#include "engine/op_profile.h"
#include "engine/precision.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace ffr {

struct PerfConfig {
  std::string model = "resnet50";
  int64_t batch_size = 32;
  int64_t image_size = 0;      // 0: the model's default (ffr-bench models)
  int64_t num_classes = 1000;  // ImageNet's, as `ffr-bench models` counts parameters
  Device device = Device::cpu();
  Precision precision = Precision::Float32;
  int64_t steps = 10;          // timed
  int64_t warmup = 2;          // untimed, before (first-step allocations, algorithm choices)
  bool inference = false;      // eval mode, no autograd, no optimizer
  // With inference: time the embedding API instead (InferenceModel::classify_batch on 8-bit images
  // at the model's size, loaded from a checkpoint of the same weights), to show it costs what the
  // bare forward pass does.
  bool api = false;
  bool op_profile = false;     // record engine/op_profile.h over the timed window
  double learning_rate = 1e-4;
  double weight_decay = 1e-5;
  uint64_t seed = 0;
  int threads = 0;             // CPU compute threads (ours and OpenBLAS's); 0: leave as configured
};

struct PerfResult {
  int64_t image_size = 0;             // resolved
  std::vector<double> step_ms;        // each timed step
  double ms_per_step_median = 0.0, ms_per_step_min = 0.0, ms_per_step_max = 0.0;
  double images_per_s = 0.0;          // batch * steps / the timed window
  size_t peak_host_bytes = 0;         // the CPU allocator's peak over warm-up and timed steps
  size_t max_rss_bytes = 0;           // the process's maximum resident set size
  size_t peak_device_bytes = 0;       // the CUDA allocator's peak (0 on the CPU)
  int threads = 0;                    // CPU compute threads used
  // The process's resource use over the timed window alone (getrusage): where the CPU time goes
  // (user vs kernel) and whether a steady step still faults pages in (it should not).
  double cpu_user_s = 0.0, cpu_system_s = 0.0;
  int64_t minor_page_faults = 0, major_page_faults = 0;
  std::vector<OpProfileEntry> op_profile;  // with config.op_profile: summed over the timed steps
  std::string inference_plan;  // --inference through a prepared plan: what it runs; empty when none
};

// Throws InputError for a bad config (unknown model, non-positive sizes or steps).
PerfResult measure_steps(const PerfConfig& config);

}  // namespace ffr
