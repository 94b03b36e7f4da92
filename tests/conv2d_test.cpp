#include "kernels/conv2d.h"

#include "engine/error.h"
#include "engine/settings.h"
#include "tests/testing.h"

namespace ffr {
namespace {

using testing::expect_cuda_matches_cpu;
using testing::expect_gradients_match;
using testing::random_tensor;

struct ConvCase {
  const char* name;
  Shape x, w;
  Conv2dParams p;
};

// Small shapes covering every parameter, and the shapes ResNet uses (1x1, 7x7 stem, 1x1 stride 2).
const std::vector<ConvCase> kCases = {
    {"3x3", {2, 3, 6, 5}, {4, 3, 3, 3}, {}},
    {"3x3 stride 2 padding 1", {2, 3, 7, 6}, {4, 3, 3, 3}, {{2, 2}, {1, 1}, {1, 1}, 1}},
    {"3x3 dilation 2 padding 2", {1, 2, 7, 7}, {3, 2, 3, 3}, {{1, 1}, {2, 2}, {2, 2}, 1}},
    {"3x3 groups 2", {2, 4, 5, 5}, {6, 2, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 2}},
    {"1x1", {2, 5, 4, 3}, {3, 5, 1, 1}, {}},
    {"1x1 stride 2 (downsample)", {2, 4, 5, 5}, {6, 4, 1, 1}, {{2, 2}, {0, 0}, {1, 1}, 1}},
    {"7x7 stride 2 padding 3 (stem)", {1, 3, 11, 11}, {4, 3, 7, 7}, {{2, 2}, {3, 3}, {1, 1}, 1}},
    {"2x3 mixed stride/padding/dilation", {1, 2, 6, 8}, {2, 2, 2, 3}, {{1, 2}, {0, 1}, {2, 1}, 1}},
};

TEST(Conv2d, GradientsMatchFiniteDifferences) {
  Rng rng(11);
  for (const ConvCase& c : kCases) {
    SCOPED_TRACE(c.name);
    Tensor x = random_tensor(c.x, rng), w = random_tensor(c.w, rng), b = random_tensor({c.w[0]}, rng);
    const Conv2dParams p = c.p;
    expect_gradients_match([p](const auto& in) { return conv2d(in[0], in[1], in[2], p); }, {x, w, b});
    expect_gradients_match([p](const auto& in) { return conv2d(in[0], in[1], Tensor(), p); }, {x, w});
  }
}

TEST(Conv2d, OnlyInputOrOnlyWeightRequiresGrad) {
  Rng rng(12);
  Tensor x = random_tensor({2, 2, 5, 5}, rng), w = random_tensor({3, 2, 3, 3}, rng);
  const Conv2dParams p{{2, 2}, {1, 1}, {1, 1}, 1};
  expect_gradients_match([w, p](const auto& in) { return conv2d(in[0], w, Tensor(), p); }, {x});
  expect_gradients_match([x, p](const auto& in) { return conv2d(x, in[0], Tensor(), p); }, {w});
}

TEST(Conv2d, ValuesMatchHandComputation) {
  // x = 1..9 in a 3x3 plane; w = [[1, 0], [0, -1]] takes x[i][j] - x[i+1][j+1] = -4 everywhere.
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6, 7, 8, 9}, {1, 1, 3, 3});
  Tensor w = Tensor::from_vector(std::vector<float>{1, 0, 0, -1}, {1, 1, 2, 2});
  Tensor b = Tensor::from_vector(std::vector<float>{0.5f}, {1});
  EXPECT_EQ(conv2d(x, w, Tensor()).to_vector<float>(), (std::vector<float>{-4, -4, -4, -4}));
  EXPECT_EQ(conv2d(x, w, b).to_vector<float>(), (std::vector<float>{-3.5f, -3.5f, -3.5f, -3.5f}));

  // A 3x3 box filter over ones with padding 1 counts the real neighbours: 4 at corners, 6 on
  // edges, 9 inside; stride 2 keeps the corners.
  Tensor ones = Tensor::ones({1, 1, 3, 3});
  Tensor box = Tensor::ones({1, 1, 3, 3});
  Conv2dParams pad1{{1, 1}, {1, 1}, {1, 1}, 1};
  EXPECT_EQ(conv2d(ones, box, Tensor(), pad1).to_vector<float>(), (std::vector<float>{4, 6, 4, 6, 9, 6, 4, 6, 4}));
  Conv2dParams pad1_stride2{{2, 2}, {1, 1}, {1, 1}, 1};
  EXPECT_EQ(conv2d(ones, box, Tensor(), pad1_stride2).to_vector<float>(), (std::vector<float>{4, 4, 4, 4}));

