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
