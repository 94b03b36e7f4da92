// oneDNN's float32 convolutions (kernels/onednn/conv2d.h) against the float64 im2col reference
// (kernels/conv2d.cpp), forward, backward-data and backward-weights, in each memory format, and
// through conv2d()'s CPU dispatch. Skipped (saying so) in a build without oneDNN.
#include "kernels/conv2d.h"

#include "tests/testing.h"

#ifdef FFR_WITH_ONEDNN
#include "kernels/onednn/conv2d.h"
#endif

#include <gtest/gtest.h>

namespace ffr {
namespace {

#ifdef FFR_WITH_ONEDNN

using testing::expect_close;
using testing::random_tensor;

struct ConvCase {
  const char* name;
  Shape x, w;
  Conv2dParams p;
};

// Tiny odd shapes for every parameter, and channel counts that reach oneDNN's jit kernels
// (multiples of 16) as ResNet's 1x1, 3x3 stride 2 and 7x7 stem convolutions do.
const std::vector<ConvCase> kCases = {
    {"1x1", {2, 5, 4, 3}, {3, 5, 1, 1}, {}},
    {"1x1 64->32", {2, 64, 9, 9}, {32, 64, 1, 1}, {}},
    {"1x1 stride 2 (downsample)", {2, 32, 9, 9}, {64, 32, 1, 1}, {{2, 2}, {0, 0}, {1, 1}, 1}},
    {"3x3 stride 2 padding 1", {2, 16, 15, 15}, {32, 16, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, 1}},
    {"3x3 padding 1 batch 1 odd", {1, 5, 7, 9}, {3, 5, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1}},
    {"7x7 stride 2 padding 3 (stem)", {2, 3, 23, 23}, {16, 3, 7, 7}, {{2, 2}, {3, 3}, {1, 1}, 1}},
    {"3x3 groups 4", {2, 8, 7, 7}, {12, 2, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 4}},
    {"3x3 depthwise", {1, 16, 6, 6}, {16, 1, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 16}},
    {"3x3 dilation 2 padding 2", {1, 4, 9, 9}, {5, 4, 3, 3}, {{1, 1}, {2, 2}, {2, 2}, 1}},
    {"2x3 mixed stride/padding/dilation", {1, 2, 6, 8}, {2, 2, 2, 3}, {{1, 2}, {0, 1}, {2, 1}, 1}},
};

// float32 sums of up to Cin kH kW (or N Hout Wout) products of values in [-1, 1]: a few float32
// roundings of the largest partial sum, never more than 1e-4 relative here.
constexpr double kRtol = 1e-4, kAtol = 1e-4;

struct Operands {
  Conv2dGeometry g;
  Tensor x, w, dy;  // float64
};

Operands make_operands(const ConvCase& c, Rng& rng) {
  Operands o;
  o.g = conv2d_geometry(c.x, c.w, c.p);
  o.x = random_tensor(c.x, rng);
  o.w = random_tensor(c.w, rng);
  o.dy = random_tensor(o.g.output_shape(), rng);
  return o;
}

TEST(OnednnConv2d, MatchesFloat64ReferenceInEachFormat) {
  Rng rng(21);
  for (const ConvCase& c : kCases) {
    const Operands o = make_operands(c, rng);
    const Conv2dGeometry& g = o.g;
    Tensor y64 = Tensor::empty(g.output_shape(), DType::Float64);
    Tensor dx64 = Tensor::empty(g.input_shape(), DType::Float64);
    Tensor dw64 = Tensor::empty(g.weight_shape(), DType::Float64);
    conv2d_forward_cpu(o.x.raw_data(), o.w.raw_data(), y64.raw_data(), DType::Float64, g);
    conv2d_backward_input_cpu(o.dy.raw_data(), o.w.raw_data(), dx64.raw_data(), DType::Float64, g);
    conv2d_backward_weight_cpu(o.dy.raw_data(), o.x.raw_data(), dw64.raw_data(), DType::Float64, g);
    const Tensor x = o.x.to(DType::Float32), w = o.w.to(DType::Float32), dy = o.dy.to(DType::Float32);
    for (onednn::ConvFormat format : {onednn::ConvFormat::Plain, onednn::ConvFormat::Blocked, onednn::ConvFormat::Mixed,
                                       onednn::ConvFormat::Auto}) {
      SCOPED_TRACE(std::string(c.name) + " format " + std::to_string(int(format)));
      Tensor y = Tensor::empty(g.output_shape()), dx = Tensor::empty(g.input_shape()),
             dw = Tensor::empty(g.weight_shape());
      onednn::conv2d_forward(x.data<float>(), w.data<float>(), y.data<float>(), g, format);
      onednn::conv2d_backward_input(dy.data<float>(), w.data<float>(), dx.data<float>(), g, format);
      onednn::conv2d_backward_weight(dy.data<float>(), x.data<float>(), dw.data<float>(), g, format);
      expect_close(y.to(DType::Float64), y64, kRtol, kAtol, "forward");
      expect_close(dx.to(DType::Float64), dx64, kRtol, kAtol, "backward data");
      expect_close(dw.to(DType::Float64), dw64, kRtol, kAtol, "backward weights");
      // Again: the cached primitive gives the same result.
      Tensor y2 = Tensor::empty(g.output_shape());
      onednn::conv2d_forward(x.data<float>(), w.data<float>(), y2.data<float>(), g, format);
      EXPECT_EQ(y2.to_vector<float>(), y.to_vector<float>());
    }
  }
}

// conv2d() on float32 CPU tensors goes through oneDNN; its gradients match the float64 path's.
TEST(OnednnConv2d, DispatchAndAutogradMatchFloat64) {
  Rng rng(22);
  for (const ConvCase& c : kCases) {
    SCOPED_TRACE(c.name);
    const Operands o = make_operands(c, rng);
    Tensor b64 = random_tensor({c.w[0]}, rng);
    auto run = [&](DType dtype) {
      Tensor x = o.x.to(dtype).detach(), w = o.w.to(dtype).detach(), b = b64.to(dtype).detach();
      x.set_requires_grad(true);
      w.set_requires_grad(true);
      b.set_requires_grad(true);
      Tensor y = conv2d(x, w, b, c.p);
      y.backward(o.dy.to(dtype));
      return std::vector<Tensor>{y.detach(), x.grad(), w.grad(), b.grad()};
    };
    const std::vector<Tensor> f32 = run(DType::Float32), f64 = run(DType::Float64);
    const char* names[] = {"y", "dx", "dw", "db"};
    for (int i = 0; i < 4; ++i) expect_close(f32[i].to(DType::Float64), f64[i], kRtol, kAtol, names[i]);
  }
}

#else

TEST(OnednnConv2d, MatchesFloat64ReferenceInEachFormat) {
  GTEST_SKIP() << "built without oneDNN (FFR_ENABLE_ONEDNN=OFF or libdnnl-dev not found)";
}

#endif

}  // namespace
}  // namespace ffr
