#include "ffr/source_probe.h"

#include "data/apportion.h"
#include "data/device_loader.h"
#include "data/protocol.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/rng.h"
#include "kernels/cross_entropy.h"
#include "kernels/elementwise.h"
#include "kernels/subgroup_accuracy.h"
#include "layers/model_zoo.h"
#include "optim/adam.h"

#include <algorithm>
#include <chrono>
#include <cmath>

namespace ffr {

namespace {

enum Stream : uint64_t { kTrainChoice = 301, kHeldoutChoice = 302, kInit = 303, kShuffle = 304 };

// A seeded random `count` of `samples`, in manifest order.
data::IndexList choose(data::IndexList samples, int64_t count, Rng& rng) {
  data::move_random_subset_to_front(samples, count, rng);
  samples.resize(size_t(count));
  std::sort(samples.begin(), samples.end());
  return samples;
}

data::IndexList merged(const data::IndexList& a, const data::IndexList& b) {
  data::IndexList out(a);
  out.insert(out.end(), b.begin(), b.end());
  std::sort(out.begin(), out.end());
  return out;
}

// A constant's training accuracy on the balanced mix is 50 %; the probe must beat it by this.
double learned_margin(int64_t per_source) {
  return std::max(0.05, per_source > 0 ? 1.0 / std::sqrt(2.0 * double(per_source)) : 1.0);
}

std::string percent(double v) { return detail::concat(std::round(1000.0 * v) / 10.0, "%"); }

}  // namespace

SourceProbeVerdict source_probe_verdict(const SourceProbeResult& r) {
  const double baseline = std::max(0.5, r.untrained_train_accuracy);
  if (!(r.train_accuracy > baseline + learned_margin(r.train_per_source))) return SourceProbeVerdict::Inconclusive;
  if (r.accuracy >= 0.75) return SourceProbeVerdict::EasyToTellApart;
  if (r.accuracy >= 0.6) return SourceProbeVerdict::Distinguishable;
  return SourceProbeVerdict::HardToTellApart;
}

std::string source_probe_verdict_text(const SourceProbeResult& r) {
  switch (source_probe_verdict(r)) {
    case SourceProbeVerdict::EasyToTellApart: return "real and synthetic images are easy to tell apart";
    case SourceProbeVerdict::Distinguishable: return "real and synthetic images are distinguishable";
    case SourceProbeVerdict::HardToTellApart: return "real and synthetic images are hard to tell apart";
    case SourceProbeVerdict::Inconclusive: break;
  }
  return detail::concat("inconclusive: the probe did not learn (on its own training images it scores ",
                        percent(r.train_accuracy), ": real ", percent(r.train_real_accuracy), ", synthetic ",
                        percent(r.train_synthetic_accuracy), ", untrained ", percent(r.untrained_train_accuracy),
                        ": no better than a constant's 50% or its untrained self), so its held-out score says "
                        "nothing about the images; train longer (--epochs, --patience) or at another --lr");
}

SourceProbeResult probe_source(const SourceProbeConfig& config, const ProgressCallback& progress) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  if (config.epochs < 1) throw InputError(detail::concat("epochs must be >= 1, got ", config.epochs));
  if (config.patience < 0) throw InputError(detail::concat("patience must be >= 0, got ", config.patience));
  if (config.batch_size < 1) throw InputError(detail::concat("batch_size must be >= 1, got ", config.batch_size));
  const Device device = resolve_device(config.device);
  const data::Manifest manifest = data::read_manifest(config.manifest);
  const data::GroupIndex groups(manifest.info);

  // Training mix: real train (as a run at the given ratio sees it) and synthetic train, equal counts.
  data::IndexList real = data::select_samples(manifest, data::Split::Train, data::Source::Real);
  if (config.bias_ratio > 0.0) {
    data::ProtocolConfig protocol;
    protocol.bias_ratio = config.bias_ratio;
    protocol.seed = config.seed;
    real = data::make_experiment_splits(manifest, protocol).train;
  }
  const data::IndexList synthetic = data::select_samples(manifest, data::Split::Train, data::Source::Synthetic);
  if (real.empty() || synthetic.empty()) {
    throw InputError(config.manifest + ": the probe needs real and synthetic train images (found " +
                     std::to_string(real.size()) + " real, " + std::to_string(synthetic.size()) + " synthetic)");
  }
  int64_t n = int64_t(std::min(real.size(), synthetic.size()));
  if (config.max_per_source > 0) n = std::min(n, config.max_per_source);
  Rng train_rng(config.seed, kTrainChoice);
  const data::IndexList train = merged(choose(real, n, train_rng), choose(synthetic, n, train_rng));

