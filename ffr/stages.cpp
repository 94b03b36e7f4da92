#include "ffr/stages.h"

#include "data/apportion.h"
#include "engine/error.h"
#include "engine/rng.h"

#include <algorithm>

namespace ffr {

namespace {

// One Philox stream per random decision of the trainer (the protocol's are 101..103).
enum Stream : uint64_t { kCap = 201, kSamplerStage1 = 202, kSamplerStage2 = 203 };

uint64_t stream_seed(uint64_t seed, uint64_t stream) { return Rng(seed, stream).next_u64(); }

bool group_aware(TrainingMethod m) { return m == TrainingMethod::Resampling || m == TrainingMethod::GroupDRO; }

}  // namespace

void validate_config(const ExperimentConfig& c) {
  auto fail = [](const std::string& what) { throw InputError("experiment config: " + what); };
  if (c.manifest.empty()) fail("manifest is empty");
  if (!(c.bias_ratio > 0.0 && c.bias_ratio < 1.0)) fail(detail::concat("bias_ratio must be in (0, 1), got ", c.bias_ratio));
  if (c.epochs < 1) fail(detail::concat("epochs must be >= 1, got ", c.epochs));
  if (c.batch_size < 1) fail(detail::concat("batch_size must be >= 1, got ", c.batch_size));
  if (!(c.learning_rate > 0.0)) fail(detail::concat("learning_rate must be > 0, got ", c.learning_rate));
  if (!(c.weight_decay >= 0.0)) fail(detail::concat("weight_decay must be >= 0, got ", c.weight_decay));
  if (c.image_size < 0) fail(detail::concat("image_size must be >= 0 (0: the manifest's), got ", c.image_size));
  if (c.max_train_samples < 0) fail(detail::concat("max_train_samples must be >= 0, got ", c.max_train_samples));
  if (c.loader_workers < 1) fail(detail::concat("loader_workers must be >= 1, got ", c.loader_workers));
  if (c.compute_threads < 0) fail(detail::concat("compute_threads must be >= 0 (0: the machine's cores), got ", c.compute_threads));
  if (!(c.groupdro_step_size >= 0.0)) fail(detail::concat("groupdro_step_size must be >= 0, got ", c.groupdro_step_size));
  if (!(c.groupdro_adjustment >= 0.0)) fail(detail::concat("groupdro_adjustment must be >= 0, got ", c.groupdro_adjustment));
  if (c.synthetic == data::SyntheticDistribution::BiasAgnostic && c.agnostic_pool_version != ExperimentConfig{}.agnostic_pool_version) {
    fail(detail::concat("agnostic_pool_version ", c.agnostic_pool_version, " (the bias-aware pool with b ignored) is no "
                        "longer run: bias-agnostic data is its own pool of class-only-prompt images (version ",
                        ExperimentConfig{}.agnostic_pool_version, ")"));
  }
  if (c.method == TrainingMethod::DFR && c.dfr_refits < 1) fail(detail::concat("dfr_refits must be >= 1, got ", c.dfr_refits));
  if (c.keep_head && c.init_weights.empty()) fail("keep_head needs init_weights (the head to keep)");
  if (c.device != "auto" && c.device != "cpu" && c.device != "cuda") {
    fail("device must be auto, cpu or cuda, got '" + c.device + "'");
  }
  if (c.precision != "auto" && c.precision != "fp32" && c.precision != "tf32" && c.precision != "bf16") {
    fail("precision must be auto, fp32, tf32 or bf16, got '" + c.precision + "'");
  }
  const bool ffr = c.augmentation == data::Augmentation::FFR;
  if (ffr || c.stages == StageOrder::Stage1Only || c.stages == StageOrder::Stage2Then1) {
    if (c.stage1_epochs < 1) fail(detail::concat("stage1_epochs must be >= 1, got ", c.stage1_epochs));
    if (!(c.stage1_learning_rate > 0.0)) fail(detail::concat("stage1_learning_rate must be > 0, got ", c.stage1_learning_rate));
  }
  if (!ffr && c.stages != StageOrder::Full) {
    fail(std::string("stage order '") + stage_order_name(c.stages) + "' applies to augmentation ffr only (got " +
         data::augmentation_name(c.augmentation) + ")");
  }
  if (c.stages == StageOrder::Stage1Only && group_aware(c.method)) {
    fail(std::string("stage order 'stage1' trains on synthetic images with ERM only; method '") +
         method_name(c.method) + "' needs a real stage");
  }
}

data::IndexList cap_samples(const data::Manifest& manifest, const data::IndexList& samples,
                            const data::GroupIndex& groups, int64_t cap, uint64_t seed) {
  if (cap <= 0 || int64_t(samples.size()) <= cap) return samples;
  const std::vector<int> ids = data::group_ids(manifest, samples, groups, /*with_source=*/true);
  std::vector<data::IndexList> members(size_t(groups.num_groups_with_source()));
  for (size_t k = 0; k < samples.size(); ++k) members[size_t(ids[k])].push_back(samples[k]);
  std::vector<int64_t> sizes;
  for (const auto& m : members) sizes.push_back(int64_t(m.size()));
  const std::vector<int64_t> keep = data::share_in_proportion(cap, sizes);
  Rng rng(seed, kCap);
  data::IndexList out;
  for (size_t g = 0; g < members.size(); ++g) {
    if (members[g].empty()) continue;
    const int64_t n = std::max<int64_t>(1, keep[g]);  // a rare group must not vanish
    data::move_random_subset_to_front(members[g], n, rng);
    out.insert(out.end(), members[g].begin(), members[g].begin() + n);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::vector<StagePlan> plan_stages(const ExperimentConfig& config, const data::Manifest& manifest,
                                   const data::ExperimentSplits& splits) {
  validate_config(config);
  const data::GroupIndex groups(manifest.info);
  const TrainingMethod method = config.method == TrainingMethod::DFR ? TrainingMethod::ERM : config.method;
  const bool mixed_sources =
      config.augmentation == data::Augmentation::USB || config.augmentation == data::Augmentation::ASB;

  // The synthetic stage (FFR's stage 1).
  StagePlan synthetic;
  synthetic.name = "stage 1";
  synthetic.samples = cap_samples(manifest, splits.pretrain, groups, config.max_train_samples, config.seed);
  synthetic.method = TrainingMethod::ERM;
  synthetic.learning_rate = config.stage1_learning_rate;
  synthetic.epochs = config.stage1_epochs;
  synthetic.sampler_seed = stream_seed(config.seed, kSamplerStage1);

  // The real stage (FFR's stage 2), or the single stage of None/USB/ASB.
  StagePlan real;
  real.name = config.augmentation == data::Augmentation::FFR ? "stage 2" : "train";
  real.samples = cap_samples(manifest, splits.train, groups, config.max_train_samples, config.seed);
  real.method = method;
  real.source_groups = mixed_sources && group_aware(method);
  real.learning_rate = config.learning_rate;
  real.epochs = config.epochs;
  real.sampler_seed = stream_seed(config.seed, kSamplerStage2);

  if (config.augmentation != data::Augmentation::FFR) return {real};
  switch (config.stages) {
    case StageOrder::Full:
      real.freeze_batch_norm = config.freeze_batch_norm;
      real.freeze_batch_norm_affine = config.freeze_batch_norm_affine;
      return {synthetic, real};
    case StageOrder::Stage1Only:
      return {synthetic};
    case StageOrder::Stage2Only:
      return {real};
    case StageOrder::Stage2Then1:
      synthetic.freeze_batch_norm = config.freeze_batch_norm;
      synthetic.freeze_batch_norm_affine = config.freeze_batch_norm_affine;
      return {real, synthetic};
  }
  return {};
}

}  // namespace ffr
