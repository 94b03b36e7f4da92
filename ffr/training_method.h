// The SD-free training methods (FFR_PROTOCOL.md, "Training methods") as the trainer sees them:
// which sampler draws the batches and which loss a batch gets. ERM, Resampling and GroupDRO
// differ only here; DFR trains with ERM and refits the head afterwards (ffr/dfr.h).
#pragma once

#include "data/groups.h"
#include "data/sampler.h"
#include "engine/tensor.h"
#include "ffr/experiment.h"
#include "kernels/group_cross_entropy.h"

#include <memory>
#include <vector>

namespace ffr {

// The groups a method works with on one training list: (y, b), or (y, b, g) for group-aware
// methods under USB/ASB, where real and synthetic samples of a pair are different groups.
struct TrainingGroups {
  bool with_source = false;
  int64_t num_groups = 0;
  std::vector<int> ids;          // the group of each sample of the list
  std::vector<int64_t> sizes;    // samples per group in the list
};
TrainingGroups training_groups(const data::Manifest& manifest, const data::IndexList& samples,
                               const data::GroupIndex& groups, bool with_source);

// Resampling: data::GroupBalancedSampler over the method's groups; every other method: a fresh
// seeded shuffle per epoch.
std::shared_ptr<const data::Sampler> make_training_sampler(TrainingMethod method, const data::IndexList& samples,
                                                           const TrainingGroups& groups, int64_t batch_size,
                                                           uint64_t seed);

// The loss of one batch, as a differentiable scalar on the device. GroupDRO's weights q live on
// the device and are updated inside the loss kernel, batch after batch, with no host read.
struct GroupDroOptions {
  double step_size = 0.01;  // eta
  double adjustment = 0.0;  // C, in C / sqrt(n_k)
};

class TrainingLoss {
 public:
  TrainingLoss(TrainingMethod method, const TrainingGroups& groups, Device device, GroupDroOptions dro = {});

  // logits [N, C]; labels and group ids [N] int64 on the device (group ids as TrainingGroups says).
  Tensor operator()(const Tensor& logits, const Tensor& labels, const Tensor& group_ids);

  // GroupDRO's current weights q [G] (float32 on the device); undefined for other methods.
  const Tensor& group_weights() const { return q_; }
  // Puts saved weights back (a resumed run); InputError when their shape is not q's.
  void load_group_weights(const Tensor& q);
  bool uses_source_groups() const { return with_source_; }

 private:
  GroupCrossEntropyConfig config_;
  bool with_source_;
  Tensor q_;
};

}  // namespace ffr
