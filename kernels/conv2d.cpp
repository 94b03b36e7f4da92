#include "kernels/conv2d.h"

#include "engine/flop_counter.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/parallel.h"
#include "engine/settings.h"
#include "kernels/bfloat16_compute.h"
#include "kernels/dispatch.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#ifdef FFR_WITH_ONEDNN
#include "kernels/onednn/conv2d.h"
#endif

#include <cblas.h>

#include <algorithm>
#include <climits>
#include <cstring>

namespace ffr {

Conv2dGeometry conv2d_geometry(const Shape& x_shape, const Shape& weight_shape, const Conv2dParams& p) {
  FFR_CHECK(x_shape.size() == 4, "conv2d expects x [N, C, H, W], got ", shape_str(x_shape));
  FFR_CHECK(weight_shape.size() == 4, "conv2d expects weight [Cout, Cin/groups, kH, kW], got ",
            shape_str(weight_shape));
  FFR_CHECK(p.groups >= 1, "conv2d: groups must be >= 1, got ", p.groups);
  for (int i = 0; i < 2; ++i) {
    FFR_CHECK(p.stride[i] >= 1, "conv2d: stride must be >= 1, got ", p.stride[i]);
    FFR_CHECK(p.dilation[i] >= 1, "conv2d: dilation must be >= 1, got ", p.dilation[i]);
    FFR_CHECK(p.padding[i] >= 0, "conv2d: padding must be >= 0, got ", p.padding[i]);
  }
  Conv2dGeometry g;
  g.batch = x_shape[0];
  g.in_channels = x_shape[1];
  g.in_height = x_shape[2];
  g.in_width = x_shape[3];
  g.out_channels = weight_shape[0];
  g.kernel_height = weight_shape[2];
  g.kernel_width = weight_shape[3];
  g.stride_height = p.stride[0];
  g.stride_width = p.stride[1];
  g.pad_height = p.padding[0];
  g.pad_width = p.padding[1];
  g.dilation_height = p.dilation[0];
  g.dilation_width = p.dilation[1];
  g.groups = p.groups;
  FFR_CHECK(g.in_channels % g.groups == 0 && g.out_channels % g.groups == 0, "conv2d: channels (in ",
            g.in_channels, ", out ", g.out_channels, ") must be divisible by groups ", g.groups);
  FFR_CHECK(weight_shape[1] == g.in_channels / g.groups, "conv2d: weight ", shape_str(weight_shape),
            " needs dim 1 = Cin/groups = ", g.in_channels / g.groups, " for x ", shape_str(x_shape));
  FFR_CHECK(g.kernel_height >= 1 && g.kernel_width >= 1, "conv2d: empty kernel ", shape_str(weight_shape));
  const int64_t span_h = g.dilation_height * (g.kernel_height - 1) + 1;
  const int64_t span_w = g.dilation_width * (g.kernel_width - 1) + 1;
  FFR_CHECK(g.in_height + 2 * g.pad_height >= span_h && g.in_width + 2 * g.pad_width >= span_w,
            "conv2d: kernel (dilated ", span_h, "x", span_w, ") larger than the padded input ",
            shape_str(x_shape));
  g.out_height = (g.in_height + 2 * g.pad_height - span_h) / g.stride_height + 1;
  g.out_width = (g.in_width + 2 * g.pad_width - span_w) / g.stride_width + 1;
  return g;
}

// ---- CPU reference: im2col + GEMM ----

namespace {

void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t m, int64_t n, int64_t k, const float* a, int64_t lda,
          const float* b, int64_t ldb, float beta, float* c, int64_t ldc) {
  cblas_sgemm(CblasRowMajor, ta, tb, int(m), int(n), int(k), 1.0f, a, int(lda), b, int(ldb), beta, c, int(ldc));
}
void gemm(CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, int64_t m, int64_t n, int64_t k, const double* a, int64_t lda,
          const double* b, int64_t ldb, double beta, double* c, int64_t ldc) {
  cblas_dgemm(CblasRowMajor, ta, tb, int(m), int(n), int(k), 1.0, a, int(lda), b, int(ldb), beta, c, int(ldc));
}

// The GEMM view of one (image, group): col [K, P] with K = Cin_g kH kW and P = Hout Wout, where
// col[(c, kh, kw), (oh, ow)] = x[c, oh*stride - pad + kh*dilation, ...] (0 in the padding).
struct GemmSizes {
  int64_t k, p, plane;
  // A 1x1 kernel with unit stride and no padding reads x as it is: no col buffer needed.
  bool direct;
};

GemmSizes gemm_sizes(const Conv2dGeometry& g) {
  GemmSizes s;
  s.k = g.in_channels_per_group() * g.kernel_height * g.kernel_width;
  s.p = g.out_height * g.out_width;
  s.plane = g.in_height * g.in_width;
  s.direct = g.kernel_height == 1 && g.kernel_width == 1 && g.stride_height == 1 && g.stride_width == 1 &&
             g.pad_height == 0 && g.pad_width == 0;
  FFR_CHECK(s.k <= INT_MAX && s.p <= INT_MAX && g.out_channels <= INT_MAX, "conv2d: problem too large for BLAS");
  return s;
}

// Threads take whole col rows (one (c, kh, kw) each): every row is written by one thread.
template <typename T>
void im2col(const T* x, T* col, const Conv2dGeometry& g) {
  const int64_t H = g.in_height, W = g.in_width, Ho = g.out_height, Wo = g.out_width;
  const int64_t KH = g.kernel_height, KW = g.kernel_width;
  parallel_for(0, g.in_channels_per_group() * KH * KW, rows_grain(Ho * Wo), [&](int64_t r_begin, int64_t r_end) {
    for (int64_t r = r_begin; r < r_end; ++r) {
      const int64_t c = r / (KH * KW), kh = (r / KW) % KH, kw = r % KW;
      const T* plane = x + c * H * W;
      T* row = col + r * Ho * Wo;
      for (int64_t oh = 0; oh < Ho; ++oh) {
        const int64_t ih = oh * g.stride_height - g.pad_height + kh * g.dilation_height;
        T* out = row + oh * Wo;
        if (ih < 0 || ih >= H) {
          std::fill(out, out + Wo, T(0));
          continue;
        }
        for (int64_t ow = 0; ow < Wo; ++ow) {
          const int64_t iw = ow * g.stride_width - g.pad_width + kw * g.dilation_width;
          out[ow] = (iw >= 0 && iw < W) ? plane[ih * W + iw] : T(0);
        }
      }
    }
  });
}

// The adjoint of im2col: adds every col entry back to the input position it was read from.
// Threads take whole input channels (a channel's plane gets only its own rows), and add a
// channel's rows in (kh, kw) order, as one thread would: the same bits on any thread count.
template <typename T>
void col2im_add(const T* col, T* x, const Conv2dGeometry& g) {
  const int64_t H = g.in_height, W = g.in_width, Ho = g.out_height, Wo = g.out_width;
  const int64_t KH = g.kernel_height, KW = g.kernel_width;
  parallel_for(0, g.in_channels_per_group(), rows_grain(KH * KW * Ho * Wo), [&](int64_t c_begin, int64_t c_end) {
    for (int64_t c = c_begin; c < c_end; ++c) {
      T* plane = x + c * H * W;
      const T* row = col + c * KH * KW * Ho * Wo;
      for (int64_t kh = 0; kh < KH; ++kh) {
        for (int64_t kw = 0; kw < KW; ++kw, row += Ho * Wo) {
          for (int64_t oh = 0; oh < Ho; ++oh) {
            const int64_t ih = oh * g.stride_height - g.pad_height + kh * g.dilation_height;
            if (ih < 0 || ih >= H) continue;
            for (int64_t ow = 0; ow < Wo; ++ow) {
              const int64_t iw = ow * g.stride_width - g.pad_width + kw * g.dilation_width;
              if (iw >= 0 && iw < W) plane[ih * W + iw] += row[oh * Wo + ow];
            }
          }
        }
      }
    }
  });
}

// Scratch for one (image, group) col matrix, from the CPU allocator.
Tensor col_buffer(const GemmSizes& s, DType dtype) {
  return s.direct ? Tensor() : Tensor::empty({s.k, s.p}, dtype, Device::cpu());
}

}  // namespace

