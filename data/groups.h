// Groups in the paper's sense: (y, b) pairs, and (y, b, g) when the source g (real/synthetic)
// is a group attribute too (USB and ASB with group-aware methods). Ids are dense over the
// groups a data set declares, so per-group kernels and tables have no holes.
#pragma once

#include "data/manifest.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ffr::data {

using IndexList = std::vector<int64_t>;    // indices into Manifest::samples
using GroupCounts = std::vector<int64_t>;  // one count per dense (y, b) group id

class GroupIndex {
 public:
  explicit GroupIndex(const DatasetInfo& info);

  int num_classes() const { return num_classes_; }
  int num_biases() const { return num_biases_; }
  int num_groups() const { return int(pairs_.size()); }              // (y, b)
  int num_groups_with_source() const { return 2 * num_groups(); }    // (y, b, g)

  // Dense id of (y, b) in declared order, or -1 when the pair is not declared.
  int group(int y, int b) const { return ids_[size_t(y) * num_biases_ + b]; }
  // (y, b, g) id = 2 * group(y, b) + g, with g = 0 for real, 1 for synthetic.
  int group_with_source(int y, int b, Source g) const { return 2 * group(y, b) + (g == Source::Synthetic); }
  int group_of(const Sample& s) const { return group(s.y, s.b); }

  std::pair<int, int> pair(int group) const { return pairs_[size_t(group)]; }
  // The groups of class y, in declared order.
  std::vector<int> groups_of_class(int y) const;

 private:
  int num_classes_;
  int num_biases_;
  std::vector<std::pair<int, int>> pairs_;
  std::vector<int> ids_;  // y * num_biases + b -> dense id or -1
};

// The samples of one split and source, in manifest order.
IndexList select_samples(const Manifest& manifest, Split split, Source source);

// How many of `indices` fall in each (y, b) group.
GroupCounts count_groups(const Manifest& manifest, const IndexList& indices, const GroupIndex& groups);

// Sum of the counts of each class.
std::vector<int64_t> count_per_class(const GroupCounts& counts, const GroupIndex& groups);

// The majority bias of each class: DatasetInfo::majority_bias when given, else the most frequent
// b among the class's real train samples (a tie goes to the group declared first).
std::vector<int> majority_bias(const Manifest& manifest, const GroupIndex& groups);

}  // namespace ffr::data
