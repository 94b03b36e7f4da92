#include "kernels/bfloat16_compute.h"

#include "engine/bfloat16.h"
#include "engine/settings.h"

namespace ffr {

namespace {

void round_to_bfloat16_cpu(Tensor& x) {
  float* p = x.data<float>();
  const int64_t n = x.numel();
  for (int64_t i = 0; i < n; ++i) p[i] = bfloat16_to_float(float_to_bfloat16(p[i]));
}

}  // namespace

bool uses_bfloat16_compute(const Tensor& x) {
  return settings().bfloat16_compute && x.dtype() == DType::Float32;
}

Tensor bfloat16_operand(const Tensor& x) {
  const Tensor detached = x.detach();
  if (detached.is_cuda()) return detached.to(DType::BFloat16);
  Tensor rounded = detached.clone();
  round_to_bfloat16_cpu(rounded);
  return rounded;
}

Tensor bfloat16_result_as_float32(Tensor y) {
  if (y.is_cuda()) return y.to(DType::Float32);
  round_to_bfloat16_cpu(y);
  return y;
}

}  // namespace ffr
