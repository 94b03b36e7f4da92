// 2-D pooling over NCHW tensors, with PyTorch's semantics (floor mode, dilation 1):
//   Hout = (H + 2 padding - kernel) / stride + 1, and padding at most kernel / 2.
//   max_pool2d pads with -inf (a padded position never wins; NaN propagates) and routes the
//   gradient to the first maximum of each window (indices saved as int32 in the forward).
//   avg_pool2d divides by the whole window, padding included (count_include_pad, PyTorch's
//   default), or by the real positions only.
//   global_avg_pool2d: [N, C, H, W] -> [N, C], ResNet's adaptive average pool to 1x1 + flatten.
// Backward kernels gather (each input position sums the windows that cover it) instead of
// scattering with atomics, so every result is bit-identical run to run.
#pragma once

#include "engine/host_device.h"
#include "engine/tensor.h"

#include <array>
#include <cstdint>

namespace ffr {

Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding = {0, 0});
Tensor avg_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding = {0, 0}, bool count_include_pad = true);
Tensor global_avg_pool2d(const Tensor& x);

struct Pool2dGeometry {
  int64_t batch = 0, channels = 0, in_height = 0, in_width = 0;
  int64_t out_height = 0, out_width = 0;
  int64_t kernel_height = 1, kernel_width = 1;
  int64_t stride_height = 1, stride_width = 1;
  int64_t pad_height = 0, pad_width = 0;

  int64_t planes() const { return batch * channels; }
};

// Window arithmetic shared by the CPU reference and the CUDA kernels.
//
// The input rows [first, last) of output row `o` (clipped to the input), and the size of the
// window clipped to the padded input only (PyTorch's count_include_pad divisor).
struct PoolWindow {
  int64_t first, last, padded_size;
};
FFR_HOST_DEVICE PoolWindow pool_window(int64_t o, int64_t stride, int64_t pad, int64_t kernel, int64_t in_size) {
  const int64_t start = o * stride - pad;
  const int64_t end = start + kernel < in_size + pad ? start + kernel : in_size + pad;
  return {start > 0 ? start : 0, end < in_size ? end : in_size, end - start};
}
// The output rows [first, last) whose windows cover input row `i`.
struct PoolCover {
  int64_t first, last;
};
FFR_HOST_DEVICE PoolCover pool_cover(int64_t i, int64_t stride, int64_t pad, int64_t kernel, int64_t out_size) {
  const int64_t first = i + pad < kernel ? 0 : (i + pad - kernel) / stride + 1;
  const int64_t last = (i + pad) / stride + 1;
  return {first, last < out_size ? last : out_size};
}
// The divisor of output (oh, ow) of avg_pool2d.
FFR_HOST_DEVICE int64_t avg_pool_divisor(const PoolWindow& h, const PoolWindow& w, bool count_include_pad) {
  return count_include_pad ? h.padded_size * w.padded_size : (h.last - h.first) * (w.last - w.first);
}

// Checks x [N, C, H, W] against the window (ffr::Error if it does not fit) and returns the geometry.
Pool2dGeometry pool2d_geometry(const Shape& x_shape, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                               std::array<int64_t, 2> padding);

// Launchers over contiguous buffers of `dtype`. indices: int32, position h W + w of each window's
// maximum within its input plane (the forward skips them when given nullptr).
void max_pool2d_forward_cpu(const void* x, void* y, int32_t* indices, DType dtype, const Pool2dGeometry& g);
void max_pool2d_backward_cpu(const void* dy, const int32_t* indices, void* dx, DType dtype, const Pool2dGeometry& g);
void avg_pool2d_forward_cpu(const void* x, void* y, DType dtype, const Pool2dGeometry& g, bool count_include_pad);
void avg_pool2d_backward_cpu(const void* dy, void* dx, DType dtype, const Pool2dGeometry& g, bool count_include_pad);
// x viewed as [rows, spatial] -> y [rows] (the mean of each row), and its gradient.
void global_avg_pool2d_forward_cpu(const void* x, void* y, DType dtype, int64_t rows, int64_t spatial);
void global_avg_pool2d_backward_cpu(const void* dy, void* dx, DType dtype, int64_t rows, int64_t spatial);

void max_pool2d_forward_cuda(const void* x, void* y, int32_t* indices, DType dtype, const Pool2dGeometry& g);
void max_pool2d_backward_cuda(const void* dy, const int32_t* indices, void* dx, DType dtype, const Pool2dGeometry& g);
void avg_pool2d_forward_cuda(const void* x, void* y, DType dtype, const Pool2dGeometry& g, bool count_include_pad);
void avg_pool2d_backward_cuda(const void* dy, void* dx, DType dtype, const Pool2dGeometry& g, bool count_include_pad);
void global_avg_pool2d_forward_cuda(const void* x, void* y, DType dtype, int64_t rows, int64_t spatial);
void global_avg_pool2d_backward_cuda(const void* dy, void* dx, DType dtype, int64_t rows, int64_t spatial);

}  // namespace ffr
