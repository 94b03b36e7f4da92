#include "engine/cuda/context.h"
#include "engine/settings.h"
#include "kernels/convert.h"
#include "kernels/cuda/dispatch.cuh"
#include "kernels/gather.h"

#include <type_traits>

namespace ffr {

namespace {

constexpr int kBlock = 256;

#define FFR_GRID_STRIDE(i, n) \
  for (int64_t i = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; i < (n); i += int64_t(gridDim.x) * blockDim.x)

// ---- gather ----

// T is a same-sized unsigned word (the copy never looks at values); out-of-range reads give 0 bits.
template <typename T, typename I>
__global__ void gather_kernel(const T* __restrict__ x, const I* __restrict__ index, T* __restrict__ out,
                              GatherIndexer idx) {
  const int64_t size = idx.x_sizes[idx.dim];
  FFR_GRID_STRIDE(p, idx.index_numel) {
    const int64_t j = int64_t(index[p]);
    out[p] = (j >= 0 && j < size) ? x[idx.x_offset(p, j)] : T(0);
  }
}

// One thread per x element: sums, in index order, the gy entries whose index points at it. Only
// positions sharing its coordinates outside `dim` can, so it scans index.size(dim) candidates.
template <typename T, typename I>
__global__ void gather_backward_scan_kernel(const T* __restrict__ gy, const I* __restrict__ index,
                                            T* __restrict__ gx, GatherIndexer idx) {
  FFR_GRID_STRIDE(p, idx.x_numel) {
    int64_t linear = p, base = 0, target = 0;
    bool inside = true;
    for (int d = kMaxGatherDims - 1; d >= 0; --d) {
      if (d >= idx.ndim) continue;
      const int64_t c = linear % idx.x_sizes[d];
      linear /= idx.x_sizes[d];
      if (d == idx.dim) {
        target = c;
      } else {
        inside = inside && c < idx.index_sizes[d];
        base += c * idx.index_strides[d];
      }
    }
    float acc = 0.f;
    if (inside) {
      const int64_t candidates = idx.index_sizes[idx.dim], stride = idx.index_strides[idx.dim];
      for (int64_t k = 0; k < candidates; ++k) {
        const int64_t q = base + k * stride;
        if (int64_t(index[q]) == target) acc += cuda::to_float(gy[q]);
      }
    }
    gx[p] = cuda::from_float<T>(acc);
  }
}

template <typename T, typename I>
__global__ void gather_backward_atomic_kernel(const T* __restrict__ gy, const I* __restrict__ index,
                                              float* __restrict__ gx, GatherIndexer idx) {
  const int64_t size = idx.x_sizes[idx.dim];
  FFR_GRID_STRIDE(p, idx.index_numel) {
    const int64_t j = int64_t(index[p]);
    if (j >= 0 && j < size) atomicAdd(gx + idx.x_offset(p, j), cuda::to_float(gy[p]));
  }
}

// ---- index_select ----

template <typename T, typename I>
__global__ void index_select_kernel(const T* __restrict__ x, const I* __restrict__ index, T* __restrict__ out,
                                    IndexSelectShape s) {
  FFR_GRID_STRIDE(p, s.outer * s.count * s.inner) {
    const int64_t i = p % s.inner, t = p / s.inner;
    const int64_t k = t % s.count, o = t / s.count;
    const int64_t j = int64_t(index[k]);
    out[p] = (j >= 0 && j < s.rows) ? x[(o * s.rows + j) * s.inner + i] : T(0);
  }
}

// One thread per x element (o, r, i): sums gy[o, k, i] over the k with index[k] == r, in order.
template <typename T, typename I>
__global__ void index_select_backward_scan_kernel(const T* __restrict__ gy, const I* __restrict__ index,
                                                  T* __restrict__ gx, IndexSelectShape s) {
  FFR_GRID_STRIDE(p, s.outer * s.rows * s.inner) {
    const int64_t i = p % s.inner, t = p / s.inner;
    const int64_t r = t % s.rows, o = t / s.rows;
    const T* g = gy + o * s.count * s.inner + i;
    float acc = 0.f;
    for (int64_t k = 0; k < s.count; ++k)
      if (int64_t(index[k]) == r) acc += cuda::to_float(g[k * s.inner]);
    gx[p] = cuda::from_float<T>(acc);
  }
}

template <typename T, typename I>
__global__ void index_select_backward_atomic_kernel(const T* __restrict__ gy, const I* __restrict__ index,
                                                    float* __restrict__ gx, IndexSelectShape s) {
  FFR_GRID_STRIDE(p, s.outer * s.count * s.inner) {
    const int64_t i = p % s.inner, t = p / s.inner;
    const int64_t k = t % s.count, o = t / s.count;
    const int64_t j = int64_t(index[k]);
    if (j >= 0 && j < s.rows) atomicAdd(gx + (o * s.rows + j) * s.inner + i, cuda::to_float(gy[p]));
  }
}

#undef FFR_GRID_STRIDE

// Float atomics need a float32 target: gx itself for float32, else a zeroed scratch that is
// converted into gx afterwards (bfloat16 gx is not rounded at every addition).
template <typename T, typename Scatter>
void scatter_add_through_float(void* gx, int64_t n, Scatter&& scatter) {
  float* acc = nullptr;
  Tensor scratch;
  if constexpr (std::is_same_v<T, float>) {
    acc = static_cast<float*>(gx);
  } else {
    scratch = Tensor::empty({n}, DType::Float32, Device::cuda(cuda::context().device));
    acc = scratch.data<float>();
  }
  FFR_CUDA_CHECK(cudaMemsetAsync(acc, 0, size_t(n) * sizeof(float), cuda::stream()));
  scatter(acc);
  if constexpr (!std::is_same_v<T, float>) convert_cuda(acc, DType::Float32, gx, DType::BFloat16, n);
}

}  // namespace

void gather_cuda(const void* x, const void* index, void* out, DType dtype, DType index_dtype,
                 const GatherIndexer& idx) {
  if (idx.index_numel == 0) return;
  dispatch_index(index_dtype, "gather", [&](auto itag) {
    using I = typename decltype(itag)::type;
    dispatch_element_size(dtype, "gather", [&](auto tag) {
      using T = typename decltype(tag)::type;
      gather_kernel<T, I><<<cuda::blocks_for(idx.index_numel, kBlock), kBlock, 0, cuda::stream()>>>(
          static_cast<const T*>(x), static_cast<const I*>(index), static_cast<T*>(out), idx);
      FFR_CUDA_CHECK_LAUNCH();
    });
  });
}

void gather_backward_cuda(const void* gy, const void* index, void* gx, DType dtype, DType index_dtype,
                          const GatherIndexer& idx) {
  if (idx.x_numel == 0) return;
  dispatch_index(index_dtype, "gather backward", [&](auto itag) {
    using I = typename decltype(itag)::type;
    cuda::dispatch_floating(dtype, "gather backward", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* pg = static_cast<const T*>(gy);
      const I* pi = static_cast<const I*>(index);
      if (settings().deterministic || idx.index_sizes[idx.dim] <= kGatherScanMaxCandidates) {
        gather_backward_scan_kernel<T, I><<<cuda::blocks_for(idx.x_numel, kBlock), kBlock, 0, cuda::stream()>>>(
            pg, pi, static_cast<T*>(gx), idx);
        FFR_CUDA_CHECK_LAUNCH();
        return;
      }
      scatter_add_through_float<T>(gx, idx.x_numel, [&](float* acc) {
        gather_backward_atomic_kernel<T, I><<<cuda::blocks_for(idx.index_numel, kBlock), kBlock, 0,
                                              cuda::stream()>>>(pg, pi, acc, idx);
        FFR_CUDA_CHECK_LAUNCH();
      });
    });
  });
}

