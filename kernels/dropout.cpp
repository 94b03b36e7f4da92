#include "kernels/dropout.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "kernels/dispatch.h"

namespace ffr {

// ---- CPU reference: the mask exactly as dropout.h states it ----

void dropout_apply_cpu(const void* in, void* out, int64_t n, DType dtype, PhiloxPosition at, double p) {
  dispatch_cpu_floating(dtype, "dropout", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pin = static_cast<const T*>(in);
    T* pout = static_cast<T*>(out);
    const float threshold = float(p);
    // float32 survivors are x * float(scale), one rounding, as on the GPU.
    const T scale = T(1.0 / (1.0 - p));
    for (int64_t i = 0; i < n; ++i) {
      const bool keep = dropout_keeps(philox_word(at.seed, at.stream, at.offset + uint64_t(i)), threshold);
      pout[i] = keep ? pin[i] * scale : T(0);
    }
  });
}

// ---- dispatch + autograd ----

namespace {

void apply(const Tensor& in, Tensor& out, PhiloxPosition at, double p) {
#ifdef FFR_WITH_CUDA
  if (in.is_cuda()) {
    dropout_apply_cuda(in.raw_data(), out.raw_data(), in.numel(), in.dtype(), at, p);
    return;
  }
#endif
  dropout_apply_cpu(in.raw_data(), out.raw_data(), in.numel(), in.dtype(), at, p);
}

}  // namespace

Tensor dropout(const Tensor& x, double p, bool training, Rng& rng) {
  OpScope scope("dropout(" + x.str() + ", p=" + std::to_string(p) + ")");
  FFR_CHECK(p >= 0.0 && p < 1.0, "dropout probability must be in [0, 1), got ", p);
  if (!training || p == 0.0) return x;
  NvtxRange range("dropout");
  const PhiloxPosition at{rng.seed(), rng.stream(), rng.reserve(uint64_t(x.numel()))};
  Tensor y = Tensor::empty(x.shape(), x.dtype(), x.device());
  apply(x, y, at, p);
  record_op("dropout", y, {x}, [at, p](const Tensor& gy) {
    Tensor gx = Tensor::empty(gy.shape(), gy.dtype(), gy.device());
    apply(gy, gx, at, p);
    return std::vector<Tensor>{gx};
  });
  return y;
}

}  // namespace ffr
