// resume.safetensors: where an unfinished run stands after its last complete epoch, so that a
// killed run (a scheduler's preemption, an OOM kill, a power cut, a NaN stop) goes on from there
// rather than from scratch. It holds everything the rest of the run depends on:
//   model/<name>        the model's state dict (parameters and BN buffers) after that epoch
//   optimizer/<name>    Adam's state (moments, per-parameter step counts, "step")
//   best/<name>         the stage's best epoch so far (its state dict: what the next stage and
//                       the final evaluation start from)
//   groupdro/q          GroupDRO's group weights
// and, as metadata, the configuration, the stage and its completed epochs, the best epoch's
// validation metrics, every metrics.jsonl line so far, the run-wide step count and time spent.
// The sampler needs no state of its own: an epoch's order is a pure function of (seed, epoch)
// (data/sampler.h), so the resumed run restarts it at the next epoch's first batch. No other
// random stream is drawn from while training (the zoo's models have no dropout).
//
// The file is rewritten atomically after every epoch (the last thing an epoch does), and removed
// once result.json is written. In deterministic mode a resumed run ends with the same weights and
// numbers as one that was never interrupted (tests/ffr_resume_test.cpp).
#pragma once

#include "ffr/experiment.h"
#include "ffr/trainer.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ffr {

struct ResumeState {
  std::string config_json;             // the run's configuration (config_to_json)
  int64_t stage_index = 0;             // the stage the epochs below belong to
  std::string stage_name;              // its name, checked against the plan on load
  NamedTensors model;                  // after the last complete epoch
  StageProgress stage;                 // optimizer, GroupDRO weights, best so far, epochs done
  std::vector<int64_t> finished_best_epochs;  // best epoch of each stage before stage_index
  std::vector<EpochMetrics> metrics;   // metrics.jsonl so far
  int64_t steps_done = 0;              // run-wide training steps
  double seconds = 0.0;                // wall time the run has spent so far
};

// Writes `state` atomically (device tensors are copied to the host one at a time).
void save_resume_state(const std::string& path, const ResumeState& state);

// Reads what save_resume_state wrote; InputError naming `path` for anything else (another
// format, a missing field, a corrupt file). Tensors come back on the CPU.
ResumeState load_resume_state(const std::string& path);

}  // namespace ffr
