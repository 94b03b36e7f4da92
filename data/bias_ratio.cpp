#include "data/bias_ratio.h"

#include "data/apportion.h"

#include "engine/error.h"

#include <algorithm>
#include <cmath>

namespace ffr::data {

namespace {

void check_ratio(double bias_ratio) {
  if (!(bias_ratio > 0.0 && bias_ratio < 1.0)) {
    throw InputError(detail::concat("bias ratio must be in (0, 1), got ", bias_ratio));
  }
}

// The minority samples class keeps at ratio r beside m majority ones: round(m (1 - r) / r).
// The 1e-9 keeps exact products such as 900 * 0.1 / 0.9 = 100 from rounding the wrong way.
int64_t minority_target(int64_t m, double bias_ratio) {
  return int64_t(std::floor(double(m) * (1.0 - bias_ratio) / bias_ratio + 0.5 + 1e-9));
}

}  // namespace

GroupCounts bias_ratio_counts(const GroupCounts& counts, const GroupIndex& groups,
                              const std::vector<int>& majority_bias, double bias_ratio, int min_per_group) {
  check_ratio(bias_ratio);
  FFR_CHECK(int(counts.size()) == groups.num_groups(), "bias_ratio_counts: counts for ", counts.size(),
            " groups, expected ", groups.num_groups());
  GroupCounts kept = counts;
  for (int y = 0; y < groups.num_classes(); ++y) {
    const int majority = groups.group(y, majority_bias[size_t(y)]);
    FFR_CHECK(majority >= 0, "bias_ratio_counts: class ", y, "'s majority group is not declared");
    const int64_t m = counts[size_t(majority)];
    std::vector<int> minority;
    for (int g : groups.groups_of_class(y)) {
      if (g != majority) minority.push_back(g);
    }
    const int64_t target = minority_target(m, bias_ratio);

    int64_t available = 0, floors = 0;
    std::vector<int64_t> spare;  // what each minority group has beyond its floor
    for (int g : minority) {
      const int64_t n = counts[size_t(g)];
      const int64_t floor_g = std::min<int64_t>(std::max(min_per_group, 0), n);
      available += n;
      floors += floor_g;
      spare.push_back(n - floor_g);
    }
    if (available <= target) continue;  // already at least as biased as asked: keep everything
    const std::vector<int64_t> extra = share_in_proportion(std::max<int64_t>(target - floors, 0), spare);
    for (size_t k = 0; k < minority.size(); ++k) {
      const int g = minority[k];
      kept[size_t(g)] = counts[size_t(g)] - spare[k] + extra[k];
    }
  }
  return kept;
}

BiasRatioOutcome bias_ratio_outcome(const GroupCounts& counts, const GroupIndex& groups,
                                    const std::vector<int>& majority_bias, double bias_ratio, int min_per_group) {
  const GroupCounts kept = bias_ratio_counts(counts, groups, majority_bias, bias_ratio, min_per_group);
  BiasRatioOutcome out;
  int64_t kept_majority = 0, kept_all = 0;
  for (int y = 0; y < groups.num_classes(); ++y) {
    const int majority = groups.group(y, majority_bias[size_t(y)]);
    const int64_t m = counts[size_t(majority)];
    int64_t available = 0, kept_minority = 0;
    for (int g : groups.groups_of_class(y)) {
      if (g == majority) continue;
      available += counts[size_t(g)];
      kept_minority += kept[size_t(g)];
    }
    kept_majority += m;
    kept_all += m + kept_minority;
    if (m + available == 0) continue;  // a class absent from the split constrains nothing
    const double lowest = double(m) / double(m + available);
    if (out.limiting_class < 0 || lowest > out.lowest_expressible) {
      out.lowest_expressible = lowest;
      out.limiting_class = y;
      out.limiting_majority = m;
      out.limiting_minority = available;
    }
    const int64_t target = minority_target(m, bias_ratio);
    if (kept_minority < target) out.minority_short = true;
    if (kept_minority > target) out.floors_bind = true;
  }
  out.achieved = kept_all > 0 ? double(kept_majority) / double(kept_all) : 0.0;
  return out;
}

IndexList choose_per_group(const Manifest& manifest, const IndexList& indices, const GroupIndex& groups,
                           const GroupCounts& wanted, Rng& rng, const std::string& what) {
  std::vector<IndexList> members(size_t(groups.num_groups()));
  for (int64_t i : indices) members[size_t(groups.group_of(manifest.samples[size_t(i)]))].push_back(i);
  IndexList out;
  for (int g = 0; g < groups.num_groups(); ++g) {
    IndexList& m = members[size_t(g)];
    const int64_t want = wanted[size_t(g)];
    if (want > int64_t(m.size())) {
      const auto [y, b] = groups.pair(g);
      throw InputError(detail::concat(manifest.csv_path.string(), ": ", what, " needs ", want,
                                      " samples of group (y=", y, " ", manifest.info.class_names[size_t(y)],
                                      ", b=", b, " ", manifest.info.bias_names[size_t(b)], "), the manifest has ",
                                      m.size()));
    }
    move_random_subset_to_front(m, want, rng);
    out.insert(out.end(), m.begin(), m.begin() + want);
  }
  std::sort(out.begin(), out.end());
  return out;
}

IndexList subsample_to_bias_ratio(const Manifest& manifest, const IndexList& indices, const GroupIndex& groups,
                                  const std::vector<int>& majority_bias, double bias_ratio, int min_per_group,
                                  Rng& rng) {
  const GroupCounts counts = count_groups(manifest, indices, groups);
  const GroupCounts kept = bias_ratio_counts(counts, groups, majority_bias, bias_ratio, min_per_group);
  return choose_per_group(manifest, indices, groups, kept, rng, "bias-ratio subsampling");
}

}  // namespace ffr::data