void index_select_cuda(const void* x, const void* index, void* out, DType dtype, DType index_dtype,
                       const IndexSelectShape& s) {
  const int64_t n = s.outer * s.count * s.inner;
  if (n == 0) return;
  dispatch_index(index_dtype, "index_select", [&](auto itag) {
    using I = typename decltype(itag)::type;
    dispatch_element_size(dtype, "index_select", [&](auto tag) {
      using T = typename decltype(tag)::type;
      index_select_kernel<T, I><<<cuda::blocks_for(n, kBlock), kBlock, 0, cuda::stream()>>>(
          static_cast<const T*>(x), static_cast<const I*>(index), static_cast<T*>(out), s);
      FFR_CUDA_CHECK_LAUNCH();
    });
  });
}

void index_select_backward_cuda(const void* gy, const void* index, void* gx, DType dtype, DType index_dtype,
                                const IndexSelectShape& s) {
  const int64_t x_numel = s.outer * s.rows * s.inner;
  if (x_numel == 0) return;
  dispatch_index(index_dtype, "index_select backward", [&](auto itag) {
    using I = typename decltype(itag)::type;
    cuda::dispatch_floating(dtype, "index_select backward", [&](auto tag) {
      using T = typename decltype(tag)::type;
      const T* pg = static_cast<const T*>(gy);
      const I* pi = static_cast<const I*>(index);
      if (settings().deterministic || s.count <= kGatherScanMaxCandidates) {
        index_select_backward_scan_kernel<T, I><<<cuda::blocks_for(x_numel, kBlock), kBlock, 0, cuda::stream()>>>(
            pg, pi, static_cast<T*>(gx), s);
        FFR_CUDA_CHECK_LAUNCH();
        return;
      }
      scatter_add_through_float<T>(gx, x_numel, [&](float* acc) {
        index_select_backward_atomic_kernel<T, I><<<cuda::blocks_for(s.outer * s.count * s.inner, kBlock), kBlock,
                                                    0, cuda::stream()>>>(pg, pi, acc, s);
        FFR_CUDA_CHECK_LAUNCH();
      });
    });
  });
}

}  // namespace ffr
