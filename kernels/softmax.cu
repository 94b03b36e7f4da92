#include "engine/cuda/context.h"
#include "kernels/cuda/dispatch.cuh"
#include "kernels/cuda/online_softmax.cuh"
#include "kernels/softmax.h"

namespace ffr {

namespace {

// Last-axis softmax (inner == 1) is the common case (classifier logits, attention scores): rows
// are contiguous, so a team of threads reads a row with coalesced loads and reduces it with
// shuffles. Rows up to kWarpMaxDim get a warp each (at most 32 elements per lane, several rows
// per block); longer rows get a whole block. The second pass re-reads the row from L1/L2.
constexpr int64_t kWarpMaxDim = 1024;
constexpr int kWarpTeamBlock = 128;  // 4 rows per block
constexpr int kBlockTeam = 256;      // one row per block
constexpr int kStridedBlock = 256;

// The row loop is uniform across a team (a warp, or the whole block when kTeam == blockDim.x),
// so the shuffles and barriers inside the reductions are always reached by every member.
template <typename T, bool kLog, int kTeam>
__global__ void softmax_rows_forward(const T* x, T* y, int64_t rows, int64_t dim) {
  const int teams_per_block = blockDim.x / kTeam;
  const int lane = threadIdx.x % kTeam;
  for (int64_t row = int64_t(blockIdx.x) * teams_per_block + threadIdx.x / kTeam; row < rows;
       row += int64_t(gridDim.x) * teams_per_block) {
    const T* xr = x + row * dim;
    T* yr = y + row * dim;
    cuda::MaxSum acc = cuda::max_sum_empty();
    for (int64_t d = lane; d < dim; d += kTeam) acc = cuda::max_sum_add(acc, cuda::to_float(xr[d]));
    acc = cuda::team_reduce<kTeam>(acc);
    if constexpr (kLog) {
      // (x - max) - log(sum), not x - (max + log(sum)): the latter loses the small result's
      // digits to the large max.
      const float log_sum = logf(acc.sum);
      for (int64_t d = lane; d < dim; d += kTeam) yr[d] = cuda::from_float<T>((cuda::to_float(xr[d]) - acc.max) - log_sum);
    } else {
      const float inv_sum = 1.0f / acc.sum;
      for (int64_t d = lane; d < dim; d += kTeam) yr[d] = cuda::from_float<T>(expf(cuda::to_float(xr[d]) - acc.max) * inv_sum);
    }
  }
}

template <typename T, bool kLog, int kTeam>
__global__ void softmax_rows_backward(const T* y, const T* dy, T* dx, int64_t rows, int64_t dim) {
  const int teams_per_block = blockDim.x / kTeam;
  const int lane = threadIdx.x % kTeam;
  for (int64_t row = int64_t(blockIdx.x) * teams_per_block + threadIdx.x / kTeam; row < rows;
       row += int64_t(gridDim.x) * teams_per_block) {
    const T* yr = y + row * dim;
    const T* gr = dy + row * dim;
    T* dxr = dx + row * dim;
    float dot = 0.0f;  // softmax: sum(dy * y); log_softmax: sum(dy)
    for (int64_t d = lane; d < dim; d += kTeam)
      dot += kLog ? cuda::to_float(gr[d]) : cuda::to_float(gr[d]) * cuda::to_float(yr[d]);
    dot = cuda::team_reduce_sum<kTeam>(dot);
    for (int64_t d = lane; d < dim; d += kTeam) {
      const float yv = cuda::to_float(yr[d]), g = cuda::to_float(gr[d]);
      dxr[d] = cuda::from_float<T>(kLog ? g - expf(yv) * dot : yv * (g - dot));
    }
  }
}

// Any other axis: a thread per (outer, inner) column walks its dim elements `inner` apart;
// neighbouring threads take neighbouring columns, so each step's loads are still coalesced.
template <typename T, bool kLog>
__global__ void softmax_strided_forward(const T* x, T* y, int64_t outer, int64_t dim, int64_t inner) {
  const int64_t columns = outer * inner;
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < columns; c += int64_t(gridDim.x) * blockDim.x) {
    const int64_t base = (c / inner) * dim * inner + c % inner;
    cuda::MaxSum acc = cuda::max_sum_empty();
    for (int64_t d = 0; d < dim; ++d) acc = cuda::max_sum_add(acc, cuda::to_float(x[base + d * inner]));
    const float log_sum = logf(acc.sum), inv_sum = 1.0f / acc.sum;
    for (int64_t d = 0; d < dim; ++d) {
      const float shifted = cuda::to_float(x[base + d * inner]) - acc.max;
      y[base + d * inner] = cuda::from_float<T>(kLog ? shifted - log_sum : expf(shifted) * inv_sum);
    }
  }
}

template <typename T, bool kLog>
__global__ void softmax_strided_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t dim, int64_t inner) {
  const int64_t columns = outer * inner;
  for (int64_t c = blockIdx.x * int64_t(blockDim.x) + threadIdx.x; c < columns; c += int64_t(gridDim.x) * blockDim.x) {
    const int64_t base = (c / inner) * dim * inner + c % inner;
    float dot = 0.0f;
    for (int64_t d = 0; d < dim; ++d) {
      const int64_t at = base + d * inner;
      dot += kLog ? cuda::to_float(dy[at]) : cuda::to_float(dy[at]) * cuda::to_float(y[at]);
    }
    for (int64_t d = 0; d < dim; ++d) {
      const int64_t at = base + d * inner;
      const float yv = cuda::to_float(y[at]), g = cuda::to_float(dy[at]);
      dx[at] = cuda::from_float<T>(kLog ? g - expf(yv) * dot : yv * (g - dot));
    }
  }
}

