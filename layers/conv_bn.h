// The convolutional building blocks of ResNet: Conv2d and BatchNorm2d modules (PyTorch's
// parameter and buffer names: weight, bias, running_mean, running_var, num_batches_tracked).
#pragma once

#include "engine/rng.h"
#include "kernels/conv2d.h"
#include "layers/module.h"

namespace ffr::comm {
class Communicator;  // engine/comm/communicator.h
}

namespace ffr {

class Conv2d : public Module {
 public:
  // Weight init: torchvision ResNet's kaiming_normal(fan_out, relu); bias (if any) zero.
  Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding,
         bool bias, Rng& rng);
  Tensor forward(const Tensor& x) const;
  const Conv2dParams& params() const { return params_; }
  Tensor weight, bias;

 private:
  Conv2dParams params_;
};

class BatchNorm2d : public Module {
 public:
  explicit BatchNorm2d(int64_t channels, double momentum = 0.1, double eps = 1e-5);
  // Training mode: batch statistics, running stats updated. Eval or frozen: running stats.
  Tensor forward(const Tensor& x);
  // [relu](forward(x) [+ residual]), the tail of a ResNet block. With running statistics (eval or
  // frozen) and nothing needing a gradient, one fused pass (kernels/batch_norm_activation.h).
  Tensor forward_add_relu(const Tensor& x, const Tensor& residual, bool relu);
  // FFR stage 2's "freeze BN": statistics stay fixed even in training mode; with
  // `freeze_affine` the scale and shift stop learning too.
  void set_frozen(bool frozen, bool freeze_affine);
  bool frozen() const { return frozen_; }
  // The host counter follows a loaded num_batches_tracked (a resumed run goes on counting).
  void on_state_loaded() override;
  // num_batches_tracked is written from the host counter here, when the state is read, not once
  // per training step (a launch per layer per step that changes no math).
  void on_state_read() const override;
  int64_t batches_tracked() const { return batches_tracked_; }
  double eps() const { return eps_; }

  Tensor weight, bias, running_mean, running_var, num_batches_tracked;

 private:
  double momentum_, eps_;
  bool frozen_ = false;
  int64_t batches_tracked_ = 0;
  mutable int64_t batches_written_ = 0;  // the value num_batches_tracked holds
  comm::Communicator* sync_ = nullptr;

 public:
  // Data-parallel training with --sync-bn (layers/sync_batch_norm.h): batch statistics over every
  // rank's slice of the global batch. Null: this rank's own (the default, as PyTorch's DDP).
  void set_sync(comm::Communicator* communicator) { sync_ = communicator; }
};

// Every BatchNorm2d inside `root` (for freeze-BN and for tests).
std::vector<BatchNorm2d*> batch_norm_layers(Module& root);

}  // namespace ffr
