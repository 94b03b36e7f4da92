#include "engine/cuda/context.h"
#include "kernels/convert.h"
#include "kernels/cuda/dispatch.cuh"

#include <type_traits>

namespace ffr {

namespace {

template <typename T> __device__ __forceinline__ double load_double(const T* p, int64_t i) { return double(p[i]); }
template <> __device__ __forceinline__ double load_double<__nv_bfloat16>(const __nv_bfloat16* p, int64_t i) {
  return double(__bfloat162float(p[i]));
}
template <typename T> __device__ __forceinline__ void store_double(T* p, int64_t i, double v) { p[i] = T(v); }
template <> __device__ __forceinline__ void store_double<float>(float* p, int64_t i, double v) { p[i] = float(v); }
template <> __device__ __forceinline__ void store_double<__nv_bfloat16>(__nv_bfloat16* p, int64_t i, double v) {
  p[i] = __float2bfloat16(float(v));  // round to nearest even, as the CPU path
}

template <typename Src, typename Dst>
__global__ void convert_kernel(const Src* src, Dst* dst, int64_t n) {
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < n; i += int64_t(gridDim.x) * blockDim.x) {
    // Integers convert directly (an int64 above 2^53 would lose its low bits through double).
    if constexpr (std::is_integral_v<Src> && std::is_integral_v<Dst>) {
      dst[i] = Dst(src[i]);
    } else {
      store_double<Dst>(dst, i, load_double<Src>(src, i));
    }
  }
}

template <typename F>
void dispatch_any(DType dtype, F&& f) {
  switch (dtype) {
    case DType::Float32: return f(TypeTag<float>{});
    case DType::Float64: return f(TypeTag<double>{});
    case DType::BFloat16: return f(TypeTag<__nv_bfloat16>{});
    case DType::Int32: return f(TypeTag<int32_t>{});
    case DType::Int64: return f(TypeTag<int64_t>{});
  }
}

}  // namespace

void convert_cuda(const void* src, DType src_dtype, void* dst, DType dst_dtype, int64_t n) {
  if (n == 0) return;
  dispatch_any(src_dtype, [&](auto src_tag) {
    dispatch_any(dst_dtype, [&](auto dst_tag) {
      using S = typename decltype(src_tag)::type;
      using D = typename decltype(dst_tag)::type;
      convert_kernel<S, D><<<cuda::blocks_for(n), 256, 0, cuda::stream()>>>(static_cast<const S*>(src),
                                                                            static_cast<D*>(dst), n);
      FFR_CUDA_CHECK_LAUNCH();
    });
  });
}

}  // namespace ffr
