#include "kernels/pooling.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/parallel.h"
#include "kernels/dispatch.h"

#include <cmath>
#include <cstring>
#include <limits>

namespace ffr {

Pool2dGeometry pool2d_geometry(const Shape& x_shape, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                               std::array<int64_t, 2> padding) {
  FFR_CHECK(x_shape.size() == 4, "pooling expects x [N, C, H, W], got ", shape_str(x_shape));
  for (int i = 0; i < 2; ++i) {
    FFR_CHECK(kernel[i] >= 1, "pooling: kernel must be >= 1, got ", kernel[i]);
    FFR_CHECK(stride[i] >= 1, "pooling: stride must be >= 1, got ", stride[i]);
    // A window of padding only would have no input to pool (PyTorch's rule).
    FFR_CHECK(padding[i] >= 0 && padding[i] <= kernel[i] / 2, "pooling: padding ", padding[i],
              " must be in [0, kernel / 2] for kernel ", kernel[i]);
  }
  Pool2dGeometry g;
  g.batch = x_shape[0];
  g.channels = x_shape[1];
  g.in_height = x_shape[2];
  g.in_width = x_shape[3];
  g.kernel_height = kernel[0];
  g.kernel_width = kernel[1];
  g.stride_height = stride[0];
  g.stride_width = stride[1];
  g.pad_height = padding[0];
  g.pad_width = padding[1];
  FFR_CHECK(g.in_height + 2 * g.pad_height >= g.kernel_height && g.in_width + 2 * g.pad_width >= g.kernel_width,
            "pooling: kernel ", kernel[0], "x", kernel[1], " larger than the padded input ", shape_str(x_shape));
  FFR_CHECK(g.in_height * g.in_width <= std::numeric_limits<int32_t>::max(), "pooling: plane of ",
            shape_str(x_shape), " too large for int32 indices");
  g.out_height = (g.in_height + 2 * g.pad_height - g.kernel_height) / g.stride_height + 1;
  g.out_width = (g.in_width + 2 * g.pad_width - g.kernel_width) / g.stride_width + 1;
  return g;
}

// ---- CPU reference ----
// Threads take whole (n, c) planes: a plane's windows, and its gradient scatter, stay on one thread.

void max_pool2d_forward_cpu(const void* x, void* y, int32_t* indices, DType dtype, const Pool2dGeometry& g) {
  dispatch_cpu_floating(dtype, "max_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t in_plane = g.in_height * g.in_width, out_plane = g.out_height * g.out_width;
    parallel_for(0, g.planes(), rows_grain(in_plane), [&](int64_t p_begin, int64_t p_end) {
    for (int64_t p = p_begin; p < p_end; ++p) {
      const T* xp = static_cast<const T*>(x) + p * in_plane;
      for (int64_t oh = 0; oh < g.out_height; ++oh) {
        const PoolWindow wh = pool_window(oh, g.stride_height, g.pad_height, g.kernel_height, g.in_height);
        for (int64_t ow = 0; ow < g.out_width; ++ow) {
          const PoolWindow ww = pool_window(ow, g.stride_width, g.pad_width, g.kernel_width, g.in_width);
          T best = -std::numeric_limits<T>::infinity();
          int64_t best_at = wh.first * g.in_width + ww.first;
          for (int64_t h = wh.first; h < wh.last; ++h)
            for (int64_t w = ww.first; w < ww.last; ++w) {
              const T v = xp[h * g.in_width + w];
              // Selects, not a branch: which value wins is data-dependent and mispredicts half
              // the time. NaN wins (and then stays: nothing compares greater than NaN).
              const bool take = (v > best) | (v != v);
              best = take ? v : best;
              best_at = take ? h * g.in_width + w : best_at;
            }
          const int64_t o = p * out_plane + oh * g.out_width + ow;
          static_cast<T*>(y)[o] = best;
          if (indices != nullptr) indices[o] = int32_t(best_at);
        }
      }
    }
    });
  });
}

void max_pool2d_backward_cpu(const void* dy, const int32_t* indices, void* dx, DType dtype, const Pool2dGeometry& g) {
  dispatch_cpu_floating(dtype, "max_pool2d backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t in_plane = g.in_height * g.in_width, out_plane = g.out_height * g.out_width;
    parallel_for(0, g.planes(), rows_grain(in_plane), [&](int64_t p_begin, int64_t p_end) {
      std::memset(static_cast<T*>(dx) + p_begin * in_plane, 0, size_t((p_end - p_begin) * in_plane) * sizeof(T));
      for (int64_t p = p_begin; p < p_end; ++p)
        for (int64_t o = 0; o < out_plane; ++o)
          static_cast<T*>(dx)[p * in_plane + indices[p * out_plane + o]] +=
              static_cast<const T*>(dy)[p * out_plane + o];
    });
  });
}

