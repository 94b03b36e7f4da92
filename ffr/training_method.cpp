#include "ffr/training_method.h"

#include "engine/error.h"

#include <algorithm>

namespace ffr {

TrainingGroups training_groups(const data::Manifest& manifest, const data::IndexList& samples,
                               const data::GroupIndex& groups, bool with_source) {
  TrainingGroups out;
  out.with_source = with_source;
  out.num_groups = with_source ? groups.num_groups_with_source() : groups.num_groups();
  out.ids = data::group_ids(manifest, samples, groups, with_source);
  out.sizes.assign(size_t(out.num_groups), 0);
  for (int id : out.ids) ++out.sizes[size_t(id)];
  return out;
}

std::shared_ptr<const data::Sampler> make_training_sampler(TrainingMethod method, const data::IndexList& samples,
                                                           const TrainingGroups& groups, int64_t batch_size,
                                                           uint64_t seed) {
  if (samples.empty()) throw InputError("no training samples (check the manifest's train split)");
  if (method == TrainingMethod::Resampling) {
    return std::make_shared<data::GroupBalancedSampler>(samples, groups.ids, batch_size, seed);
  }
  return std::make_shared<data::ShuffledSampler>(samples, batch_size, seed);
}

TrainingLoss::TrainingLoss(TrainingMethod method, const TrainingGroups& groups, Device device,
                           GroupDroOptions dro)
    : with_source_(groups.with_source) {
  if (method != TrainingMethod::GroupDRO) {
    config_.mode = GroupLoss::Mean;  // plain mean cross-entropy: no groups needed
    return;
  }
  config_.num_groups = groups.num_groups;
  config_.mode = GroupLoss::GroupDRO;
  config_.step_size = dro.step_size;
  config_.adjustment = dro.adjustment;
  // q starts uniform over the groups the training list holds. A group with no sample would never
  // be updated; giving it no weight keeps sum_k q_k L_k over groups that can carry a loss.
  const auto present = std::count_if(groups.sizes.begin(), groups.sizes.end(), [](int64_t n) { return n > 0; });
  std::vector<float> q(size_t(groups.num_groups), 0.0f), sizes(size_t(groups.num_groups), 1.0f);
  for (size_t k = 0; k < q.size(); ++k) {
    if (groups.sizes[k] > 0) q[k] = 1.0f / float(present);
    sizes[k] = float(std::max<int64_t>(1, groups.sizes[k]));  // C / sqrt(n_k) stays finite
  }
  q_ = Tensor::from_vector(q, {groups.num_groups}, DType::Float32, device);
  if (dro.adjustment != 0.0) config_.group_sizes = Tensor::from_vector(sizes, {groups.num_groups}, DType::Float32, device);
}

void TrainingLoss::load_group_weights(const Tensor& q) {
  if (!q_.defined()) throw InputError("saved GroupDRO weights given to a run whose method is not GroupDRO");
  if (!q.defined() || q.shape() != q_.shape()) {
    throw InputError(detail::concat("saved GroupDRO weights are ", q.defined() ? q.str() : "missing",
                                    ", the run has ", q_.numel(), " groups"));
  }
  q_.copy_(q);
}

Tensor TrainingLoss::operator()(const Tensor& logits, const Tensor& labels, const Tensor& group_ids) {
  if (config_.mode == GroupLoss::Mean) return group_weighted_cross_entropy(logits, labels, Tensor(), Tensor(), config_);
  return group_weighted_cross_entropy(logits, labels, group_ids, q_, config_);
}

}  // namespace ffr
