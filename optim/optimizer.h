// Optimizers over a fixed list of parameters (leaf tensors that require grad).
//
// The host issues the steps, so the step count is a host integer; nothing in step() reads a
// device value. State (moments, per-parameter step counts) is exposed as named tensors so a
// checkpoint can store it and load_state() can put it back.
#pragma once

#include "engine/tensor.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace ffr {


class Optimizer {
 public:
  // `names` label the parameters in state_tensors() (e.g. "layer1.0.conv1.weight"); by default
  // a parameter is named by its position ("0", "1", ...).
  Optimizer(std::vector<Tensor> parameters, double lr, std::vector<std::string> names = {});
  virtual ~Optimizer() = default;
  Optimizer(const Optimizer&) = delete;
  Optimizer& operator=(const Optimizer&) = delete;

  // Updates every parameter whose grad is defined (the others are skipped, as in PyTorch).
  virtual void step() = 0;
  // Zeroes the grads in place (keeps the buffers: no allocation, and CUDA graphs stay valid).
  void zero_grad();

  double lr() const { return lr_; }
  void set_lr(double lr) { lr_ = lr; }
  // How many step() calls have run: what a learning-rate schedule is indexed by.
  int64_t steps_taken() const { return steps_taken_; }

  const std::vector<Tensor>& parameters() const { return parameters_; }
  const std::vector<std::string>& parameter_names() const { return names_; }

  // Named state: "step" (int64 scalar on the CPU) plus what the subclass adds. The tensors are
  // the live buffers (device tensors stay on the device): copy them before the next step to keep
  // a snapshot.
  virtual NamedTensors state_tensors() const;
  // Restores what state_tensors() gave. Unknown names, shapes that do not match and incomplete
  // per-parameter entries throw InputError before anything is changed.
  virtual void load_state(const NamedTensors& state) = 0;

 protected:
  // Index of the parameter called `name`, or -1.
  int64_t parameter_index(const std::string& name) const;
  // The value of a one-element integer state entry; InputError naming it otherwise.
  static int64_t read_count(const std::string& name, const Tensor& tensor);

  std::vector<Tensor> parameters_;
  std::vector<std::string> names_;
  double lr_;
  int64_t steps_taken_ = 0;
};

}  // namespace ffr