void conv2d_forward_cpu(const void* x, const void* w, void* y, DType dtype, const Conv2dGeometry& g) {
  dispatch_cpu_floating(dtype, "conv2d", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const GemmSizes s = gemm_sizes(g);
    const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
    Tensor scratch = col_buffer(s, dtype);
    for (int64_t n = 0; n < g.batch; ++n) {
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const T* xg = static_cast<const T*>(x) + (n * g.in_channels + grp * cin_g) * s.plane;
        const T* wg = static_cast<const T*>(w) + grp * cout_g * s.k;
        T* yg = static_cast<T*>(y) + (n * g.out_channels + grp * cout_g) * s.p;
        const T* col = xg;
        if (!s.direct) {
          im2col(xg, scratch.data<T>(), g);
          col = scratch.data<T>();
        }
        // y_g [Cout_g, P] = w_g [Cout_g, K] col [K, P]
        gemm(CblasNoTrans, CblasNoTrans, cout_g, s.p, s.k, wg, s.k, col, s.p, T(0), yg, s.p);
      }
    }
  });
}

void conv2d_backward_input_cpu(const void* dy, const void* w, void* dx, DType dtype, const Conv2dGeometry& g) {
  dispatch_cpu_floating(dtype, "conv2d backward input", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const GemmSizes s = gemm_sizes(g);
    const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
    Tensor scratch = col_buffer(s, dtype);
    if (!s.direct) std::memset(dx, 0, size_t(g.batch * g.in_channels * s.plane) * sizeof(T));
    for (int64_t n = 0; n < g.batch; ++n) {
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const T* dyg = static_cast<const T*>(dy) + (n * g.out_channels + grp * cout_g) * s.p;
        const T* wg = static_cast<const T*>(w) + grp * cout_g * s.k;
        T* dxg = static_cast<T*>(dx) + (n * g.in_channels + grp * cin_g) * s.plane;
        // dcol [K, P] = w_g^T [K, Cout_g] dy_g [Cout_g, P]; a direct problem's dcol is dx itself.
        T* dcol = s.direct ? dxg : scratch.data<T>();
        gemm(CblasTrans, CblasNoTrans, s.k, s.p, cout_g, wg, s.k, dyg, s.p, T(0), dcol, s.p);
        if (!s.direct) col2im_add(dcol, dxg, g);
      }
    }
  });
}

