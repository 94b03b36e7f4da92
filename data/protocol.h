// The FFR protocol's data rules in one place: which samples each split and each way of using
// synthetic data gets, for one (bias ratio, augmentation, seed). The trainer calls
// make_experiment_splits once per run; `ffr-bench inspect` prints the same thing.
#pragma once

#include "data/bias_ratio.h"
#include "data/groups.h"

#include <string>
#include <vector>

namespace ffr::data {

enum class Augmentation { None, USB, ASB, FFR };

const char* augmentation_name(Augmentation a);      // "none", "usb", "asb", "ffr"
Augmentation parse_augmentation(const std::string& name);  // throws ffr::InputError

// The shape of the synthetic set (FFR's stage 1 for the paper's Tables 2 and 5; USB/ASB accept
// BiasAgnostic too).
enum class SyntheticDistribution {
  Balanced,      // per (y, b) group, as USB/ASB/FFR define it
  Biased,        // FFR only: stage-1 groups follow the real bias, same total (Table 2)
  BiasAgnostic,  // per class only, b ignored, same per-class totals (Table 5)
};

struct ProtocolConfig {
  double bias_ratio = 0.99;
  Augmentation augmentation = Augmentation::None;
  SyntheticDistribution synthetic = SyntheticDistribution::Balanced;
  uint64_t seed = 0;
  // A group left with no real train sample cannot be resampled or reweighted, so train keeps one.
  int train_min_per_group = 1;
  int val_min_per_group = 10;  // the protocol's "at least 10 per group"
};

struct ExperimentSplits {
  IndexList train;           // None/USB/ASB: the training set; FFR: stage 2 (real only)
  IndexList pretrain;        // FFR: stage 1 (synthetic only); empty otherwise
  IndexList val;             // real, biased like train, >= val_min_per_group per group
  IndexList test;            // real, never subsampled
  IndexList val_synthetic;   // held-out synthetic (the paper's Table 3), untouched
  IndexList test_synthetic;
  std::vector<int> majority_bias;  // per class, as used for subsampling
  // What the bias ratio gave the real train and val splits (achieved majority shares), and
  // warnings for the user: the real train split's share is not the asked ratio up to whole samples
  // (a floor of one sample per group, or a shortage within kBiasRatioTolerance). Val's floor of
  // val_min_per_group is the protocol's own rule and is recorded only.
  BiasRatioOutcome train_bias_ratio, val_bias_ratio;
  std::vector<std::string> warnings;
};

// Applies the protocol to a manifest. Deterministic in (manifest, config); the seed drives
// every random choice through its own Philox stream, so the same seed links stage 1 and 2.
// Throws ffr::InputError when the manifest lacks the synthetic samples a mode needs, or when the
// real train or val split cannot express the bias ratio (its majority share stays above
// config.bias_ratio + kBiasRatioTolerance however many minority samples are dropped), naming both.
ExperimentSplits make_experiment_splits(const Manifest& manifest, const ProtocolConfig& config);

// Real and synthetic counts per (y, b) group of one named part of an experiment.
struct SplitGroupCounts {
  std::string name;  // "train", "pretrain (FFR stage 1)", "val", "test"
  GroupCounts real;
  GroupCounts synthetic;
};

// One row per part of `splits` that holds samples (train, pretrain, val, test).
std::vector<SplitGroupCounts> protocol_group_counts(const Manifest& manifest, const ExperimentSplits& splits,
                                                    const GroupIndex& groups);

}  // namespace ffr::data
