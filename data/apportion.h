// Two small exact tools the protocol functions share: sharing an integer total in proportion
// (so per-group counts always sum to the promised total) and choosing a seeded random subset.
#pragma once

#include "engine/rng.h"

#include <cstdint>
#include <vector>

namespace ffr::data {

// Shares `total` over `weights` in proportion with Hamilton's largest-remainder method: the parts
// sum exactly to `total` (when some weight is positive); equal remainders go to the earlier entry.
std::vector<int64_t> share_in_proportion(int64_t total, const std::vector<int64_t>& weights);

// Reorders `items` so its first `count` entries are a uniform random subset (a partial
// Fisher-Yates shuffle driven by `rng`, so the same seed picks the same subset everywhere).
void move_random_subset_to_front(std::vector<int64_t>& items, int64_t count, Rng& rng);

}  // namespace ffr::data