void conv2d_backward_weight_cpu(const void* dy, const void* x, void* dw, DType dtype, const Conv2dGeometry& g) {
  dispatch_cpu_floating(dtype, "conv2d backward weight", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const GemmSizes s = gemm_sizes(g);
    const int64_t cin_g = g.in_channels_per_group(), cout_g = g.out_channels_per_group();
    Tensor scratch = col_buffer(s, dtype);
    if (g.batch == 0) std::memset(dw, 0, size_t(g.out_channels * s.k) * sizeof(T));
    for (int64_t n = 0; n < g.batch; ++n) {
      for (int64_t grp = 0; grp < g.groups; ++grp) {
        const T* xg = static_cast<const T*>(x) + (n * g.in_channels + grp * cin_g) * s.plane;
        const T* dyg = static_cast<const T*>(dy) + (n * g.out_channels + grp * cout_g) * s.p;
        T* dwg = static_cast<T*>(dw) + grp * cout_g * s.k;
        const T* col = xg;
        if (!s.direct) {
          im2col(xg, scratch.data<T>(), g);
          col = scratch.data<T>();
        }
        // dw_g [Cout_g, K] (+)= dy_g [Cout_g, P] col^T [P, K]; the first image overwrites.
        gemm(CblasNoTrans, CblasTrans, cout_g, s.k, s.p, dyg, s.p, col, s.p, n == 0 ? T(0) : T(1), dwg, s.k);
      }
    }
  });
}

