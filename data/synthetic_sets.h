// How many synthetic samples each way of using them takes (FFR_PROTOCOL.md, "augmentation
// mode"). All are functions of the real train group sizes only, and USB, ASB and FFR always
// take the same total, which is what makes the paper's comparison fair.
#pragma once

#include "data/groups.h"
#include "engine/rng.h"

namespace ffr::data {

// USB: fill every group up to the size of the largest real group.
GroupCounts usb_synthetic_counts(const GroupCounts& real_train);

// ASB: the same n in every group, n = USB total / number of groups. When the division is not
// exact, the first (total mod groups) groups take one more, so the total still equals USB's.
GroupCounts asb_synthetic_counts(const GroupCounts& real_train);

// FFR stage 1: the balanced synthetic set, the same n per group as ASB.
GroupCounts ffr_pretrain_counts(const GroupCounts& real_train);

// FFR with biased pretraining (the paper's Table 2): USB's total, shared over the groups in
// proportion to the real train groups (largest remainder), so the synthetic set follows the
// real bias.
GroupCounts biased_pretrain_counts(const GroupCounts& real_train);

int64_t total(const GroupCounts& counts);

// Seeded choice of wanted_per_class[y] synthetic samples of each class from `pool`, ignoring b:
// the bias-agnostic synthetic data of the paper's Table 5 (generated per class only). Returns
// indices in manifest order; throws ffr::InputError when a class is short.
IndexList choose_per_class(const Manifest& manifest, const IndexList& pool, const GroupIndex& groups,
                           const std::vector<int64_t>& wanted_per_class, Rng& rng, const std::string& what);

// Per group, the most synthetic train samples any of USB, ASB, FFR or biased pretraining takes at
// any of `bias_ratios`, when the real train split of sizes `real_train_full` is subsampled with
// bias_ratio_counts. A data set with at least this many per group supports all of them.
GroupCounts synthetic_requirement(const GroupCounts& real_train_full, const GroupIndex& groups,
                                  const std::vector<int>& majority_bias, const std::vector<double>& bias_ratios,
                                  int min_per_group);

}  // namespace ffr::data
