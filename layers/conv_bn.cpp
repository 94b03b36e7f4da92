#include "layers/conv_bn.h"

#include "engine/nvtx.h"
#include "kernels/activation.h"
#include "kernels/batch_norm.h"
#include "kernels/batch_norm_activation.h"
#include "kernels/elementwise.h"
#include "layers/sync_batch_norm.h"
#include "layers/layer_probe.h"
#include "layers/init.h"

namespace ffr {

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, int64_t kernel, int64_t stride, int64_t padding,
               bool with_bias, Rng& rng) {
  params_.stride = {stride, stride};
  params_.padding = {padding, padding};
  register_parameter("weight", weight,
                     init::kaiming_normal_fan_out({out_channels, in_channels, kernel, kernel},
                                                  out_channels * kernel * kernel, rng));
  register_parameter("bias", bias, with_bias ? Tensor::zeros({out_channels}) : Tensor());
}

Tensor Conv2d::forward(const Tensor& x) const {
  NvtxRange range("Conv2d");
  return probe_output(*this, x, conv2d(x, weight, bias, params_));
}

BatchNorm2d::BatchNorm2d(int64_t channels, double momentum, double eps) : momentum_(momentum), eps_(eps) {
  register_parameter("weight", weight, Tensor::ones({channels}));
  register_parameter("bias", bias, Tensor::zeros({channels}));
  register_buffer("running_mean", running_mean, Tensor::zeros({channels}));
  register_buffer("running_var", running_var, Tensor::ones({channels}));
  register_buffer("num_batches_tracked", num_batches_tracked, Tensor::zeros({}, DType::Int64));
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  NvtxRange range("BatchNorm2d");
  const bool use_batch_stats = is_training() && !frozen_;
  // torchvision keeps this counter; it does not change the math (momentum is fixed), so it is
  // counted on the host and written to the buffer only when the state is read (on_state_read).
  if (use_batch_stats) ++batches_tracked_;
  if (use_batch_stats && sync_ != nullptr) {
    return probe_output(*this, x, sync_batch_norm(x, weight, bias, running_mean, running_var, momentum_, eps_, *sync_));
  }
  return probe_output(*this, x,
                      batch_norm(x, weight, bias, running_mean, running_var, use_batch_stats, momentum_, eps_));
}

Tensor BatchNorm2d::forward_add_relu(const Tensor& x, const Tensor& residual, bool relu) {
  const bool use_batch_stats = is_training() && !frozen_;
  if (use_batch_stats || layer_probe_installed()) {
    Tensor y = forward(x);
    if (residual.defined()) y = add(y, residual);
    return relu ? ffr::relu(y) : y;
  }
  NvtxRange range("BatchNorm2d");
  return batch_norm_eval_add_relu(x, weight, bias, running_mean, running_var, eps_, residual, relu);
}

void BatchNorm2d::on_state_loaded() { batches_tracked_ = batches_written_ = int64_t(num_batches_tracked.item()); }

void BatchNorm2d::on_state_read() const {
  if (batches_written_ == batches_tracked_) return;
  Tensor counter = num_batches_tracked;  // shares the buffer
  counter.fill_(double(batches_tracked_));
  batches_written_ = batches_tracked_;
}

void BatchNorm2d::set_frozen(bool frozen, bool freeze_affine) {
  frozen_ = frozen;
  weight.set_requires_grad(!(frozen && freeze_affine));
  bias.set_requires_grad(!(frozen && freeze_affine));
}

std::vector<BatchNorm2d*> batch_norm_layers(Module& root) {
  std::vector<BatchNorm2d*> out;
  for (Module* m : root.modules())
    if (auto* bn = dynamic_cast<BatchNorm2d*>(m)) out.push_back(bn);
  return out;
}

}  // namespace ffr
