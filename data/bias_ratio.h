// Bias-ratio subsampling (FFR_PROTOCOL.md): inside each class the majority group is kept whole
// and minority samples are dropped at random until minority / (majority + minority) = 1 - r.
#pragma once

#include "data/groups.h"
#include "engine/rng.h"

namespace ffr::data {

// The group sizes subsampling leaves. Per class with majority size M, the minority groups keep
// T = round(M (1 - r) / r) samples in all, shared in proportion to their sizes (largest
// remainder, ties to the group declared first), each keeping at least
// min(min_per_group, its size). Floors win over T (validation's "at least 10 per group"), and a
// class already more biased than r keeps all it has. Deterministic: only *which* samples go is
// random, so the sizes (and the ratio arithmetic) can be checked without a seed.
GroupCounts bias_ratio_counts(const GroupCounts& counts, const GroupIndex& groups,
                              const std::vector<int>& majority_bias, double bias_ratio, int min_per_group);

// What subsampling one split to bias ratio r gives, from its group counts alone (no seed needed):
// the achieved majority share and the lowest ratio the split can express. Subsampling only drops
// minority samples, so a class keeps its majority share at M / (M + all its minority) or above.
struct BiasRatioOutcome {
  double achieved = 0.0;            // majority share of the kept samples, all classes together
  double lowest_expressible = 0.0;  // the largest over classes of M / (M + all minority): r below it cannot be met
  int limiting_class = -1;          // the class giving lowest_expressible
  int64_t limiting_majority = 0, limiting_minority = 0;  // that class's counts
  bool minority_short = false;      // some class has fewer minority samples than r asks (keeps them all)
  bool floors_bind = false;         // some class keeps more minority than r asks (min_per_group)
};
BiasRatioOutcome bias_ratio_outcome(const GroupCounts& counts, const GroupIndex& groups,
                                    const std::vector<int>& majority_bias, double bias_ratio, int min_per_group);

// How far above the asked ratio a split's achieved majority share may lie because the split lacks
// minority samples: beyond it the ratio is refused (protocol.h). It absorbs a data set's own
// rounding (1805 of 2005 is "0.9"); 0.5 asked of data at 0.9 is refused.
inline constexpr double kBiasRatioTolerance = 0.001;

// Keeps, in each group, a seeded random subset of the size bias_ratio_counts gives. Returns the
// kept indices in manifest order. Throws ffr::InputError when bias_ratio is not in (0, 1).
IndexList subsample_to_bias_ratio(const Manifest& manifest, const IndexList& indices, const GroupIndex& groups,
                                  const std::vector<int>& majority_bias, double bias_ratio, int min_per_group,
                                  Rng& rng);

// Keeps `wanted[g]` samples of each group, chosen at random without replacement; returns them in
// manifest order. Throws ffr::InputError (naming `what` and the group) when a group is short.
IndexList choose_per_group(const Manifest& manifest, const IndexList& indices, const GroupIndex& groups,
                           const GroupCounts& wanted, Rng& rng, const std::string& what);

}  // namespace ffr::data