void avg_pool2d_forward_cpu(const void* x, void* y, DType dtype, const Pool2dGeometry& g, bool count_include_pad) {
  dispatch_cpu_floating(dtype, "avg_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t in_plane = g.in_height * g.in_width, out_plane = g.out_height * g.out_width;
    parallel_for(0, g.planes(), rows_grain(in_plane), [&](int64_t p_begin, int64_t p_end) {
    for (int64_t p = p_begin; p < p_end; ++p) {
      const T* xp = static_cast<const T*>(x) + p * in_plane;
      for (int64_t oh = 0; oh < g.out_height; ++oh) {
        const PoolWindow wh = pool_window(oh, g.stride_height, g.pad_height, g.kernel_height, g.in_height);
        for (int64_t ow = 0; ow < g.out_width; ++ow) {
          const PoolWindow ww = pool_window(ow, g.stride_width, g.pad_width, g.kernel_width, g.in_width);
          double sum = 0.0;
          for (int64_t h = wh.first; h < wh.last; ++h)
            for (int64_t w = ww.first; w < ww.last; ++w) sum += double(xp[h * g.in_width + w]);
          static_cast<T*>(y)[p * out_plane + oh * g.out_width + ow] =
              T(sum / double(avg_pool_divisor(wh, ww, count_include_pad)));
        }
      }
    }
    });
  });
}

void avg_pool2d_backward_cpu(const void* dy, void* dx, DType dtype, const Pool2dGeometry& g, bool count_include_pad) {
  dispatch_cpu_floating(dtype, "avg_pool2d backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t in_plane = g.in_height * g.in_width, out_plane = g.out_height * g.out_width;
    parallel_for(0, g.planes(), rows_grain(in_plane), [&](int64_t p_begin, int64_t p_end) {
    std::memset(static_cast<T*>(dx) + p_begin * in_plane, 0, size_t((p_end - p_begin) * in_plane) * sizeof(T));
    for (int64_t p = p_begin; p < p_end; ++p) {
      T* dxp = static_cast<T*>(dx) + p * in_plane;
      for (int64_t oh = 0; oh < g.out_height; ++oh) {
        const PoolWindow wh = pool_window(oh, g.stride_height, g.pad_height, g.kernel_height, g.in_height);
        for (int64_t ow = 0; ow < g.out_width; ++ow) {
          const PoolWindow ww = pool_window(ow, g.stride_width, g.pad_width, g.kernel_width, g.in_width);
          const T share = static_cast<const T*>(dy)[p * out_plane + oh * g.out_width + ow] /
                          T(avg_pool_divisor(wh, ww, count_include_pad));
          for (int64_t h = wh.first; h < wh.last; ++h)
            for (int64_t w = ww.first; w < ww.last; ++w) dxp[h * g.in_width + w] += share;
        }
      }
    }
    });
  });
}

void global_avg_pool2d_forward_cpu(const void* x, void* y, DType dtype, int64_t rows, int64_t spatial) {
  dispatch_cpu_floating(dtype, "global_avg_pool2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    parallel_for(0, rows, rows_grain(spatial), [&](int64_t r_begin, int64_t r_end) {
      for (int64_t r = r_begin; r < r_end; ++r) {
        const T* xr = static_cast<const T*>(x) + r * spatial;
        double sum = 0.0;
        for (int64_t i = 0; i < spatial; ++i) sum += double(xr[i]);
        static_cast<T*>(y)[r] = T(sum / double(spatial));
      }
    });
  });
}

void global_avg_pool2d_backward_cpu(const void* dy, void* dx, DType dtype, int64_t rows, int64_t spatial) {
  dispatch_cpu_floating(dtype, "global_avg_pool2d backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    parallel_for(0, rows, rows_grain(spatial), [&](int64_t r_begin, int64_t r_end) {
      for (int64_t r = r_begin; r < r_end; ++r) {
        const T share = static_cast<const T*>(dy)[r] / T(spatial);
        T* dxr = static_cast<T*>(dx) + r * spatial;
        for (int64_t i = 0; i < spatial; ++i) dxr[i] = share;
      }
    });
  });
}

// ---- dispatch + autograd ----

