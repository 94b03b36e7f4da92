#include "ffr/trainer.h"

#include "data/device_loader.h"
#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/fault_injection.h"
#include "engine/nvtx.h"
#include "ffr/data_parallel.h"
#include "ffr/evaluation.h"
#include "ffr/numeric_guard.h"
#include "ffr/training_method.h"
#include "kernels/elementwise.h"
#include "layers/conv_bn.h"
#include "layers/layer_probe.h"
#include "optim/adam.h"
#include "optim/gradient_buckets.h"

#include <cmath>
#include <limits>
#include <map>

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

}  // namespace

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

namespace {

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
  if (const RunClock* clock = context.clock; clock != nullptr && clock->steps_done > clock->steps_at_start) {
    // Whole-run ETA from this process's pace so far, validation time included.
    const double per_step = seconds_since(clock->start) / double(clock->steps_done - clock->steps_at_start);
    p.eta_seconds = per_step * double(std::max<int64_t>(0, clock->total_steps - clock->steps_done));
  }
  context.progress(p);
}

// A NaN/Inf census of one tensor (read on the host: only diagnosis and tests pay for it).
struct FiniteCount {
  int64_t nan = 0, inf = 0, total = 0;
  bool finite() const { return nan == 0 && inf == 0; }
};
FiniteCount count_nonfinite(const Tensor& t) {
  FiniteCount c;
  if (!t.defined()) return c;
  for (float v : t.detach().to(DType::Float32).cpu().to_vector<float>()) {
    c.nan += std::isnan(v);
    c.inf += std::isinf(v);
  }
  c.total = t.numel();
  return c;
}

std::map<const Module*, std::string> module_names(const Classifier& model) {
  std::map<const Module*, std::string> names;
  for (const auto& [name, m] : model.named_modules()) names[m] = name.empty() ? "(model)" : name;
  return names;
}

// Sees every leaf layer's output of one forward pass: injects FFR_FAULT's NaN at a named layer,
// and, when diagnosing, records the first layer whose output is not finite.
class StepProbe final : public LayerProbe {
 public:
  StepProbe(const Classifier& model, std::string inject_at, bool diagnose)
      : names_(module_names(model)), inject_at_(std::move(inject_at)), diagnose_(diagnose) {}

  void on_output(const Module& layer, const Tensor& input, Tensor& output) override {
    const std::string& name = names_.at(&layer);
    if (name == inject_at_) {
      NoGradGuard no_grad;  // the poisoned value flows on; the graph stays the layer's own
      output.fill_(std::nan(""));
    }
    if (!diagnose_ || !first_bad_.empty()) return;
    const FiniteCount out = count_nonfinite(output);
    if (out.finite()) return;
    first_bad_ = name;
    std::string why = detail::concat(out.nan, " NaN and ", out.inf, " Inf of its ", out.total, " output values");
    std::vector<std::string> bad_parameters;
    for (const auto& [pname, p] : layer.named_parameters()) {
      if (!count_nonfinite(p).finite()) bad_parameters.push_back(name + "." + pname);
    }
    if (!count_nonfinite(input).finite()) {
      why += "; its input was already not finite (made by an op between layers: an activation, pooling, a residual add)";
    } else if (!bad_parameters.empty()) {
      why += "; its parameter " + bad_parameters.front() + " is not finite";
    } else {
      why += "; its input and parameters are finite";
    }
    detail_ = why;
  }

  const std::string& first_bad_layer() const { return first_bad_; }
  const std::string& detail() const { return detail_; }

 private:
  std::map<const Module*, std::string> names_;
  std::string inject_at_;
  bool diagnose_;
  std::string first_bad_, detail_;
};

// FFR_FAULT's oom-at-step: the device allocator refuses anything beyond what is in use now, until
// the stage ends (however it ends).
class AllocationLimit {
 public:
  ~AllocationLimit() {
    if (allocator_) allocator_->set_limit(0);
  }
  void engage(Device device) {
    allocator_ = &allocator_for(device);
    allocator_->set_limit(std::max<size_t>(1, allocator_->stats().allocated_bytes));
  }

 private:
  Allocator* allocator_ = nullptr;
};