  // Held-out: images of neither training pool.
  SourceProbeResult result;
  data::IndexList heldout_real = data::select_samples(manifest, data::Split::Test, data::Source::Real);
  data::IndexList heldout_synthetic = data::select_samples(manifest, data::Split::Test, data::Source::Synthetic);
  result.heldout_description = "test real vs test held-out synthetic";
  if (heldout_synthetic.empty()) {
    heldout_synthetic = data::select_samples(manifest, data::Split::Val, data::Source::Synthetic);
    result.heldout_description = "test real vs val held-out synthetic";
  }
  if (heldout_real.empty() || heldout_synthetic.empty()) {
    throw InputError(config.manifest + ": the probe needs held-out images of both sources (real test and synthetic "
                     "test or val)");
  }
  const int64_t m = int64_t(std::min(heldout_real.size(), heldout_synthetic.size()));
  Rng heldout_rng(config.seed, kHeldoutChoice);
  const data::IndexList heldout =
      merged(choose(heldout_real, m, heldout_rng), choose(heldout_synthetic, m, heldout_rng));
  result.train_per_source = n;
  result.heldout_per_source = m;

  const int64_t image_size = config.image_size > 0 ? config.image_size : manifest.info.image_size;
  Rng init(config.seed, kInit);
  std::unique_ptr<Classifier> model = make_model(config.model, 2, init, image_size);  // 0 real, 1 synthetic
  model->to(device);
  AdamOptions options;
  options.lr = config.learning_rate;
  options.weight_decay = config.weight_decay;
  Adam optimizer(model->parameters(), options);
  data::LoaderConfig loader_config;
  loader_config.image_size = int(image_size);
  loader_config.workers = config.loader_workers;

  auto sampler = std::make_shared<data::ShuffledSampler>(train, config.batch_size, Rng(config.seed, kShuffle).next_u64());
  const int64_t steps = sampler->batches_per_epoch();
  data::DeviceLoader loader(manifest, sampler, loader_config, device, {}, config.epochs);
  // Training accuracy per source of the model as it is (eval mode), on the training images.
  auto train_accuracy = [&](double& real_accuracy, double& synthetic_accuracy) {
    model->eval();
    NoGradGuard no_grad;
    SubgroupAccuracy accuracy(2, device);
    auto eval_sampler = std::make_shared<data::SequentialSampler>(train, config.batch_size);
    data::DeviceLoader eval_loader(manifest, eval_sampler, loader_config, device);
    while (auto batch = eval_loader.next()) {
      accuracy.update(model->forward(batch->images), batch->source, batch->source);
    }
    const SubgroupAccuracy::Counts seen = accuracy.counts();
    real_accuracy = seen.total[0] > 0 ? double(seen.correct[0]) / double(seen.total[0]) : 0.0;
    synthetic_accuracy = seen.total[1] > 0 ? double(seen.correct[1]) / double(seen.total[1]) : 0.0;
    return double(seen.correct[0] + seen.correct[1]) / double(std::max<int64_t>(1, seen.total[0] + seen.total[1]));
  };
  // The initial weights, for the "untrained self" baseline after training.
  std::vector<Tensor> initial_weights;
  for (const Tensor& p : model->parameters()) initial_weights.push_back(p.clone());

