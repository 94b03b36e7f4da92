#include "kernels/convert.h"

#include "engine/autograd.h"
#include "engine/bfloat16.h"
#include "engine/error.h"

#include <type_traits>

namespace ffr {

namespace {

template <typename Src>
double read_as_double(const Src* p, int64_t i) { return double(p[i]); }
template <>
double read_as_double<bfloat16>(const bfloat16* p, int64_t i) { return bfloat16_to_float(p[i]); }

template <typename Dst>
void write_from_double(Dst* p, int64_t i, double v) { p[i] = Dst(v); }
template <>
void write_from_double<bfloat16>(bfloat16* p, int64_t i, double v) { p[i] = float_to_bfloat16(float(v)); }
template <>
void write_from_double<float>(float* p, int64_t i, double v) { p[i] = float(v); }

// Integers convert directly (through double, an int64 above 2^53 would lose its low bits);
// everything else goes through double.
template <typename Src, typename Dst>
void convert_typed(const void* src, void* dst, int64_t n) {
  const Src* s = static_cast<const Src*>(src);
  Dst* d = static_cast<Dst*>(dst);
  if constexpr (std::is_integral_v<Src> && std::is_integral_v<Dst>) {
    for (int64_t i = 0; i < n; ++i) d[i] = Dst(s[i]);
  } else {
    for (int64_t i = 0; i < n; ++i) write_from_double<Dst>(d, i, read_as_double<Src>(s, i));
  }
}

template <typename Src>
void convert_from(const void* src, void* dst, DType dst_dtype, int64_t n) {
  switch (dst_dtype) {
    case DType::Float32: return convert_typed<Src, float>(src, dst, n);
    case DType::Float64: return convert_typed<Src, double>(src, dst, n);
    case DType::BFloat16: return convert_typed<Src, bfloat16>(src, dst, n);
    case DType::Int32: return convert_typed<Src, int32_t>(src, dst, n);
    case DType::Int64: return convert_typed<Src, int64_t>(src, dst, n);
  }
}

}  // namespace

void convert_cpu(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t n) {
  switch (src_dtype) {
    case DType::Float32: return convert_from<float>(src, dst, dst_dtype, n);
    case DType::Float64: return convert_from<double>(src, dst, dst_dtype, n);
    case DType::BFloat16: return convert_from<bfloat16>(src, dst, dst_dtype, n);
    case DType::Int32: return convert_from<int32_t>(src, dst, dst_dtype, n);
    case DType::Int64: return convert_from<int64_t>(src, dst, dst_dtype, n);
  }
}

Tensor to_dtype(const Tensor& x, DType dtype) {
  if (x.dtype() == dtype) return x;
  OpScope scope("to_dtype(" + x.str() + " -> " + dtype_name(dtype) + ")");
  Tensor y = Tensor::empty(x.shape(), dtype, x.device());
#ifdef FFR_WITH_CUDA
  if (x.is_cuda()) {
    convert_cuda(x.raw_data(), x.dtype(), y.raw_data(), dtype, x.numel());
  } else
#endif
  {
    convert_cpu(x.raw_data(), x.dtype(), y.raw_data(), dtype, x.numel());
  }
  if (is_floating(x.dtype()) && is_floating(dtype)) {
    const DType input_dtype = x.dtype();
    record_op("to_dtype", y, {x}, [input_dtype](const Tensor& gy) {
      return std::vector<Tensor>{to_dtype(gy, input_dtype)};
    });
  }
  return y;
}

}  // namespace ffr
