#include "data/groups.h"

#include "engine/error.h"

namespace ffr::data {

GroupIndex::GroupIndex(const DatasetInfo& info)
    : num_classes_(info.num_classes()),
      num_biases_(info.num_biases()),
      pairs_(info.groups),
      ids_(size_t(info.num_classes()) * info.num_biases(), -1) {
  for (size_t g = 0; g < pairs_.size(); ++g) {
    const auto [y, b] = pairs_[g];
    FFR_CHECK(y >= 0 && y < num_classes_ && b >= 0 && b < num_biases_, "GroupIndex: group (", y, ", ", b,
              ") outside the label ranges");
    ids_[size_t(y) * num_biases_ + b] = int(g);
  }
}

std::vector<int> GroupIndex::groups_of_class(int y) const {
  std::vector<int> out;
  for (size_t g = 0; g < pairs_.size(); ++g) {
    if (pairs_[g].first == y) out.push_back(int(g));
  }
  return out;
}

IndexList select_samples(const Manifest& manifest, Split split, Source source) {
  IndexList out;
  for (size_t i = 0; i < manifest.samples.size(); ++i) {
    const Sample& s = manifest.samples[i];
    if (s.split == split && s.source == source) out.push_back(int64_t(i));
  }
  return out;
}

GroupCounts count_groups(const Manifest& manifest, const IndexList& indices, const GroupIndex& groups) {
  GroupCounts counts(size_t(groups.num_groups()), 0);
  for (int64_t i : indices) {
    const int g = groups.group_of(manifest.samples[size_t(i)]);
    FFR_CHECK(g >= 0, "count_groups: sample ", i, " is in an undeclared group");
    ++counts[size_t(g)];
  }
  return counts;
}

std::vector<int64_t> count_per_class(const GroupCounts& counts, const GroupIndex& groups) {
  std::vector<int64_t> per_class(size_t(groups.num_classes()), 0);
  for (int g = 0; g < groups.num_groups(); ++g) per_class[size_t(groups.pair(g).first)] += counts[size_t(g)];
  return per_class;
}

std::vector<int> majority_bias(const Manifest& manifest, const GroupIndex& groups) {
  if (!manifest.info.majority_bias.empty()) return manifest.info.majority_bias;
  const GroupCounts counts = count_groups(manifest, select_samples(manifest, Split::Train, Source::Real), groups);
  std::vector<int> majority(size_t(groups.num_classes()), -1);
  for (int y = 0; y < groups.num_classes(); ++y) {
    int64_t best = -1;
    for (int g : groups.groups_of_class(y)) {
      if (counts[size_t(g)] > best) {  // strict: a tie keeps the group declared first
        best = counts[size_t(g)];
        majority[size_t(y)] = groups.pair(g).second;
      }
    }
    if (majority[size_t(y)] < 0) {
      throw InputError(detail::concat(manifest.csv_path.string(), ": class ", y, " (",
                                      manifest.info.class_names[size_t(y)], ") has no declared group"));
    }
  }
  return majority;
}

}  // namespace ffr::data
