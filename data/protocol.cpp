#include "data/protocol.h"

#include "data/bias_ratio.h"
#include "data/synthetic_sets.h"
#include "engine/error.h"
#include "engine/rng.h"

#include <algorithm>
#include <cstdio>
#include <iterator>

namespace ffr::data {

namespace {

// One Philox stream per random decision, so changing one never shifts another.
enum Stream : uint64_t { kTrainSubsample = 101, kValSubsample = 102, kSyntheticChoice = 103 };

IndexList merged(const IndexList& a, const IndexList& b) {
  IndexList out;
  std::merge(a.begin(), a.end(), b.begin(), b.end(), std::back_inserter(out));
  return out;
}

std::string describe(const ProtocolConfig& config) {
  return detail::concat(augmentation_name(config.augmentation), " at bias ratio ", config.bias_ratio);
}

// Synthetic samples of one split and prompt kind.
IndexList synthetic_samples(const Manifest& manifest, Split split, PromptKind kind) {
  IndexList out;
  for (int64_t i : select_samples(manifest, split, Source::Synthetic)) {
    if (manifest.samples[size_t(i)].prompt_kind == kind) out.push_back(i);
  }
  return out;
}

std::string share_text(double share) {
  char text[32];
  std::snprintf(text, sizeof text, "%.4f", share);
  return text;
}

// The outcome of subsampling `split`'s real samples to the config's ratio; refuses a ratio the
// split cannot express (subsampling only drops minority samples, so it can never make a split less
// biased than it is) rather than train at the data's ratio under the asked one's name.
BiasRatioOutcome checked_outcome(const Manifest& manifest, const GroupIndex& groups, const IndexList& split,
                                 const std::vector<int>& majority, const ProtocolConfig& config, int min_per_group,
                                 const char* name) {
  const BiasRatioOutcome o = bias_ratio_outcome(count_groups(manifest, split, groups), groups, majority,
                                                config.bias_ratio, min_per_group);
  if (o.lowest_expressible > config.bias_ratio + kBiasRatioTolerance) {
    throw InputError(detail::concat(
        manifest.csv_path.string(), ": bias ratio ", config.bias_ratio, " is below what its real ", name,
        " split can express: class ", o.limiting_class, " '", manifest.info.class_names[size_t(o.limiting_class)],
        "' has ", o.limiting_majority, " majority and only ", o.limiting_minority,
        " minority samples, so its majority share cannot go below ", share_text(o.lowest_expressible),
        " (subsampling only drops minority samples); use a ratio >= ", share_text(o.lowest_expressible),
        ", or prepare the data at a lower ratio"));
  }
  return o;
}

}  // namespace

const char* augmentation_name(Augmentation a) {
  switch (a) {
    case Augmentation::None: return "none";
    case Augmentation::USB: return "usb";
    case Augmentation::ASB: return "asb";
    case Augmentation::FFR: return "ffr";
  }
  return "?";
}

Augmentation parse_augmentation(const std::string& name) {
  for (Augmentation a : {Augmentation::None, Augmentation::USB, Augmentation::ASB, Augmentation::FFR}) {
    if (name == augmentation_name(a)) return a;
  }
  throw InputError(detail::concat("unknown augmentation '", name, "' (expected none, usb, asb or ffr)"));
}

ExperimentSplits make_experiment_splits(const Manifest& manifest, const ProtocolConfig& config) {
  const GroupIndex groups(manifest.info);
  ExperimentSplits out;
  out.majority_bias = majority_bias(manifest, groups);
  const IndexList all_train = select_samples(manifest, Split::Train, Source::Real);
  const IndexList all_val = select_samples(manifest, Split::Val, Source::Real);
  out.train_bias_ratio = checked_outcome(manifest, groups, all_train, out.majority_bias, config,
                                         config.train_min_per_group, "train");
  out.val_bias_ratio = checked_outcome(manifest, groups, all_val, out.majority_bias, config,
                                       config.val_min_per_group, "val");
  const BiasRatioOutcome& t = out.train_bias_ratio;
  if (t.floors_bind || t.minority_short) {
    out.warnings.push_back(detail::concat(
        "bias ratio ", config.bias_ratio, ": ", manifest.csv_path.string(),
        "'s real train split trains at a majority share of ", share_text(t.achieved),
        t.floors_bind ? detail::concat(" (every group keeps at least ", config.train_min_per_group,
                                       " sample(s): too few majority samples to express 1 - r = ",
                                       1.0 - config.bias_ratio, ")")
                      : std::string(" (a class keeps all its minority samples and still has fewer than r asks)")));
  }

  Rng train_rng(config.seed, kTrainSubsample);
  const IndexList real_train =
      subsample_to_bias_ratio(manifest, all_train, groups,
                              out.majority_bias, config.bias_ratio, config.train_min_per_group, train_rng);
  Rng val_rng(config.seed, kValSubsample);
  out.val = subsample_to_bias_ratio(manifest, all_val, groups,
                                    out.majority_bias, config.bias_ratio, config.val_min_per_group, val_rng);
  out.test = select_samples(manifest, Split::Test, Source::Real);
  // Held-out synthetic images as USB/ASB/FFR's own (bias-aware) data: Table 3's.
  out.val_synthetic = synthetic_samples(manifest, Split::Val, PromptKind::Aware);
  out.test_synthetic = synthetic_samples(manifest, Split::Test, PromptKind::Aware);

  if (config.augmentation == Augmentation::None) {
    out.train = real_train;
    return out;
  }
  if (config.synthetic == SyntheticDistribution::Biased && config.augmentation != Augmentation::FFR) {
    throw InputError("biased synthetic pretraining applies to FFR only");
  }

  const GroupCounts real_counts = count_groups(manifest, real_train, groups);
  GroupCounts wanted;
  switch (config.augmentation) {
    case Augmentation::USB: wanted = usb_synthetic_counts(real_counts); break;
    case Augmentation::ASB: wanted = asb_synthetic_counts(real_counts); break;
    case Augmentation::FFR:
      wanted = config.synthetic == SyntheticDistribution::Biased ? biased_pretrain_counts(real_counts)
                                                                 : ffr_pretrain_counts(real_counts);
      break;
    case Augmentation::None: break;
  }

  // Table 5's bias-agnostic data is its own pool, generated from class-only prompts: the
  // bias-aware images with their b ignored would still be balanced over b, which is what the
  // paper shows class-only prompts do not give.
  const bool agnostic = config.synthetic == SyntheticDistribution::BiasAgnostic;
  const IndexList pool =
      synthetic_samples(manifest, Split::Train, agnostic ? PromptKind::Agnostic : PromptKind::Aware);
  if (agnostic && pool.empty()) {
    throw InputError(detail::concat(
        manifest.csv_path.string(), ": bias-agnostic synthetic data (--synthetic agnostic, Table 5) needs its own pool: ",
        "synthetic train images generated from class-only prompts, marked prompt_kind=agnostic; this manifest has none ",
        "(`ffr-bench prepare` renders them for the built-in data set; rebuild an older one with --force)"));
  }
  Rng synthetic_rng(config.seed, kSyntheticChoice);
  const IndexList synthetic =
      config.synthetic == SyntheticDistribution::BiasAgnostic
          ? choose_per_class(manifest, pool, groups, count_per_class(wanted, groups), synthetic_rng, describe(config))
          : choose_per_group(manifest, pool, groups, wanted, synthetic_rng, describe(config));

  if (config.augmentation == Augmentation::FFR) {
    out.pretrain = synthetic;  // stage 1 never sees a real image, stage 2 never a synthetic one
    out.train = real_train;
  } else {
    out.train = merged(real_train, synthetic);
  }
  return out;
}

std::vector<SplitGroupCounts> protocol_group_counts(const Manifest& manifest, const ExperimentSplits& splits,
                                                    const GroupIndex& groups) {
  auto row = [&](const char* name, const IndexList& a, const IndexList& b) {
    SplitGroupCounts counts{name, GroupCounts(size_t(groups.num_groups()), 0),
                            GroupCounts(size_t(groups.num_groups()), 0)};
    for (const IndexList* list : {&a, &b}) {
      for (int64_t i : *list) {
        const Sample& s = manifest.samples[size_t(i)];
        GroupCounts& c = s.source == Source::Real ? counts.real : counts.synthetic;
        ++c[size_t(groups.group_of(s))];
      }
    }
    return counts;
  };
  std::vector<SplitGroupCounts> rows;
  rows.push_back(row("train", splits.train, {}));
  if (!splits.pretrain.empty()) rows.push_back(row("pretrain (FFR stage 1)", splits.pretrain, {}));
  rows.push_back(row("val", splits.val, splits.val_synthetic));
  rows.push_back(row("test", splits.test, splits.test_synthetic));
  return rows;
}

}  // namespace ffr::data
