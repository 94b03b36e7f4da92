#include "optim/adam.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"

#include <map>
#include <optional>

namespace ffr {

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Adam::Adam(std::vector<Tensor> parameters, const AdamOptions& options, std::vector<std::string> names)
    : Adam(std::move(parameters), options, std::move(names), /*decoupled_weight_decay=*/false) {}

Adam::Adam(std::vector<Tensor> parameters, const AdamOptions& options, std::vector<std::string> names,
           bool decoupled_weight_decay)
    : Optimizer(std::move(parameters), options.lr, std::move(names)),
      options_(options),
      decoupled_weight_decay_(decoupled_weight_decay),
      state_(parameters_.size()) {
  FFR_CHECK(options.beta1 >= 0 && options.beta1 < 1 && options.beta2 >= 0 && options.beta2 < 1,
            "Adam betas must be in [0, 1), got (", options.beta1, ", ", options.beta2, ")");
  FFR_CHECK(options.eps >= 0 && options.weight_decay >= 0, "Adam eps and weight_decay must be >= 0");
}

void Adam::set_skip_guard(Tensor status) {
  FFR_CHECK(!status.defined() || (status.dtype() == DType::Int64 && status.numel() == 1),
            "Adam skip guard: a one-element int64 status, got ", status.str());
  skip_guard_ = std::move(status);
}

FusedAdamPlan Adam::take_plan(std::vector<FusedAdamPlan>& previous, const std::vector<AdamTensors>& tensors) {
  for (FusedAdamPlan& plan : previous) {
    if (!plan.matches(tensors)) continue;
    FusedAdamPlan taken = std::move(plan);
    plan = FusedAdamPlan();  // a moved-from plan must not match again
    return taken;
  }
  return FusedAdamPlan(tensors);
}

void Adam::step() {
  NvtxRange range(decoupled_weight_decay_ ? "AdamW.step" : "Adam.step");
  NoGradGuard no_grad;
  for (size_t i = 0; i < parameters_.size(); ++i) {  // checked first: a bad grad changes nothing
    const Tensor& p = parameters_[i];
    const Tensor g = p.grad();
    FFR_CHECK(!g.defined() || (g.shape() == p.shape() && g.dtype() == p.dtype() && g.device() == p.device()),
              "parameter ", names_[i], " is ", p.str(), " but its grad is ", g.str());
    FFR_CHECK(p.dtype() == DType::Float32 || (p.dtype() == DType::Float64 && p.device().is_cpu()), "parameter ",
              names_[i], " is ", p.str(), ": Adam updates float32 parameters (float64 on the CPU)");
  }
  // Parameters grouped by their own step count, as PyTorch keeps one per parameter; all share one
  // count unless some grads were undefined on earlier steps.
  std::map<int64_t, std::vector<AdamTensors>> by_step;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const Tensor& p = parameters_[i];
    const Tensor g = p.grad();
    if (!g.defined()) continue;
    ParameterState& s = state_[i];
    if (!s.exp_avg.defined()) {
      s.exp_avg = Tensor::zeros(p.shape(), p.dtype(), p.device());
      s.exp_avg_sq = Tensor::zeros(p.shape(), p.dtype(), p.device());
    }
    s.step += 1;
    by_step[s.step].push_back({p.detach(), g, s.exp_avg, s.exp_avg_sq});
  }
  AdamHyperParameters hyper;
  hyper.lr = lr_;
  hyper.beta1 = options_.beta1;
  hyper.beta2 = options_.beta2;
  hyper.eps = options_.eps;
  hyper.weight_decay = options_.weight_decay;
  hyper.decoupled_weight_decay = decoupled_weight_decay_;
  std::vector<FusedAdamPlan> previous = std::move(plans_);
  plans_.clear();
  for (const auto& [step, tensors] : by_step) {
    plans_.push_back(take_plan(previous, tensors));
    fused_adam_step(plans_.back(), hyper, step, skip_guard_);
  }
  steps_taken_ += 1;
}

NamedTensors Adam::state_tensors() const {
  NamedTensors out = Optimizer::state_tensors();
  for (size_t i = 0; i < state_.size(); ++i) {
    const ParameterState& s = state_[i];
    if (!s.exp_avg.defined()) continue;
    out.emplace_back(names_[i] + ".step", Tensor::from_vector(std::vector<int64_t>{s.step}, {}));
    out.emplace_back(names_[i] + ".exp_avg", s.exp_avg);
    out.emplace_back(names_[i] + ".exp_avg_sq", s.exp_avg_sq);
  }
  return out;
}

void Adam::load_state(const NamedTensors& state) {
  // Everything is checked before anything changes, so a bad checkpoint leaves the optimizer as it was.
  struct Loaded {
    std::optional<int64_t> step;
    Tensor exp_avg, exp_avg_sq;
  };
  std::vector<Loaded> loaded(parameters_.size());
  std::optional<int64_t> steps_taken;
  for (const auto& [key, tensor] : state) {
    if (key == "step") {
      steps_taken = read_count(key, tensor);
      continue;
    }
    bool known = false;
    for (const char* field : {".step", ".exp_avg_sq", ".exp_avg"}) {
      if (!ends_with(key, field)) continue;
      const std::string name = key.substr(0, key.size() - std::string(field).size());
      const int64_t index = parameter_index(name);
      if (index < 0) continue;
      known = true;
      Loaded& entry = loaded[size_t(index)];
      if (std::string(field) == ".step") {
        entry.step = read_count(key, tensor);
        break;
      }
      const Tensor& p = parameters_[size_t(index)];
      if (!tensor.defined() || tensor.shape() != p.shape() || !is_floating(tensor.dtype()))
        throw InputError("optimizer state \"" + key + "\" is " + tensor.str() + ", its parameter is " + p.str());
      (std::string(field) == ".exp_avg" ? entry.exp_avg : entry.exp_avg_sq) = tensor;
      break;
    }
    if (!known) throw InputError("optimizer state \"" + key + "\" names no parameter of this optimizer");
  }
  for (size_t i = 0; i < loaded.size(); ++i) {
    const Loaded& e = loaded[i];
    const int present = int(e.step.has_value()) + int(e.exp_avg.defined()) + int(e.exp_avg_sq.defined());
    if (present != 0 && present != 3)
      throw InputError("optimizer state for parameter \"" + names_[i] +
                       "\" is incomplete (needs .step, .exp_avg and .exp_avg_sq)");
  }

  if (steps_taken) steps_taken_ = *steps_taken;
  NoGradGuard no_grad;
  for (size_t i = 0; i < loaded.size(); ++i) {
    ParameterState& s = state_[i];
    const Loaded& e = loaded[i];
    if (!e.step) {
      s = ParameterState{};  // no saved state: fresh, as a parameter never updated
      continue;
    }
    const Tensor& p = parameters_[i];
    // Copied into buffers of the parameter's dtype and device (the file may hold CPU tensors).
    if (!s.exp_avg.defined()) {
      s.exp_avg = Tensor::empty(p.shape(), p.dtype(), p.device());
      s.exp_avg_sq = Tensor::empty(p.shape(), p.dtype(), p.device());
    }
    s.exp_avg.copy_(e.exp_avg);
    s.exp_avg_sq.copy_(e.exp_avg_sq);
    s.step = *e.step;
  }
}

}  // namespace ffr