template <typename T, bool kLog>
void launch_forward(const T* x, T* y, int64_t outer, int64_t dim, int64_t inner) {
  const cudaStream_t stream = cuda::stream();
  if (inner == 1 && dim <= kWarpMaxDim) {
    softmax_rows_forward<T, kLog, 32>
        <<<cuda::blocks_for(outer, kWarpTeamBlock / 32), kWarpTeamBlock, 0, stream>>>(x, y, outer, dim);
  } else if (inner == 1) {
    softmax_rows_forward<T, kLog, kBlockTeam><<<cuda::blocks_for(outer, 1), kBlockTeam, 0, stream>>>(x, y, outer, dim);
  } else {
    softmax_strided_forward<T, kLog>
        <<<cuda::blocks_for(outer * inner, kStridedBlock), kStridedBlock, 0, stream>>>(x, y, outer, dim, inner);
  }
  FFR_CUDA_CHECK_LAUNCH();
}

template <typename T, bool kLog>
void launch_backward(const T* y, const T* dy, T* dx, int64_t outer, int64_t dim, int64_t inner) {
  const cudaStream_t stream = cuda::stream();
  if (inner == 1 && dim <= kWarpMaxDim) {
    softmax_rows_backward<T, kLog, 32>
        <<<cuda::blocks_for(outer, kWarpTeamBlock / 32), kWarpTeamBlock, 0, stream>>>(y, dy, dx, outer, dim);
  } else if (inner == 1) {
    softmax_rows_backward<T, kLog, kBlockTeam>
        <<<cuda::blocks_for(outer, 1), kBlockTeam, 0, stream>>>(y, dy, dx, outer, dim);
  } else {
    softmax_strided_backward<T, kLog>
        <<<cuda::blocks_for(outer * inner, kStridedBlock), kStridedBlock, 0, stream>>>(y, dy, dx, outer, dim, inner);
  }
  FFR_CUDA_CHECK_LAUNCH();
}

}  // namespace

void softmax_forward_cuda(const void* x, void* y, DType dtype, int64_t outer, int64_t dim, int64_t inner, bool log) {
  if (outer * dim * inner == 0) return;
  cuda::dispatch_floating(dtype, log ? "log_softmax" : "softmax", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = static_cast<const T*>(x);
    T* py = static_cast<T*>(y);
    if (log) {
      launch_forward<T, true>(px, py, outer, dim, inner);
    } else {
      launch_forward<T, false>(px, py, outer, dim, inner);
    }
  });
}

void softmax_backward_cuda(const void* y, const void* dy, void* dx, DType dtype, int64_t outer, int64_t dim,
                           int64_t inner, bool log) {
  if (outer * dim * inner == 0) return;
  cuda::dispatch_floating(dtype, log ? "log_softmax backward" : "softmax backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* py = static_cast<const T*>(y);
    const T* pdy = static_cast<const T*>(dy);
    T* pdx = static_cast<T*>(dx);
    if (log) {
      launch_backward<T, true>(py, pdy, pdx, outer, dim, inner);
    } else {
      launch_backward<T, false>(py, pdy, pdx, outer, dim, inner);
    }
  });
}

}  // namespace ffr
