// How a configuration becomes training stages (FFR_PROTOCOL.md and the paper's Table 1):
//
//   augmentation  stages          runs
//   none/usb/asb  full            "train": splits.train with the method
//   ffr           full            "stage 1": splits.pretrain (synthetic), ERM, stage-1 lr/epochs;
//                                 "stage 2": splits.train (real), the method, from stage 1's best
//                                 weights, BN frozen if configured
//   ffr           stage1          "stage 1" only (ERM; DFR may refit the head after)
//   ffr           stage2          "stage 2" only, from scratch (BN never frozen: nothing to keep)
//   ffr           stage2-then-1   "stage 2" (real, the method), then "stage 1" (synthetic, ERM)
//                                 from its best weights, BN frozen if configured
//
// The method's groups are (y, b, g) for group-aware methods under USB/ASB and (y, b) otherwise.
// DFR trains as ERM; run_experiment refits the head on the validation features after the last
// stage. One seed drives every stage (each stage's sampler takes its own stream of it).
#pragma once

#include "data/protocol.h"
#include "ffr/experiment.h"
#include "ffr/trainer.h"

#include <vector>

namespace ffr {

// Throws InputError naming the field for a configuration that cannot run (before any work).
void validate_config(const ExperimentConfig& config);

std::vector<StagePlan> plan_stages(const ExperimentConfig& config, const data::Manifest& manifest,
                                   const data::ExperimentSplits& splits);

// config.max_train_samples: keeps at most `cap` of `samples`, shared over the (y, b, g) groups in
// proportion to their sizes (every non-empty group keeps at least one, so the cap may be exceeded
// by up to the number of groups), chosen at random with `seed`. Returned in manifest order.
data::IndexList cap_samples(const data::Manifest& manifest, const data::IndexList& samples,
                            const data::GroupIndex& groups, int64_t cap, uint64_t seed);

}  // namespace ffr
