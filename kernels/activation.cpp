#include "kernels/activation.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/parallel.h"
#include "kernels/activation_ops.h"
#include "kernels/dispatch.h"

#include <string>

namespace ffr {

// ---- CPU reference ----

void relu_cpu(const void* x, void* y, int64_t n, DType dtype) {
  dispatch_cpu_floating(dtype, "relu", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = static_cast<const T*>(x);
    T* py = static_cast<T*>(y);
    parallel_for(0, n, kElementwiseGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) py[i] = relu_value<T>(px[i]);
    });
  });
}

void gelu_cpu(const void* x, void* y, int64_t n, DType dtype, GeluApproximation approx) {
  dispatch_cpu_floating(dtype, "gelu", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = static_cast<const T*>(x);
    T* py = static_cast<T*>(y);
    parallel_for(0, n, kElementwiseGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) py[i] = gelu_value<T>(px[i], approx);
    });
  });
}

void relu_backward_cpu(const void* dy, const void* y, void* dx, int64_t n, DType dtype) {
  dispatch_cpu_floating(dtype, "relu backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pdy = static_cast<const T*>(dy);
    const T* py = static_cast<const T*>(y);
    T* pdx = static_cast<T*>(dx);
    parallel_for(0, n, kElementwiseGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) pdx[i] = relu_grad<T>(pdy[i], py[i]);
    });
  });
}

void gelu_backward_cpu(const void* dy, const void* x, void* dx, int64_t n, DType dtype, GeluApproximation approx) {
  dispatch_cpu_floating(dtype, "gelu backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pdy = static_cast<const T*>(dy);
    const T* px = static_cast<const T*>(x);
    T* pdx = static_cast<T*>(dx);
    parallel_for(0, n, kElementwiseGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) pdx[i] = gelu_grad<T>(pdy[i], px[i], approx);
    });
  });
}

// ---- dispatch + autograd ----

namespace {

const char* gelu_name(GeluApproximation approx) { return approx == GeluApproximation::Tanh ? "gelu_tanh" : "gelu"; }

void check_same(const Tensor& dy, const Tensor& saved) {
  FFR_CHECK(dy.shape() == saved.shape() && dy.dtype() == saved.dtype() && dy.device() == saved.device(),
            "gradient ", dy.str(), " does not match ", saved.str());
}

Tensor relu_forward(const Tensor& x) {
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
#ifdef FFR_WITH_CUDA
  if (x.is_cuda()) {
    relu_cuda(x.raw_data(), y.raw_data(), x.numel(), x.dtype());
    return y;
  }
#endif
  relu_cpu(x.raw_data(), y.raw_data(), x.numel(), x.dtype());
  return y;
}

Tensor gelu_forward(const Tensor& x, GeluApproximation approx) {
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
#ifdef FFR_WITH_CUDA
  if (x.is_cuda()) {
    gelu_cuda(x.raw_data(), y.raw_data(), x.numel(), x.dtype(), approx);
    return y;
  }
#endif
  gelu_cpu(x.raw_data(), y.raw_data(), x.numel(), x.dtype(), approx);
  return y;
}

Tensor relu_backward(const Tensor& dy, const Tensor& y) {
  check_same(dy, y);
  Tensor dx = Tensor::empty(y.shape(), y.dtype(), y.device());
#ifdef FFR_WITH_CUDA
  if (y.is_cuda()) {
    relu_backward_cuda(dy.raw_data(), y.raw_data(), dx.raw_data(), y.numel(), y.dtype());
    return dx;
  }
#endif
  relu_backward_cpu(dy.raw_data(), y.raw_data(), dx.raw_data(), y.numel(), y.dtype());
  return dx;
}

Tensor gelu_backward(const Tensor& dy, const Tensor& x, GeluApproximation approx) {
  check_same(dy, x);
  Tensor dx = Tensor::empty(x.shape(), x.dtype(), x.device());
#ifdef FFR_WITH_CUDA
  if (x.is_cuda()) {
    gelu_backward_cuda(dy.raw_data(), x.raw_data(), dx.raw_data(), x.numel(), x.dtype(), approx);
    return dx;
  }
#endif
  gelu_backward_cpu(dy.raw_data(), x.raw_data(), dx.raw_data(), x.numel(), x.dtype(), approx);
  return dx;
}

}  // namespace

Tensor relu(const Tensor& x) {
  OpScope scope("relu(" + x.str() + ")");
  NvtxRange range("relu");
  Tensor y = relu_forward(x);
  // The output alone gives the mask, so x can be freed (or overwritten) after the forward pass.
  record_op("relu", y, {x}, [y_saved = y.detach()](const Tensor& gy) {
    return std::vector<Tensor>{relu_backward(gy, y_saved)};
  });
  return y;
}

Tensor gelu(const Tensor& x, GeluApproximation approx) {
  const char* name = gelu_name(approx);
  OpScope scope(std::string(name) + "(" + x.str() + ")");
  NvtxRange range(name);
  Tensor y = gelu_forward(x, approx);
  record_op(name, y, {x}, [x_saved = x.detach(), approx](const Tensor& gy) {
    return std::vector<Tensor>{gelu_backward(gy, x_saved, approx)};
  });
  return y;
}

}  // namespace ffr
