// Evaluation of a classifier on one list of samples: per-group accuracy over the data set's
// (y, b) groups, WA and BA (FFR_PROTOCOL.md, "Metrics"), counted on the device by
// SubgroupAccuracy and read once at the end. Also the penultimate features DFR fits its head on.
#pragma once

#include "data/groups.h"
#include "data/loader.h"
#include "ffr/experiment.h"
#include "kernels/subgroup_accuracy.h"
#include "layers/classifier.h"

#include <cstdint>
#include <vector>

namespace ffr {

struct EvalOptions {
  Device device = Device::cpu();
  data::LoaderConfig loader;  // image size, workers, normalisation
  int64_t batch_size = 256;
};

// Runs `model` in eval mode (its training flag is restored after) over `samples` and returns the
// per-group table, WA, BA and plain accuracy. An empty list gives empty metrics (WA = BA = 0,
// no groups): a manifest without held-out synthetic images, say.
SplitMetrics evaluate(Classifier& model, const data::Manifest& manifest, const data::IndexList& samples,
                      const data::GroupIndex& groups, const EvalOptions& options);

// WA, BA and the per-group table from SubgroupAccuracy's summary over (y, b) groups.
SplitMetrics split_metrics(const SubgroupAccuracy::Summary& summary, const data::GroupIndex& groups);

// The penultimate features (Classifier::features) of `samples` in list order, as DFR and the
// t-SNE plots take them.
struct FeatureSet {
  Tensor features;               // [N, D] float32 on the CPU
  std::vector<int64_t> labels;   // y
  std::vector<int64_t> groups;   // (y, b) group id
  std::vector<int64_t> sources;  // g: 0 real, 1 synthetic
};
FeatureSet extract_features(Classifier& model, const data::Manifest& manifest, const data::IndexList& samples,
                            const data::GroupIndex& groups, const EvalOptions& options);

}  // namespace ffr
