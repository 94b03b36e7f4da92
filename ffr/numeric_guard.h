// NaN / Inf guard for a training loop: names the first step, and the first tensor at that step,
// where a non-finite value appeared, without ever stalling the step.
//
//   NumericGuard guard({"loss", "conv1.weight.grad", ...}, device);
//   adam.set_skip_guard(guard.status());          // a poisoned update changes nothing
//   for (step ...) {
//     forward, backward;
//     guard.check({loss, grads...}, step);        // one launch, no host synchronisation
//     adam.step();                                // after check(): it sees this step's status
//     if (auto finding = guard.poll()) stop(to_string(*finding));  // never blocks
//   }
//   if (auto finding = guard.wait()) ...          // epoch end: blocks until every check is read
//
// check() queues record_first_nonfinite (kernels/nonfinite_check.h) into a device status; on
// CUDA it also queues a copy of the status into one of a ring of pinned host slots and records
// an event behind it. poll() reads the newest slot whose event has completed (cudaEventQuery: it
// never waits), so a finding surfaces a few steps late, as soon as the GPU reaches it. The status
// is a running min, so any completed copy is a valid, possibly older, answer.
//
// CUDA graphs: the check kernel and the status copy can be captured, but an event record made
// during capture is not replayed with the graph (that would need cudaEventRecordExternal), so
// poll() would not see a replay's copy: keep check() outside a captured region for now. Not yet
// exercised under capture.
#pragma once

#include "engine/tensor.h"
#include "kernels/nonfinite_check.h"

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace ffr {

struct NonFiniteFinding {
  int64_t step;
  int64_t tensor_index;     // position in the list given to check()
  std::string tensor_name;  // its name from the constructor
};

// "NaN or Inf in <name> (tensor <i>) at step <s>".
std::string to_string(const NonFiniteFinding& finding);

class NumericGuard {
 public:
  // `tensor_names`: one per tensor check() will be given, in that order. All checked tensors live
  // on `device`.
  NumericGuard(std::vector<std::string> tensor_names, Device device);
  ~NumericGuard();
  NumericGuard(const NumericGuard&) = delete;
  NumericGuard& operator=(const NumericGuard&) = delete;

  // Queues the check of `tensors` (as many as names; undefined ones are skipped) for `step`
  // (0 <= step <= kMaxNonFiniteStep; a count that only grows over the run, such as the global step,
  // so that the smallest key is the first step). The plan is rebuilt only when the buffers change:
  // one-element tensors (the loss, new every step) go by value and do not count; the last few
  // plans are kept, so a grad that is undefined on some steps costs nothing either.
  void check(const std::vector<Tensor>& tensors, int64_t step);

  // The device status: int64 [1], kNoNonFinite while clean. Give it to Adam::set_skip_guard.
  const Tensor& status() const { return status_; }

  // The first non-finite value the host can see now, without waiting. CPU: the status itself;
  // CUDA: the newest copy of it that has landed in host memory (std::nullopt until one has).
  std::optional<NonFiniteFinding> poll();
  // The same after every check queued so far: blocks until the last copy lands (CUDA).
  std::optional<NonFiniteFinding> wait();

  // Back to clean (the status and every host copy); for a new run with the same buffers.
  void reset();

  const std::vector<std::string>& tensor_names() const { return names_; }
  // Plans built so far (each one a pinned staging buffer, a device allocation and a copy on CUDA).
  int64_t plans_built() const { return plans_built_; }
  Device device() const { return device_; }

 private:
  struct HostCopies;  // CUDA: pinned slots and their events

  std::optional<NonFiniteFinding> seen(int64_t key);  // folds `key` into seen_key_

  std::vector<std::string> names_;
  Device device_;
  Tensor status_;
  std::vector<NonFiniteCheckPlan> plans_;  // most recently used first
  std::unique_ptr<HostCopies> host_copies_;
  int64_t seen_key_ = kNoNonFinite;  // the smallest status the host has read
  int64_t plans_built_ = 0;
};

}  // namespace ffr
