#include "data/synthetic_sets.h"

#include "data/apportion.h"
#include "data/bias_ratio.h"
#include "engine/error.h"

#include <algorithm>
#include <cmath>

namespace ffr::data {

int64_t total(const GroupCounts& counts) {
  int64_t sum = 0;
  for (int64_t c : counts) sum += c;
  return sum;
}

GroupCounts usb_synthetic_counts(const GroupCounts& real_train) {
  const int64_t largest = real_train.empty() ? 0 : *std::max_element(real_train.begin(), real_train.end());
  GroupCounts add(real_train.size());
  for (size_t g = 0; g < real_train.size(); ++g) add[g] = largest - real_train[g];
  return add;
}

GroupCounts asb_synthetic_counts(const GroupCounts& real_train) {
  const int64_t usb_total = total(usb_synthetic_counts(real_train));
  const int64_t groups = int64_t(real_train.size());
  GroupCounts add(real_train.size(), groups ? usb_total / groups : 0);
  for (int64_t g = 0; g < (groups ? usb_total % groups : 0); ++g) ++add[size_t(g)];
  return add;
}

GroupCounts ffr_pretrain_counts(const GroupCounts& real_train) { return asb_synthetic_counts(real_train); }

GroupCounts biased_pretrain_counts(const GroupCounts& real_train) {
  const int64_t usb_total = total(usb_synthetic_counts(real_train));
  // Apportioned like the real groups, so the synthetic set carries the real bias.
  return share_in_proportion(usb_total, real_train);
}

IndexList choose_per_class(const Manifest& manifest, const IndexList& pool, const GroupIndex& groups,
                           const std::vector<int64_t>& wanted_per_class, Rng& rng, const std::string& what) {
  std::vector<IndexList> members(size_t(groups.num_classes()));
  for (int64_t i : pool) members[size_t(manifest.samples[size_t(i)].y)].push_back(i);
  IndexList out;
  for (int y = 0; y < groups.num_classes(); ++y) {
    IndexList& m = members[size_t(y)];
    const int64_t want = wanted_per_class[size_t(y)];
    if (want > int64_t(m.size())) {
      throw InputError(detail::concat(manifest.csv_path.string(), ": ", what, " needs ", want,
                                      " synthetic samples of class ", y, " (", manifest.info.class_names[size_t(y)],
                                      "), the manifest has ", m.size()));
    }
    move_random_subset_to_front(m, want, rng);
    out.insert(out.end(), m.begin(), m.begin() + want);
  }
  std::sort(out.begin(), out.end());
  return out;
}

GroupCounts synthetic_requirement(const GroupCounts& real_train_full, const GroupIndex& groups,
                                  const std::vector<int>& majority_bias, const std::vector<double>& bias_ratios,
                                  int min_per_group) {
  GroupCounts need(real_train_full.size(), 0);
  for (double r : bias_ratios) {
    const GroupCounts real = bias_ratio_counts(real_train_full, groups, majority_bias, r, min_per_group);
    for (const GroupCounts& c : {usb_synthetic_counts(real), asb_synthetic_counts(real), biased_pretrain_counts(real)}) {
      for (size_t g = 0; g < need.size(); ++g) need[g] = std::max(need[g], c[g]);
    }
  }
  return need;
}

}  // namespace ffr::data
