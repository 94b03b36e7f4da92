// Adam with coupled L2 weight decay (exactly torch.optim.Adam, as the paper trains) and AdamW
// (decoupled decay, torch.optim.AdamW). On CUDA a step is one fused launch over all parameters
// (kernels/fused_adam); on the CPU the reference loop runs.
#pragma once

#include "kernels/fused_adam.h"
#include "optim/optimizer.h"

#include <vector>

namespace ffr {

struct AdamOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.0;  // the paper: 1e-5 (Adam). torch.optim.AdamW's default is 1e-2.
};

class Adam : public Optimizer {
 public:
  Adam(std::vector<Tensor> parameters, const AdamOptions& options = {}, std::vector<std::string> names = {});

  void step() override;

  // "step", then per parameter "<name>.step" (int64 scalar), "<name>.exp_avg",
  // "<name>.exp_avg_sq" (the parameter's shape, dtype and device) for parameters that have state
  // (PyTorch creates it on a parameter's first update, and so do we).
  NamedTensors state_tensors() const override;
  void load_state(const NamedTensors& state) override;

  // Guard against non-finite updates: `status` is a non-finite status (kernels/nonfinite_check.h,
  // e.g. NumericGuard::status()) on the parameters' device. Once it is set, every later step leaves
  // parameters and moments as they are; on CUDA the kernel reads it on the device, so step() still
  // never waits for the host. Per-parameter step counts and steps_taken() keep counting through
  // skipped steps: the guard only freezes the model until the run stops, it does not make a
  // skipped step as if it never happened. An undefined Tensor removes the guard.
  void set_skip_guard(Tensor status);
  const Tensor& skip_guard() const { return skip_guard_; }

  const AdamOptions& options() const { return options_; }
  // Updates this parameter has had (its t in the bias corrections).
  int64_t parameter_step(size_t index) const { return state_.at(index).step; }

 protected:
  Adam(std::vector<Tensor> parameters, const AdamOptions& options, std::vector<std::string> names,
       bool decoupled_weight_decay);

 private:
  struct ParameterState {
    Tensor exp_avg;
    Tensor exp_avg_sq;
    int64_t step = 0;
  };

  // The plan for this set of buffers, from `previous` when one matches (the buffers stayed the
  // same: the steady state) or built now.
  static FusedAdamPlan take_plan(std::vector<FusedAdamPlan>& previous, const std::vector<AdamTensors>& tensors);

  AdamOptions options_;
  bool decoupled_weight_decay_;
  std::vector<ParameterState> state_;
  // The plans the last step used (one per distinct step count; one in steady state). Plans hold
  // their buffers, so only those still in use are kept.
  std::vector<FusedAdamPlan> plans_;
  Tensor skip_guard_;
};

class AdamW : public Adam {
 public:
  AdamW(std::vector<Tensor> parameters, const AdamOptions& options = {}, std::vector<std::string> names = {})
      : Adam(std::move(parameters), options, std::move(names), /*decoupled_weight_decay=*/true) {}
};

}  // namespace ffr