  // Dilation 2 with a 2x2 kernel reads the corners of the 3x3 plane: 1 + 3 + 7 + 9.
  Conv2dParams dil2{{1, 1}, {0, 0}, {2, 2}, 1};
  EXPECT_EQ(conv2d(x, Tensor::ones({1, 1, 2, 2}), Tensor(), dil2).to_vector<float>(), (std::vector<float>{20}));

  // Groups 2: each output channel sees only its own input channel.
  Tensor x2 = Tensor::from_vector(std::vector<float>{2, 3}, {1, 2, 1, 1});
  Tensor w2 = Tensor::from_vector(std::vector<float>{10, 100}, {2, 1, 1, 1});
  Conv2dParams groups2{{1, 1}, {0, 0}, {1, 1}, 2};
  EXPECT_EQ(conv2d(x2, w2, Tensor(), groups2).to_vector<float>(), (std::vector<float>{20, 300}));
}

TEST(Conv2d, BackwardValuesMatchHandComputation) {
  // y = w0 x[0..1] + w1 x[1..2] over a 1x3 row, with dL/dy = 1: dx = [w0, w0 + w1, w1],
  // dw = [x0 + x1, x1 + x2], db = 2.
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 4}, {1, 1, 1, 3}).set_requires_grad(true);
  Tensor w = Tensor::from_vector(std::vector<double>{3, 5}, {1, 1, 1, 2}).set_requires_grad(true);
  Tensor b = Tensor::from_vector(std::vector<double>{0.25}, {1}).set_requires_grad(true);
  Tensor y = conv2d(x, w, b);
  EXPECT_EQ(y.to_vector<double>(), (std::vector<double>{13.25, 26.25}));
  y.backward(Tensor::ones({1, 1, 1, 2}, DType::Float64));
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{3, 8, 5}));
  EXPECT_EQ(w.grad().to_vector<double>(), (std::vector<double>{3, 6}));
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{2}));
}

TEST(Conv2d, OutputShape) {
  // ResNet-50's stem on a 224 image: 7x7 stride 2 padding 3 -> 112.
  const Conv2dGeometry g = conv2d_geometry({8, 3, 224, 224}, {64, 3, 7, 7}, {{2, 2}, {3, 3}, {1, 1}, 1});
  EXPECT_EQ(g.output_shape(), (Shape{8, 64, 112, 112}));
}

TEST(Conv2d, BadShapesThrow) {
  Tensor x = Tensor::zeros({1, 4, 5, 5});
  Tensor w = Tensor::zeros({2, 4, 3, 3});
  EXPECT_THROW(conv2d(Tensor::zeros({4, 5, 5}), w, Tensor()), Error);                 // x not 4-D
  EXPECT_THROW(conv2d(x, Tensor::zeros({2, 3, 3, 3}), Tensor()), Error);             // Cin mismatch
  EXPECT_THROW(conv2d(x, Tensor::zeros({3, 2, 3, 3}), Tensor(), {{1, 1}, {0, 0}, {1, 1}, 2}), Error);  // Cout % groups
  EXPECT_THROW(conv2d(x, w, Tensor(), {{1, 1}, {0, 0}, {1, 1}, 3}), Error);           // Cin % groups
  EXPECT_THROW(conv2d(x, w, Tensor::zeros({3})), Error);                               // bias size
  EXPECT_THROW(conv2d(x, Tensor::zeros({2, 4, 7, 7}), Tensor()), Error);             // kernel > input
  EXPECT_THROW(conv2d(x, w, Tensor(), {{0, 1}, {0, 0}, {1, 1}, 1}), Error);           // stride 0
  EXPECT_THROW(conv2d(x, w, Tensor(), {{1, 1}, {-1, 0}, {1, 1}, 1}), Error);          // negative padding
  EXPECT_THROW(conv2d(x, Tensor::zeros({2, 4, 3, 3}, DType::Float64), Tensor()), Error);  // dtype mismatch
}

// ---- CUDA against the CPU reference ----

// float32 without TF32: cuDNN sums in another order (or via Winograd/FFT), ~1e-5 relative.
const testing::CompareOptions kFloat32Tolerance{1e-4, 1e-4, true};

TEST(Conv2dCuda, MatchesCpuFloat32) {
  FFR_REQUIRE_CUDA();
  Rng rng(21);
  for (const ConvCase& c : kCases) {
    SCOPED_TRACE(c.name);
    Tensor x = random_tensor(c.x, rng, DType::Float32), w = random_tensor(c.w, rng, DType::Float32);
    Tensor b = random_tensor({c.w[0]}, rng, DType::Float32);
    const Conv2dParams p = c.p;
    expect_cuda_matches_cpu([p](const auto& in) { return conv2d(in[0], in[1], in[2], p); }, {x, w, b},
                            kFloat32Tolerance);
  }
}

