#include "layers/sync_batch_norm.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "kernels/concat.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "kernels/slice.h"

namespace ffr {

Tensor all_reduce_sum_differentiable(const Tensor& x, comm::Communicator& communicator) {
  Tensor y = x.detach().clone();
  communicator.all_reduce_sum(y);
  // Every rank's loss depends on the sum, so d(total loss)/dx_r is the sum of the ranks' dy.
  record_op("all_reduce_sum", y, {x}, [&communicator](const Tensor& gy) {
    Tensor g = gy.detach().clone();
    communicator.all_reduce_sum(g);
    return std::vector<Tensor>{g};
  });
  return y;
}

Tensor sync_batch_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, Tensor& running_mean,
                       Tensor& running_var, double momentum, double eps, comm::Communicator& communicator) {
  FFR_CHECK(x.shape().size() == 4 && x.dtype() == DType::Float32, "sync batch norm: ", x.str(),
            " (expected float32 [N, C, H, W]; --sync-bn runs in float32)");
  const int64_t channels = x.size(1);
  Tensor count = Tensor::from_vector(std::vector<double>{double(x.size(0) * x.size(2) * x.size(3))}, {1});
  communicator.all_reduce_sum(count);
  const double n = count.to_vector<double>()[0];
  FFR_CHECK(n > 1, "sync batch norm: ", n, " value(s) per channel over all ranks (need more than one)");
  // The local sums of x and x^2, all-reduced in one call.
  const Tensor local = concat({sum(x, {0, 2, 3}), sum(x * x, {0, 2, 3})}, 0);
  const Tensor global = all_reduce_sum_differentiable(local, communicator);
  const Tensor mean = slice(global, 0, 0, channels) * (1.0 / n);
  const Tensor mean_of_squares = slice(global, 0, channels, 2 * channels) * (1.0 / n);
  const Tensor var = mean_of_squares - mean * mean;  // biased, as batch_norm normalises
  {
    NoGradGuard no_grad;
    // running = (1 - momentum) running + momentum batch, with the unbiased variance (PyTorch).
    running_mean.copy_(running_mean * (1.0 - momentum) + mean.detach() * momentum);
    running_var.copy_(running_var * (1.0 - momentum) + var.detach() * (momentum * n / (n - 1.0)));
  }
  const Shape per_channel{1, channels, 1, 1};
  const Tensor invstd = (Tensor::ones({channels}, DType::Float32, x.device()) / sqrt(var + eps)).reshape(per_channel);
  Tensor y = (x - mean.reshape(per_channel)) * invstd;
  if (weight.defined()) y = y * weight.reshape(per_channel);
  if (bias.defined()) y = y + bias.reshape(per_channel);
  return y;
}

}  // namespace ffr
