// Per-subgroup accuracy, accumulated on the device over an evaluation: for each group (the
// dataset's (y, b) pairs, or (y, b, g) with the source), how many samples it holds and how many
// the model gets right (argmax of the logits equals the label). WA and BA follow from the
// counts, which reach the host once, at the end; update() never synchronises.
//
//   SubgroupAccuracy acc(num_groups, device, declared);
//   for (batch : loader) acc.update(model(batch.images), batch.labels, batch.groups);
//   SubgroupAccuracy::Summary s = acc.summary();  // one read: counts, per-group accuracy, WA, BA
//
// Counts are int64 and the CUDA kernel adds them with integer atomics, so they are exact and the
// same on every run. Argmax ties go to the lowest index and a NaN logit wins, as torch.argmax.
// Samples with a group id outside [0, G) or a label outside [0, C) cannot be checked without a
// synchronisation; they are counted apart and reading the counts throws, naming how many.
#pragma once

#include "engine/host_device.h"
#include "engine/tensor.h"

#include <cstdint>
#include <vector>

namespace ffr {

class SubgroupAccuracy {
 public:
  // `declared`: the groups the dataset declares (WA and BA are over these); empty = all G.
  SubgroupAccuracy(int64_t num_groups, Device device = Device::cpu(), std::vector<bool> declared = {});

  void reset();
  // logits [N, C] (CPU: float32/float64; CUDA: float32/bfloat16), labels [N] and groups [N]
  // int64, all on the accumulator's device.
  void update(const Tensor& logits, const Tensor& labels, const Tensor& groups);

  struct Counts {
    std::vector<int64_t> correct;  // [G]
    std::vector<int64_t> total;    // [G]
  };
  struct Summary {
    Counts counts;
    std::vector<double> accuracy;  // [G]; NaN where a group saw no sample
    double worst_group_accuracy;   // min over declared groups with samples (NaN if none)
    double balanced_accuracy;      // unweighted mean over the same groups
  };

  // Each of these reads the device counts once.
  Counts counts() const;
  Summary summary() const;
  double worst_group_accuracy() const { return summary().worst_group_accuracy; }
  double balanced_accuracy() const { return summary().balanced_accuracy; }

  // The device buffer, int64 [2G + 1]: correct counts [0, G), totals [G, 2G), invalid samples at 2G.
  const Tensor& device_counts() const { return counts_; }
  int64_t num_groups() const { return num_groups_; }

 private:
  int64_t num_groups_;
  std::vector<bool> declared_;
  Tensor counts_;
};

// True when value a at index ia beats b at ib for argmax: the larger wins, NaN beats any number,
// and ties (NaN with NaN included) go to the lower index. Symmetric, so a tree of comparisons
// picks the same winner as a left-to-right scan.
template <typename T>
FFR_HOST_DEVICE bool argmax_better(T a, int64_t ia, T b, int64_t ib) {
  const bool a_nan = a != a, b_nan = b != b;
  if (a_nan || b_nan) return a_nan && (!b_nan || ia < ib);
  return a > b || (a == b && ia < ib);
}

// Launchers: add one batch into counts (int64 [2G + 1], layout as device_counts()).
void subgroup_accuracy_cpu(const void* logits, DType dtype, const int64_t* labels, const int64_t* groups,
                           int64_t rows, int64_t classes, int64_t num_groups, int64_t* counts);
void subgroup_accuracy_cuda(const void* logits, DType dtype, const int64_t* labels, const int64_t* groups,
                            int64_t rows, int64_t classes, int64_t num_groups, int64_t* counts);

}  // namespace ffr