TEST(Conv2dCuda, MatchesCpuOnResNetShapes) {
  FFR_REQUIRE_CUDA();
  Rng rng(22);
  const std::vector<ConvCase> cases = {
      {"stem", {2, 3, 32, 32}, {16, 3, 7, 7}, {{2, 2}, {3, 3}, {1, 1}, 1}},
      {"3x3 bottleneck", {4, 32, 14, 14}, {32, 32, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1}},
      {"1x1 expand", {4, 32, 14, 14}, {128, 32, 1, 1}, {}},
      {"1x1 stride 2 downsample", {4, 64, 14, 14}, {128, 64, 1, 1}, {{2, 2}, {0, 0}, {1, 1}, 1}},
  };
  for (const ConvCase& c : cases) {
    SCOPED_TRACE(c.name);
    Tensor x = random_tensor(c.x, rng, DType::Float32), w = random_tensor(c.w, rng, DType::Float32, -0.1, 0.1);
    const Conv2dParams p = c.p;
    expect_cuda_matches_cpu([p](const auto& in) { return conv2d(in[0], in[1], Tensor(), p); }, {x, w},
                            kFloat32Tolerance);
  }
}

TEST(Conv2dCuda, TF32WithinTolerance) {
  FFR_REQUIRE_CUDA();
  Settings tf32;
  tf32.allow_tf32 = true;
  SettingsScope scope(tf32);
  Rng rng(23);
  Tensor x = random_tensor({4, 16, 12, 12}, rng, DType::Float32);
  Tensor w = random_tensor({32, 16, 3, 3}, rng, DType::Float32);
  // TF32 keeps 10 mantissa bits: ~1e-3 relative per product.
  expect_cuda_matches_cpu([](const auto& in) { return conv2d(in[0], in[1], Tensor(), {{1, 1}, {1, 1}, {1, 1}, 1}); },
                          {x, w}, {1e-2, 1e-2, true});
}

Tensor to_bfloat16_values(const Tensor& t) { return t.to(DType::BFloat16).to(DType::Float32); }

TEST(Conv2dCuda, BFloat16MatchesCpuOnRoundedInputs) {
  FFR_REQUIRE_CUDA();
  Rng rng(24);
  // Inputs already representable in bf16, so the CPU float32 reference sees the same values;
  // what remains is bf16 rounding of the output and of the upstream gradient (2^-9 relative).
  auto bf16_on_cuda = [](const Tensor& t) { return t.is_cuda() ? t.to(DType::BFloat16) : t; };
  for (const ConvCase& c : kCases) {
    SCOPED_TRACE(c.name);
    Tensor x = to_bfloat16_values(random_tensor(c.x, rng, DType::Float32));
    Tensor w = to_bfloat16_values(random_tensor(c.w, rng, DType::Float32));
    Tensor b = to_bfloat16_values(random_tensor({c.w[0]}, rng, DType::Float32));
    const Conv2dParams p = c.p;
    expect_cuda_matches_cpu(
        [p, bf16_on_cuda](const auto& in) {
          return conv2d(bf16_on_cuda(in[0]), bf16_on_cuda(in[1]), bf16_on_cuda(in[2]), p).to(DType::Float32);
        },
        {x, w, b}, {2e-2, 5e-2, true});
  }
}

TEST(Conv2dCuda, DeterministicModeIsBitIdentical) {
  FFR_REQUIRE_CUDA();
  Settings deterministic;
  deterministic.deterministic = true;
  SettingsScope scope(deterministic);
  Rng rng(25);
  Tensor x = random_tensor({8, 16, 16, 16}, rng, DType::Float32).cuda();
  Tensor w = random_tensor({16, 16, 3, 3}, rng, DType::Float32).cuda();
  const Conv2dGeometry g = conv2d_geometry(x.shape(), w.shape(), {{1, 1}, {1, 1}, {1, 1}, 1});
  Tensor gy = random_tensor(g.output_shape(), rng, DType::Float32).cuda();
  const std::vector<float> dw = conv2d_backward_weight(gy, x, g).to_vector<float>();
  const std::vector<float> dx = conv2d_backward_input(gy, w, g).to_vector<float>();
  for (int i = 0; i < 3; ++i) {
    EXPECT_EQ(conv2d_backward_weight(gy, x, g).to_vector<float>(), dw);
    EXPECT_EQ(conv2d_backward_input(gy, w, g).to_vector<float>(), dx);
  }
}

}  // namespace
}  // namespace ffr
