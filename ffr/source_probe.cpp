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

}  // namespace

SourceProbeResult probe_source(const SourceProbeConfig& config, const ProgressCallback& progress) {
  using Clock = std::chrono::steady_clock;
  const Clock::time_point start = Clock::now();
  if (config.epochs < 1) throw InputError(detail::concat("epochs must be >= 1, got ", config.epochs));
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
  model->train();
  for (int64_t epoch = 0; epoch < config.epochs; ++epoch) {
    const Clock::time_point epoch_start = Clock::now();
    Tensor loss_sum = Tensor::zeros({}, DType::Float32, device);
    int64_t images = 0;
    for (int64_t step = 0; step < steps; ++step) {
      std::optional<data::DeviceBatch> batch = loader.next();
      FFR_CHECK(batch.has_value(), "the loader ended early");
      optimizer.zero_grad();
      const Tensor loss = cross_entropy(model->forward(batch->images), batch->source);
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
  result.device = device.str();
  result.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return result;
}

}  // namespace ffr