// ---- dispatch + autograd ----

namespace {

// Each launcher pair runs on CUDA or the CPU by the operands' device; under bf16 compute
// (kernels/bfloat16_compute.h) on bf16 operands with a bf16 result upcast to float32.
#ifdef FFR_WITH_CUDA
// The engine's tensors are NCHW; the CUDA launchers also take NHWC (kernels/conv2d.h).
#define FFR_CUDA_LAUNCHER(launcher)                                                               \
  [](const void* a, const void* b, void* out, DType dtype, const Conv2dGeometry& g) {            \
    launcher(a, b, out, dtype, g, ConvLayout::NCHW);                                              \
  }
#else
#define FFR_CUDA_LAUNCHER(launcher) nullptr  // never called: CPU tensors only
#endif
using Conv2dLauncher = void (*)(const void*, const void*, void*, DType, const Conv2dGeometry&);

// On the CPU, float32 runs on oneDNN where the build has it (kernels/onednn/conv2d.h); float64
// (the gradient checks) stays on the im2col reference, which the oneDNN tests compare against.
#ifdef FFR_WITH_ONEDNN
#define FFR_CPU_LAUNCHER(reference, onednn_launcher)                                              \
  [](const void* a, const void* b, void* out, DType dtype, const Conv2dGeometry& g) {            \
    if (dtype == DType::Float32) {                                                                \
      onednn_launcher(static_cast<const float*>(a), static_cast<const float*>(b), static_cast<float*>(out), g); \
    } else {                                                                                      \
      reference(a, b, out, dtype, g);                                                             \
    }                                                                                             \
  }
#else
#define FFR_CPU_LAUNCHER(reference, onednn_launcher) reference
#endif

Tensor run_conv(const Tensor& a, const Tensor& b, const Shape& out_shape, const Conv2dGeometry& g,
                Conv2dLauncher cpu, Conv2dLauncher cuda) {
  auto launch = [&](const Tensor& a_, const Tensor& b_, Tensor& out) {
#ifdef FFR_WITH_CUDA
    if (a_.is_cuda()) {
      cuda(a_.raw_data(), b_.raw_data(), out.raw_data(), out.dtype(), g);
      return;
    }
#endif
    cpu(a_.raw_data(), b_.raw_data(), out.raw_data(), out.dtype(), g);
  };
  if (uses_bfloat16_compute(a)) return run_in_bfloat16(a, b, out_shape, launch);
  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
  launch(a, b, out);
  return out;
}

void check_operand(const Tensor& t, const Tensor& x, const char* what) {
  FFR_CHECK(t.dtype() == x.dtype(), "conv2d: ", what, " ", t.str(), " has another dtype than x ", x.str());
  FFR_CHECK(t.device() == x.device(), "conv2d: ", what, " ", t.str(), " is on another device than x ", x.str());
}

}  // namespace

Tensor conv2d_backward_input(const Tensor& grad_output, const Tensor& weight, const Conv2dGeometry& g) {
  OpScope scope("conv2d_backward_input(" + grad_output.str() + ", " + weight.str() + ")");
  NvtxRange range("conv2d_backward_input");
  FFR_CHECK(grad_output.shape() == g.output_shape() && weight.shape() == g.weight_shape(),
            "conv2d_backward_input: shapes do not match the geometry");
  check_operand(weight, grad_output, "weight");
  if (shape_numel(g.input_shape()) == 0) return Tensor::empty(g.input_shape(), grad_output.dtype(), grad_output.device());
  return run_conv(grad_output, weight, g.input_shape(), g,
                  FFR_CPU_LAUNCHER(conv2d_backward_input_cpu, onednn::conv2d_backward_input),
                  FFR_CUDA_LAUNCHER(conv2d_backward_input_cuda));
}