  model->train();
  SubgroupAccuracy running(2, device);  // group = label = source: per-source training accuracy
  double best_running = -1.0;
  int64_t epochs_without_rise = 0;
  for (int64_t epoch = 0; epoch < config.epochs; ++epoch) {
    const Clock::time_point epoch_start = Clock::now();
    Tensor loss_sum = Tensor::zeros({}, DType::Float32, device);
    int64_t images = 0;
    running.reset();
    for (int64_t step = 0; step < steps; ++step) {
      std::optional<data::DeviceBatch> batch = loader.next();
      FFR_CHECK(batch.has_value(), "the loader ended early");
      optimizer.zero_grad();
      const Tensor logits = model->forward(batch->images);
      const Tensor loss = cross_entropy(logits, batch->source);
      running.update(logits.detach(), batch->source, batch->source);
      loss.backward();
      optimizer.step();
      add_(loss_sum, loss.detach());
      images += batch->size;
      if (progress) {
        Progress p;
        p.stage = "probe";
        p.epoch = epoch + 1;
        p.epochs = config.epochs;
        p.step = step + 1;
        p.steps = steps;
        const double elapsed = std::chrono::duration<double>(Clock::now() - epoch_start).count();
        p.images_per_second = double(images) / elapsed;
        const int64_t done = epoch * steps + step + 1;
        const double run_elapsed = std::chrono::duration<double>(Clock::now() - start).count();
        p.eta_seconds = run_elapsed / double(done) * double(config.epochs * steps - done);
        p.epoch_done = step + 1 == steps;
        progress(p);
      }
    }
    result.train_loss.push_back(loss_sum.item() / double(steps));
    const SubgroupAccuracy::Counts seen = running.counts();  // one read per epoch
    const double accuracy =
        double(seen.correct[0] + seen.correct[1]) / double(std::max<int64_t>(1, seen.total[0] + seen.total[1]));
    result.train_running_accuracy.push_back(accuracy);
    result.epochs_run = epoch + 1;
    // Converged, or no longer rising: more epochs would not change the verdict.
    if (accuracy > best_running + kProbePlateauRise) {
      best_running = accuracy;
      epochs_without_rise = 0;
    } else {
      ++epochs_without_rise;
    }
    if (config.patience > 0 && (accuracy >= 0.999 || epochs_without_rise >= config.patience)) break;
  }

  // Counts per (y, b, g) group with the source as the label; per class and source on the host.
  model->eval();
  NoGradGuard no_grad;
  SubgroupAccuracy accuracy(groups.num_groups_with_source(), device);
  auto eval_sampler = std::make_shared<data::SequentialSampler>(heldout, config.batch_size);
  data::DeviceLoader eval_loader(manifest, eval_sampler, loader_config, device);
  while (auto batch = eval_loader.next()) {
    accuracy.update(model->forward(batch->images), batch->source, batch->group_with_source);
  }
  // The final model on its own training images: a probe no better there than a constant (or than
  // itself untrained) learned nothing, and its held-out score says nothing about the data.
  result.train_accuracy = train_accuracy(result.train_real_accuracy, result.train_synthetic_accuracy);
  {
    // The baseline: the initial weights with the batch-norm statistics training left. A random
    // network with calibrated statistics can score 60 % by chance; a probe whose weights did not
    // move from there (too small a learning rate, too few steps) scores the same.
    std::vector<Tensor> weights = model->parameters();
    std::vector<Tensor> trained;
    for (size_t i = 0; i < weights.size(); ++i) {
      trained.push_back(weights[i].clone());
      weights[i].copy_(initial_weights[i]);
    }
    double real_accuracy = 0.0, synthetic_accuracy = 0.0;
    result.untrained_train_accuracy = train_accuracy(real_accuracy, synthetic_accuracy);
    for (size_t i = 0; i < weights.size(); ++i) weights[i].copy_(trained[i]);
  }
  const SubgroupAccuracy::Counts counts = accuracy.counts();
  result.per_class.resize(size_t(groups.num_classes()));
  for (int y = 0; y < groups.num_classes(); ++y) result.per_class[size_t(y)].y = y;
  int64_t correct = 0, total = 0, real_correct = 0, real_total = 0, syn_correct = 0, syn_total = 0;
  for (int id = 0; id < groups.num_groups_with_source(); ++id) {
    const int y = groups.pair(id / 2).first;
    const bool is_synthetic = id % 2 == 1;
    const int64_t c = counts.correct[size_t(id)], t = counts.total[size_t(id)];
    SourceProbeClass& k = result.per_class[size_t(y)];
    k.correct += c;
    k.total += t;
    (is_synthetic ? k.synthetic_correct : k.real_correct) += c;
    (is_synthetic ? k.synthetic_total : k.real_total) += t;
    correct += c;
    total += t;
    (is_synthetic ? syn_correct : real_correct) += c;
    (is_synthetic ? syn_total : real_total) += t;
  }
  auto ratio = [](int64_t a, int64_t b) { return b > 0 ? double(a) / double(b) : 0.0; };
  result.accuracy = ratio(correct, total);
  result.real_accuracy = ratio(real_correct, real_total);
  result.synthetic_accuracy = ratio(syn_correct, syn_total);
  result.verdict = source_probe_verdict(result);
  result.learned = result.verdict != SourceProbeVerdict::Inconclusive;
  result.device = device.str();
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace ffr