namespace {

std::string pool_description(const char* op, const Tensor& x, std::array<int64_t, 2> kernel,
                             std::array<int64_t, 2> stride, std::array<int64_t, 2> padding) {
  return detail::concat(op, "(", x.str(), ", kernel ", kernel[0], "x", kernel[1], ", stride ", stride[0], "x",
                        stride[1], ", padding ", padding[0], "x", padding[1], ")");
}

Shape output_shape(const Pool2dGeometry& g) { return {g.batch, g.channels, g.out_height, g.out_width}; }
Shape input_shape(const Pool2dGeometry& g) { return {g.batch, g.channels, g.in_height, g.in_width}; }

Tensor max_pool2d_backward(const Tensor& dy, const Tensor& indices, const Pool2dGeometry& g) {
  Tensor dx = Tensor::empty(input_shape(g), dy.dtype(), dy.device());
  if (dx.numel() == 0) return dx;
#ifdef FFR_WITH_CUDA
  if (dy.is_cuda()) {
    max_pool2d_backward_cuda(dy.raw_data(), indices.data<int32_t>(), dx.raw_data(), dx.dtype(), g);
    return dx;
  }
#endif
  max_pool2d_backward_cpu(dy.raw_data(), indices.data<int32_t>(), dx.raw_data(), dx.dtype(), g);
  return dx;
}

Tensor avg_pool2d_backward(const Tensor& dy, const Pool2dGeometry& g, bool count_include_pad) {
  Tensor dx = Tensor::empty(input_shape(g), dy.dtype(), dy.device());
  if (dx.numel() == 0) return dx;
#ifdef FFR_WITH_CUDA
  if (dy.is_cuda()) {
    avg_pool2d_backward_cuda(dy.raw_data(), dx.raw_data(), dx.dtype(), g, count_include_pad);
    return dx;
  }
#endif
  avg_pool2d_backward_cpu(dy.raw_data(), dx.raw_data(), dx.dtype(), g, count_include_pad);
  return dx;
}

Tensor global_avg_pool2d_backward(const Tensor& dy, const Shape& x_shape) {
  Tensor dx = Tensor::empty(x_shape, dy.dtype(), dy.device());
  const int64_t rows = dy.numel(), spatial = x_shape[2] * x_shape[3];
  if (dx.numel() == 0) return dx;
#ifdef FFR_WITH_CUDA
  if (dy.is_cuda()) {
    global_avg_pool2d_backward_cuda(dy.raw_data(), dx.raw_data(), dx.dtype(), rows, spatial);
    return dx;
  }
#endif
  global_avg_pool2d_backward_cpu(dy.raw_data(), dx.raw_data(), dx.dtype(), rows, spatial);
  return dx;
}

}  // namespace

Tensor max_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding) {
  OpScope scope(pool_description("max_pool2d", x, kernel, stride, padding));
  NvtxRange range("max_pool2d");
  const Pool2dGeometry g = pool2d_geometry(x.shape(), kernel, stride, padding);
  Tensor y = Tensor::empty(output_shape(g), x.dtype(), x.device());
  // The argmax positions are kept only for a backward (inference skips writing them).
  Tensor indices = needs_grad({&x}) ? Tensor::empty(output_shape(g), DType::Int32, x.device()) : Tensor();
  int32_t* index_data = indices.defined() ? indices.data<int32_t>() : nullptr;
  if (y.numel() > 0) {
#ifdef FFR_WITH_CUDA
    if (x.is_cuda()) {
      max_pool2d_forward_cuda(x.raw_data(), y.raw_data(), index_data, x.dtype(), g);
    } else
#endif
    {
      max_pool2d_forward_cpu(x.raw_data(), y.raw_data(), index_data, x.dtype(), g);
    }
  }
  if (!indices.defined()) return y;
  record_op("max_pool2d", y, {x}, [g, indices](const Tensor& gy) {
    return std::vector<Tensor>{max_pool2d_backward(gy, indices, g)};
  });
  return y;
}

Tensor avg_pool2d(const Tensor& x, std::array<int64_t, 2> kernel, std::array<int64_t, 2> stride,
                  std::array<int64_t, 2> padding, bool count_include_pad) {
  OpScope scope(pool_description("avg_pool2d", x, kernel, stride, padding));
  NvtxRange range("avg_pool2d");
  const Pool2dGeometry g = pool2d_geometry(x.shape(), kernel, stride, padding);
  Tensor y = Tensor::empty(output_shape(g), x.dtype(), x.device());
  if (y.numel() > 0) {
#ifdef FFR_WITH_CUDA
    if (x.is_cuda()) {
      avg_pool2d_forward_cuda(x.raw_data(), y.raw_data(), x.dtype(), g, count_include_pad);
    } else
#endif
    {
      avg_pool2d_forward_cpu(x.raw_data(), y.raw_data(), x.dtype(), g, count_include_pad);
    }
  }
  record_op("avg_pool2d", y, {x}, [g, count_include_pad](const Tensor& gy) {
    return std::vector<Tensor>{avg_pool2d_backward(gy, g, count_include_pad)};
  });
  return y;
}

Tensor global_avg_pool2d(const Tensor& x) {
  OpScope scope("global_avg_pool2d(" + x.str() + ")");
  NvtxRange range("global_avg_pool2d");
  FFR_CHECK(x.ndim() == 4, "global_avg_pool2d expects x [N, C, H, W], got ", x.str());
  const int64_t rows = x.size(0) * x.size(1), spatial = x.size(2) * x.size(3);
  FFR_CHECK(spatial > 0 || rows == 0, "global_avg_pool2d: empty spatial dims in ", x.str());
  Tensor y = Tensor::empty({x.size(0), x.size(1)}, x.dtype(), x.device());
  if (rows > 0) {
#ifdef FFR_WITH_CUDA
    if (x.is_cuda()) {
      global_avg_pool2d_forward_cuda(x.raw_data(), y.raw_data(), x.dtype(), rows, spatial);
    } else
#endif
    {
      global_avg_pool2d_forward_cpu(x.raw_data(), y.raw_data(), x.dtype(), rows, spatial);
    }
  }
  record_op("global_avg_pool2d", y, {x}, [x_shape = x.shape()](const Tensor& gy) {
    return std::vector<Tensor>{global_avg_pool2d_backward(gy, x_shape)};
  });
  return y;
}

}  // namespace ffr