// The fault injection's names must exist in this model: a typo would otherwise inject nothing.
void check_fault_names(const Classifier& model) {
  const fault::Plan& f = fault::plan();
  if (f.nan_at_step > 0) {
    const auto names = module_names(model);
    const bool found = std::any_of(names.begin(), names.end(), [&](const auto& e) { return e.second == f.nan_layer; });
    if (!found) throw InputError("FFR_FAULT: nan-at-step: the model has no layer '" + f.nan_layer + "'");
  }
  if (f.nan_grad_at_step > 0) {
    const auto params = model.named_parameters();
    const bool found =
        std::any_of(params.begin(), params.end(), [&](const auto& e) { return e.first == f.nan_grad_parameter; });
    if (!found) throw InputError("FFR_FAULT: nan-grad-at-step: the model has no parameter '" + f.nan_grad_parameter + "'");
  }
}

// --sync-bn for the length of a stage: the model's BN layers take their statistics over all ranks.
class SyncBatchNormScope {
 public:
  SyncBatchNormScope(Classifier& model, comm::Communicator* communicator) {
    if (communicator == nullptr) return;
    layers_ = batch_norm_layers(model);
    for (BatchNorm2d* bn : layers_) bn->set_sync(communicator);
  }
  ~SyncBatchNormScope() {
    for (BatchNorm2d* bn : layers_) bn->set_sync(nullptr);
  }
  SyncBatchNormScope(const SyncBatchNormScope&) = delete;
  SyncBatchNormScope& operator=(const SyncBatchNormScope&) = delete;

 private:
  std::vector<BatchNorm2d*> layers_;
};

}  // namespace

bool better_epoch(const SplitMetrics& candidate, const SplitMetrics& incumbent) {
  const double wa = or_lowest(candidate.worst_group_accuracy), best_wa = or_lowest(incumbent.worst_group_accuracy);
  if (wa != best_wa) return wa > best_wa;
  return or_lowest(candidate.balanced_accuracy) > or_lowest(incumbent.balanced_accuracy);
}

int64_t stage_steps_per_epoch(const StagePlan& plan, int64_t batch_size) {
  return (int64_t(plan.samples.size()) + batch_size - 1) / batch_size;
}