Tensor conv2d_backward_weight(const Tensor& grad_output, const Tensor& x, const Conv2dGeometry& g) {
  OpScope scope("conv2d_backward_weight(" + grad_output.str() + ", " + x.str() + ")");
  NvtxRange range("conv2d_backward_weight");
  FFR_CHECK(grad_output.shape() == g.output_shape() && x.shape() == g.input_shape(),
            "conv2d_backward_weight: shapes do not match the geometry");
  check_operand(x, grad_output, "x");
  if (g.batch == 0) {
    Tensor dw = Tensor::empty(g.weight_shape(), grad_output.dtype(), grad_output.device());
    dw.zero_();
    return dw;
  }
  return run_conv(grad_output, x, g.weight_shape(), g,
                  FFR_CPU_LAUNCHER(conv2d_backward_weight_cpu, onednn::conv2d_backward_weight),
                  FFR_CUDA_LAUNCHER(conv2d_backward_weight_cuda));
}

Tensor conv2d(const Tensor& x, const Tensor& weight, const Tensor& bias, Conv2dParams p) {
  OpScope scope("conv2d(" + x.str() + ", " + weight.str() + ", bias " + bias.str() + ")");
  NvtxRange range("conv2d");
  check_operand(weight, x, "weight");
  const Conv2dGeometry g = conv2d_geometry(x.shape(), weight.shape(), p);
  if (bias.defined()) {
    check_operand(bias, x, "bias");
    FFR_CHECK(bias.shape() == Shape{g.out_channels}, "conv2d: bias ", bias.str(), " should be [", g.out_channels,
              "]");
  }
  Tensor y;
  FlopCounter::record(shape_numel(g.output_shape()) * g.in_channels_per_group() * g.kernel_height * g.kernel_width);
  if (shape_numel(g.output_shape()) > 0) {
    y = run_conv(x, weight, g.output_shape(), g, FFR_CPU_LAUNCHER(conv2d_forward_cpu, onednn::conv2d_forward),
                 FFR_CUDA_LAUNCHER(conv2d_forward_cuda));
    // The bias is added in float32 after the (possibly bf16-rounded) product, as cuDNN + autocast do.
    if (bias.defined()) add_(y, bias.detach().view_as_shape({1, g.out_channels, 1, 1}));
  } else {
    y = Tensor::empty(g.output_shape(), x.dtype(), x.device());
  }
  if (!needs_grad({&x, &weight, &bias})) return y;
  // Each gradient needs only the other operand: save just what will be used.
  const bool grad_x = needs_grad({&x}), grad_w = needs_grad({&weight}), grad_b = needs_grad({&bias});
  record_op("conv2d", y, {x, weight, bias},
            [g, grad_x, grad_w, grad_b, x_saved = grad_w ? x.detach() : Tensor(),
             w_saved = grad_x ? weight.detach() : Tensor(), bf16 = settings().bfloat16_compute](const Tensor& gy) {
              // The backward convolutions compute in the precision the forward one did.
              Settings s = settings();
              s.bfloat16_compute = bf16;
              SettingsScope precision(s);
              return std::vector<Tensor>{
                  grad_x ? conv2d_backward_input(gy, w_saved, g) : Tensor(),
                  grad_w ? conv2d_backward_weight(gy, x_saved, g) : Tensor(),
                  grad_b ? sum(gy, {0, 2, 3}) : Tensor()};
            });
  return y;
}

}  // namespace ffr
