#include "ffr/evaluation.h"

#include "data/device_loader.h"
#include "engine/autograd.h"
#include "kernels/concat.h"

#include <cmath>
#include <tuple>

namespace ffr {

namespace {

// Puts the model in eval mode for a scope and restores its training flag after.
class EvalModeScope {
 public:
  explicit EvalModeScope(Classifier& model) : model_(model), was_training_(model.is_training()) { model_.eval(); }
  ~EvalModeScope() { model_.train(was_training_); }
  EvalModeScope(const EvalModeScope&) = delete;
  EvalModeScope& operator=(const EvalModeScope&) = delete;

 private:
  Classifier& model_;
  bool was_training_;
};

data::DeviceLoader sequential_loader(const data::Manifest& manifest, const data::IndexList& samples,
                                     const EvalOptions& options) {
  auto sampler = std::make_shared<data::SequentialSampler>(samples, options.batch_size);
  return data::DeviceLoader(manifest, sampler, options.loader, options.device);
}

}  // namespace

SplitMetrics split_metrics(const SubgroupAccuracy::Summary& summary, const data::GroupIndex& groups) {
  SplitMetrics m;
  int64_t correct = 0, total = 0;
  for (int g = 0; g < groups.num_groups(); ++g) {
    GroupAccuracy a;
    std::tie(a.y, a.b) = groups.pair(g);
    a.correct = summary.counts.correct[size_t(g)];
    a.total = summary.counts.total[size_t(g)];
    correct += a.correct;
    total += a.total;
    m.groups.push_back(a);
  }
  m.worst_group_accuracy = summary.worst_group_accuracy;
  m.balanced_accuracy = summary.balanced_accuracy;
  m.average_accuracy = total > 0 ? double(correct) / double(total) : std::nan("");
  return m;
}

SplitMetrics evaluate(Classifier& model, const data::Manifest& manifest, const data::IndexList& samples,
                      const data::GroupIndex& groups, const EvalOptions& options) {
  if (samples.empty()) return {};
  EvalModeScope eval_mode(model);
  NoGradGuard no_grad;
  SubgroupAccuracy accuracy(groups.num_groups(), options.device);
  data::DeviceLoader loader = sequential_loader(manifest, samples, options);
  while (auto batch = loader.next()) accuracy.update(model.forward(batch->images), batch->y, batch->group);
  return split_metrics(accuracy.summary(), groups);
}

FeatureSet extract_features(Classifier& model, const data::Manifest& manifest, const data::IndexList& samples,
                            const data::GroupIndex& groups, const EvalOptions& options) {
  FeatureSet out;
  if (samples.empty()) {
    out.features = Tensor::zeros({0, model.feature_dim()});
    return out;
  }
  EvalModeScope eval_mode(model);
  NoGradGuard no_grad;
  std::vector<Tensor> parts;
  data::DeviceLoader loader = sequential_loader(manifest, samples, options);
  while (auto batch = loader.next()) {
    parts.push_back(model.features(batch->images).to(DType::Float32).cpu());
    const int64_t* index = batch->index.data<int64_t>();  // stays on the CPU
    for (int64_t k = 0; k < batch->size; ++k) {
      const data::Sample& s = manifest.samples[size_t(index[k])];
      out.labels.push_back(s.y);
      out.groups.push_back(groups.group_of(s));
      out.sources.push_back(s.source == data::Source::Synthetic ? 1 : 0);
    }
  }
  out.features = parts.size() == 1 ? parts[0] : concat(parts, 0);
  return out;
}

}  // namespace ffr