StageOutcome train_stage(Classifier& model, const StagePlan& plan, const TrainingContext& context,
                         const StageProgress* resume) {
  NvtxRange range(plan.name.c_str());
  FFR_CHECK(context.manifest && context.groups, "train_stage needs a manifest and its groups");
  FFR_CHECK(plan.epochs >= 1, "a stage needs at least one epoch, got ", plan.epochs);
  const data::Manifest& manifest = *context.manifest;

  const TrainingGroups groups = training_groups(manifest, plan.samples, *context.groups, plan.source_groups);
  const auto sampler = make_training_sampler(plan.method, plan.samples, groups, context.batch_size, plan.sampler_seed);
  TrainingLoss loss_of(plan.method, groups, context.device,
                       {context.groupdro_step_size, context.groupdro_adjustment});
  if (plan.freeze_batch_norm) {
    for (BatchNorm2d* bn : batch_norm_layers(model)) bn->set_frozen(true, plan.freeze_batch_norm_affine);
  }
  std::unique_ptr<Adam> optimizer = make_optimizer(model, plan.learning_rate, context.weight_decay);
  const EvalOptions eval{context.device, context.loader, context.batch_size};
  const int64_t steps = sampler->batches_per_epoch();

  StageOutcome outcome;
  int64_t first_epoch = 0;
  if (resume != nullptr) {
    if (resume->epochs_done < 0 || resume->epochs_done > plan.epochs) {
      throw InputError(detail::concat(plan.name, ": the saved state is after epoch ", resume->epochs_done,
                                      ", the stage has ", plan.epochs));
    }
    first_epoch = resume->epochs_done;
    outcome.best_epoch = resume->best.best_epoch;
    outcome.best_val = resume->best.best_val;
    for (const auto& [name, t] : resume->best.best_state) outcome.best_state.emplace_back(name, t.to(context.device));
    if (!resume->optimizer.empty()) optimizer->load_state(resume->optimizer);
    if (plan.method == TrainingMethod::GroupDRO) {
      if (!resume->group_weights.defined()) throw InputError(plan.name + ": the saved state has no GroupDRO weights");
      loss_of.load_group_weights(resume->group_weights);
    }
  }
  if (first_epoch == plan.epochs) return outcome;  // finished before the interruption

  // The divergence check: the loss, then the gradients in the order backward makes them, so the
  // lowest index that goes bad at a step is the parameter nearest the loss.
  std::vector<std::string> checked_names{"loss"};
  const std::vector<std::string>& parameter_names = optimizer->parameter_names();
  checked_names.insert(checked_names.end(), parameter_names.rbegin(), parameter_names.rend());
  NumericGuard guard(checked_names, context.device);
  optimizer->set_skip_guard(guard.status());
  std::vector<Tensor> checked(checked_names.size());
  comm::Communicator* ranks =
      context.communicator != nullptr && context.communicator->size() > 1 ? context.communicator : nullptr;
  std::unique_ptr<GradientBuckets> gradient_sum;
  SyncBatchNormScope sync_batch_norm(model, ranks && context.sync_batch_norm ? ranks : nullptr);
  if (ranks) {
    gradient_sum = std::make_unique<GradientBuckets>(*ranks, optimizer->parameters(), size_t(25) << 20,
                                                     GradientBuckets::Reduction::Sum);
    // Checked now rather than at the epoch's last batch: every rank needs a row of every batch.
    const int64_t last = int64_t(plan.samples.size()) % context.batch_size;
    if (context.sync_batch_norm && last != 0 && last < ranks->size()) {
      throw InputError(detail::concat("--sync-bn: ", plan.name, "'s last batch of each epoch holds ", last,
                                      " image(s), fewer than the ", ranks->size(),
                                      " ranks; choose another --batch-size, or run without --sync-bn"));
    }
  }

  const fault::Plan& faults = fault::plan();
  if (fault::active()) check_fault_names(model);
  AllocationLimit allocation_limit;
  int64_t local_steps = first_epoch * steps;  // run-wide steps without a RunClock
  auto next_run_step = [&] { return context.clock ? context.clock->steps_done + 1 : ++local_steps; };

  // One loader over every remaining epoch, so decoding runs ahead across epoch boundaries.
  data::DeviceLoader loader(manifest, sampler, context.loader, context.device, {first_epoch, 0}, plan.epochs);

  for (int64_t epoch = first_epoch; epoch < plan.epochs; ++epoch) {
    const Clock::time_point epoch_start = Clock::now();
    model.train();
    Tensor loss_sum = Tensor::zeros({}, DType::Float32, context.device);
    int64_t images = 0;
    int64_t epoch_first_run_step = -1;

    // A NaN/Inf at run step `at`: name the step and the first layer, then stop.
    auto stop_on = [&](const NonFiniteFinding& finding) {
      const int64_t batch = finding.step - epoch_first_run_step;  // 0-based, in this epoch
      const std::string where = detail::concat("training step ", finding.step, " of the run (", plan.name, ", epoch ",
                                               epoch + 1, ", batch ", batch + 1, " of ", steps, ")");
      std::string what;
      if (finding.tensor_index == 0) {
        // Replay the step's forward pass on the same batch with the weights it saw (Adam skipped
        // every update since), looking at each layer's output.
        data::DeviceLoader again(manifest, sampler, context.loader, context.device, {epoch, batch});
        std::optional<data::DeviceBatch> b = again.next();
        FFR_CHECK(b.has_value(), "the replay of batch ", batch, " of epoch ", epoch, " found no batch");
        StepProbe probe(model, faults.nan_at_step == finding.step ? faults.nan_layer : "", /*diagnose=*/true);
        {
          LayerProbeScope scope(&probe);
          NoGradGuard no_grad;
          model.forward(b->images);
        }
        what = probe.first_bad_layer().empty()
                   ? std::string("the loss is not finite, though every layer's output is on a replay of the batch "
                                 "(the loss itself overflowed: logits too large?)")
                   : "the loss is not finite; the first layer whose output is not finite is " +
                         probe.first_bad_layer() + " (" + probe.detail() + ")";
      } else {
        const std::string& parameter = finding.tensor_name;
        const size_t dot = parameter.rfind('.');
        what = "the loss is finite but the gradient of " + parameter +
               " is not; it is the first to go bad in the backward pass (the parameter nearest the loss), in layer " +
               (dot == std::string::npos ? parameter : parameter.substr(0, dot));
      }
      throw NumericalError("NaN/Inf in " + where + ": " + what +
                           ". Training stopped before this epoch's checkpoint; a lower learning rate may help");
    };

    for (int64_t step = 0; step < steps; ++step) {
      NvtxRange step_range("train_step");  // what `ncu --nvtx --nvtx-include train_step/` profiles
      const int64_t run_step = next_run_step();
      if (epoch_first_run_step < 0) epoch_first_run_step = run_step;
      if (fault::active()) {
        if (faults.kill_at_step == run_step) fault::kill_process(detail::concat("kill-at-step=", run_step));
        if (faults.oom_at_step == run_step) allocation_limit.engage(context.device);
      }
      std::optional<data::DeviceBatch> batch = loader.next();
      FFR_CHECK(batch.has_value(), "the loader ended early: epoch ", epoch, ", step ", step, " of ", steps);
      if (ranks && context.sync_batch_norm && batch->size < ranks->size()) {  // every rank sees this size: all stop
        throw InputError(detail::concat("--sync-bn: a batch of ", batch->size, " image(s) cannot give each of the ",
                                        ranks->size(), " ranks a row; choose another --batch-size"));
      }
      optimizer->zero_grad();
      const Tensor& group_ids = loss_of.uses_source_groups() ? batch->group_with_source : batch->group;
      Tensor loss;
      if (ranks) {
        loss = data_parallel_forward_backward(
            model, batch->images, [&](const Tensor& logits) { return loss_of(logits, batch->y, group_ids); }, *ranks);
        gradient_sum->reduce();
      } else {
        Tensor logits;
        if (faults.nan_at_step == run_step) {
          StepProbe inject(model, faults.nan_layer, /*diagnose=*/false);
          LayerProbeScope scope(&inject);
          logits = model.forward(batch->images);
        } else {
          logits = model.forward(batch->images);
        }
        loss = loss_of(logits, batch->y, group_ids);
        loss.backward();
      }
      if (faults.nan_grad_at_step == run_step) {
        for (auto& [name, p] : model.named_parameters()) {
          if (name == faults.nan_grad_parameter) p.grad().fill_(std::nan(""));
        }
      }
      checked[0] = loss.detach();
      const std::vector<Tensor>& parameters = optimizer->parameters();
      for (size_t i = 0; i < parameters.size(); ++i) checked[checked.size() - 1 - i] = parameters[i].grad();
      guard.check(checked, run_step);
      optimizer->step();  // skipped on the device once the guard has seen a NaN/Inf
      add_(loss_sum, loss.detach());
      images += batch->size;
      if (context.clock) ++context.clock->steps_done;
      if (std::optional<NonFiniteFinding> finding = guard.poll()) stop_on(*finding);
      report(context, plan, epoch, step + 1, steps, double(images) / seconds_since(epoch_start), -1.0);
    }
    if (std::optional<NonFiniteFinding> finding = guard.wait()) stop_on(*finding);
    // The epoch's only reads of the device: the loss sum here and the validation counts below.
    const double train_loss = loss_sum.item() / double(steps);
    const double train_seconds = seconds_since(epoch_start);
    if (ranks) broadcast_buffers(model, *ranks);  // every rank validates and saves rank 0's model
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
    if (context.on_epoch_complete) {
      StageProgress progress;
      progress.epochs_done = epoch + 1;
      progress.optimizer = optimizer->state_tensors();
      progress.group_weights = loss_of.group_weights();
      progress.best = outcome;
      context.on_epoch_complete(model, progress);
    }
    report(context, plan, epoch, steps, steps, m.images_per_second, val.worst_group_accuracy);
  }
  return outcome;
}

}  // namespace ffr
