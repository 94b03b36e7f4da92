#include "ffr/trainer.h"

#include "data/device_loader.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "ffr/evaluation.h"
#include "ffr/training_method.h"
#include "kernels/elementwise.h"
#include "layers/conv_bn.h"
#include "optim/adam.h"

#include <cmath>
#include <limits>

namespace ffr {

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

double or_lowest(double v) { return std::isnan(v) ? -std::numeric_limits<double>::infinity() : v; }

NamedTensors snapshot(const Classifier& model) {
  NamedTensors state = model.state_dict();
  for (auto& [name, t] : state) t = t.detach().clone();
  return state;
}

// Adam over the parameters that still learn (frozen BN affine parameters drop out).
std::unique_ptr<Adam> make_optimizer(const Classifier& model, double learning_rate, double weight_decay) {
  std::vector<Tensor> parameters;
  std::vector<std::string> names;
  for (const auto& [name, p] : model.named_parameters()) {
    if (!p.requires_grad()) continue;
    parameters.push_back(p);
    names.push_back(name);
  }
  AdamOptions options;
  options.lr = learning_rate;
  options.weight_decay = weight_decay;  // coupled L2, as torch.optim.Adam (the paper's optimiser)
  return std::make_unique<Adam>(std::move(parameters), options, std::move(names));
}

// val_wa < 0: a step inside the epoch; else the epoch's closing report, after validation.
void report(const TrainingContext& context, const StagePlan& plan, int64_t epoch, int64_t step, int64_t steps,
            double images_per_second, double val_wa) {
  if (!context.progress) return;
  Progress p;
  p.stage = plan.name;
  p.epoch = epoch + 1;
  p.epochs = plan.epochs;
  p.step = step;
  p.steps = steps;
  p.images_per_second = images_per_second;
  p.val_worst_group_accuracy = val_wa;
  p.epoch_done = val_wa >= 0.0;
  if (const RunClock* clock = context.clock; clock != nullptr && clock->steps_done > 0) {
    // Whole-run ETA from the run's pace so far, validation time included.
    const double per_step = seconds_since(clock->start) / double(clock->steps_done);
    p.eta_seconds = per_step * double(std::max<int64_t>(0, clock->total_steps - clock->steps_done));
  }
  context.progress(p);
}

}  // namespace

bool better_epoch(const SplitMetrics& candidate, const SplitMetrics& incumbent) {
  const double wa = or_lowest(candidate.worst_group_accuracy), best_wa = or_lowest(incumbent.worst_group_accuracy);
  if (wa != best_wa) return wa > best_wa;
  return or_lowest(candidate.balanced_accuracy) > or_lowest(incumbent.balanced_accuracy);
}

int64_t stage_steps_per_epoch(const StagePlan& plan, int64_t batch_size) {
  return (int64_t(plan.samples.size()) + batch_size - 1) / batch_size;
}

StageOutcome train_stage(Classifier& model, const StagePlan& plan, const TrainingContext& context) {
  NvtxRange range(plan.name.c_str());
  FFR_CHECK(context.manifest && context.groups, "train_stage needs a manifest and its groups");
  FFR_CHECK(plan.epochs >= 1, "a stage needs at least one epoch, got ", plan.epochs);
  const data::Manifest& manifest = *context.manifest;

  const TrainingGroups groups = training_groups(manifest, plan.samples, *context.groups, plan.source_groups);
  const auto sampler = make_training_sampler(plan.method, plan.samples, groups, context.batch_size, plan.sampler_seed);
  TrainingLoss loss_of(plan.method, groups, context.device,
                       {context.groupdro_step_size, context.groupdro_adjustment});
  if (plan.freeze_batch_norm) {
    for (BatchNorm2d* bn : batch_norm_layers(model)) bn->set_frozen(true, /*freeze_affine=*/true);
  }
  std::unique_ptr<Adam> optimizer = make_optimizer(model, plan.learning_rate, context.weight_decay);
  const EvalOptions eval{context.device, context.loader, context.batch_size};
  const int64_t steps = sampler->batches_per_epoch();
  // One loader over every epoch of the stage, so decoding runs ahead across epoch boundaries.
  data::DeviceLoader loader(manifest, sampler, context.loader, context.device, {}, plan.epochs);

  StageOutcome outcome;
  for (int64_t epoch = 0; epoch < plan.epochs; ++epoch) {
    const Clock::time_point epoch_start = Clock::now();
    model.train();
    Tensor loss_sum = Tensor::zeros({}, DType::Float32, context.device);
    int64_t images = 0;
    for (int64_t step = 0; step < steps; ++step) {
      std::optional<data::DeviceBatch> batch = loader.next();
      FFR_CHECK(batch.has_value(), "the loader ended early: epoch ", epoch, ", step ", step, " of ", steps);
      optimizer->zero_grad();
      const Tensor logits = model.forward(batch->images);
      const Tensor loss =
          loss_of(logits, batch->y, loss_of.uses_source_groups() ? batch->group_with_source : batch->group);
      loss.backward();
      optimizer->step();
      add_(loss_sum, loss.detach());
      images += batch->size;
      if (context.clock) ++context.clock->steps_done;
      report(context, plan, epoch, step + 1, steps, double(images) / seconds_since(epoch_start), -1.0);
    }
    // The epoch's only reads of the device: the loss sum here and the validation counts below.
    const double train_loss = loss_sum.item() / double(steps);
    const double train_seconds = seconds_since(epoch_start);
    const SplitMetrics val = evaluate(model, manifest, context.val, *context.groups, eval);

    EpochMetrics m;
    m.stage = plan.name;
    m.epoch = epoch + 1;
    m.train_loss = train_loss;
    m.val_worst_group_accuracy = val.worst_group_accuracy;
    m.val_balanced_accuracy = val.balanced_accuracy;
    m.images_per_second = double(images) / train_seconds;
    m.best = outcome.best_epoch < 0 || better_epoch(val, outcome.best_val);
    if (m.best) {
      outcome.best_state = snapshot(model);
      outcome.best_epoch = m.epoch;
      outcome.best_val = val;
    }
    m.seconds = seconds_since(epoch_start);
    if (m.best && context.on_new_best) context.on_new_best(model, m);
    if (context.on_epoch) context.on_epoch(m);
    report(context, plan, epoch, steps, steps, m.images_per_second, val.worst_group_accuracy);
  }
  return outcome;
}

}  // namespace ffr
