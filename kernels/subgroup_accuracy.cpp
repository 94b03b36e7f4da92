#include "kernels/subgroup_accuracy.h"

#include "engine/error.h"
#include "engine/nvtx.h"
#include "kernels/dispatch.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ffr {

// ---- CPU reference ----

void subgroup_accuracy_cpu(const void* logits, DType dtype, const int64_t* labels, const int64_t* groups,
                           int64_t rows, int64_t classes, int64_t num_groups, int64_t* counts) {
  dispatch_cpu_floating(dtype, "subgroup_accuracy", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* x = static_cast<const T*>(logits);
    for (int64_t i = 0; i < rows; ++i) {
      const T* row = x + i * classes;
      // A left-to-right scan: j > best always, so argmax_better reduces to "larger, or the first NaN".
      int64_t best = 0;
      T best_value = row[0];
      for (int64_t j = 1; j < classes; ++j) {
        const T v = row[j];
        if (v > best_value || (v != v && best_value == best_value)) {
          best = j;
          best_value = v;
        }
      }
      const int64_t y = labels[i], g = groups[i];
      if (g < 0 || g >= num_groups || y < 0 || y >= classes) {
        counts[2 * num_groups] += 1;
        continue;
      }
      counts[g] += best == y ? 1 : 0;
      counts[num_groups + g] += 1;
    }
  });
}

// ---- the accumulator ----

SubgroupAccuracy::SubgroupAccuracy(int64_t num_groups, Device device, std::vector<bool> declared)
    : num_groups_(num_groups), declared_(std::move(declared)) {
  FFR_CHECK(num_groups >= 1, "subgroup accuracy needs at least one group, got ", num_groups);
  if (declared_.empty()) declared_.assign(size_t(num_groups), true);
  FFR_CHECK(int64_t(declared_.size()) == num_groups, declared_.size(), " declared flags for ", num_groups, " groups");
  counts_ = Tensor::zeros({2 * num_groups + 1}, DType::Int64, device);
}

void SubgroupAccuracy::reset() { counts_.zero_(); }

void SubgroupAccuracy::update(const Tensor& logits, const Tensor& labels, const Tensor& groups) {
  OpScope scope("subgroup_accuracy(logits " + logits.str() + ", labels " + labels.str() + ", groups " +
                groups.str() + ", G=" + std::to_string(num_groups_) + ")");
  NvtxRange range("subgroup_accuracy");
  FFR_CHECK(logits.ndim() == 2 && logits.size(1) >= 1, "logits must be [N, C] with C >= 1, got ", logits.str());
  const int64_t n = logits.size(0), c = logits.size(1);
  const Device device = counts_.device();
  FFR_CHECK(logits.device() == device, "logits on ", logits.device().str(), ", the accumulator on ", device.str());
  for (const Tensor* t : {&labels, &groups}) {
    FFR_CHECK(t->defined() && t->dtype() == DType::Int64 && t->shape() == Shape{n} && t->device() == device,
              "labels and groups must be int64 [", n, "] on ", device.str(), ", got ", t->str());
  }
  if (n == 0) return;
#ifdef FFR_WITH_CUDA
  if (device.is_cuda()) {
    subgroup_accuracy_cuda(logits.raw_data(), logits.dtype(), labels.data<int64_t>(), groups.data<int64_t>(), n, c,
                           num_groups_, counts_.data<int64_t>());
    return;
  }
#endif
  subgroup_accuracy_cpu(logits.raw_data(), logits.dtype(), labels.data<int64_t>(), groups.data<int64_t>(), n, c,
                        num_groups_, counts_.data<int64_t>());
}

SubgroupAccuracy::Counts SubgroupAccuracy::counts() const {
  const std::vector<int64_t> all = counts_.to_vector<int64_t>();  // the one host read
  const int64_t invalid = all[size_t(2 * num_groups_)];
  if (invalid > 0) {
    throw InputError("subgroup accuracy: " + std::to_string(invalid) + " samples had a label outside [0, C) or a " +
                     "group id outside [0, " + std::to_string(num_groups_) + ")");
  }
  Counts c;
  c.correct.assign(all.begin(), all.begin() + num_groups_);
  c.total.assign(all.begin() + num_groups_, all.begin() + 2 * num_groups_);
  return c;
}

SubgroupAccuracy::Summary SubgroupAccuracy::summary() const {
  Summary s;
  s.counts = counts();
  const double nan = std::numeric_limits<double>::quiet_NaN();
  s.accuracy.assign(size_t(num_groups_), nan);
  double worst = std::numeric_limits<double>::infinity(), total = 0.0;
  int64_t seen = 0;
  for (size_t k = 0; k < size_t(num_groups_); ++k) {
    if (s.counts.total[k] == 0) continue;
    s.accuracy[k] = double(s.counts.correct[k]) / double(s.counts.total[k]);
    if (!declared_[k]) continue;
    worst = std::min(worst, s.accuracy[k]);
    total += s.accuracy[k];
    seen += 1;
  }
  s.worst_group_accuracy = seen > 0 ? worst : nan;
  s.balanced_accuracy = seen > 0 ? total / double(seen) : nan;
  return s;
}

}  // namespace ffr
