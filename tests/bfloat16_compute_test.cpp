// bf16 mixed precision in the GEMM-based ops (kernels/bfloat16_compute.h): under
// Precision::BFloat16 a float32 matmul, bmm or conv2d (forward and backward) computes on
// bf16-rounded inputs and rounds its result to bf16, and is within 1e-2 (relative, in norm) of the
// float32 op; everything else (float64, the float32 mode) is untouched.
#include "engine/bfloat16.h"
#include "engine/precision.h"
#include "kernels/conv2d.h"
#include "kernels/matmul.h"
#include "tests/testing.h"

#include <cmath>

namespace ffr {
namespace {

using testing::expect_close;
using testing::expect_cuda_matches_cpu;
using testing::random_tensor;

// ||a - b|| / ||b||, in double on the host.
double relative_error(const Tensor& a, const Tensor& b) {
  const std::vector<double> x = a.detach().cpu().to(DType::Float64).to_vector<double>();
  const std::vector<double> y = b.detach().cpu().to(DType::Float64).to_vector<double>();
  double diff = 0.0, norm = 0.0;
  for (size_t i = 0; i < x.size(); ++i) {
    diff += (x[i] - y[i]) * (x[i] - y[i]);
    norm += y[i] * y[i];
  }
  return std::sqrt(diff / norm);
}

// True when every value is exactly a bfloat16: what a bf16 result upcast to float32 must be.
bool all_bfloat16(const Tensor& t) {
  for (float v : t.detach().cpu().to_vector<float>()) {
    if (bfloat16_to_float(float_to_bfloat16(v)) != v) return false;
  }
  return true;
}

Tensor rounded(const Tensor& t) { return t.detach().to(DType::BFloat16).to(DType::Float32); }

constexpr double kBf16Tolerance = 1e-2;  // relative, in norm: bf16 keeps 8 significant bits

// Outputs and input gradients of `op` in float32 and in bf16 mode (same inputs, same upstream
// gradient): the bf16 ones are bf16 numbers, and within kBf16Tolerance of the float32 ones.
void expect_bfloat16_close_to_float32(const testing::OpFunction& op, const std::vector<Tensor>& inputs,
                                      bool result_is_bfloat16 = true) {
  Rng rng(99);
  auto run = [&](Precision p, const Tensor& gy_in) {
    PrecisionScope scope(p);
    std::vector<Tensor> leaves;
    for (const Tensor& t : inputs) leaves.push_back(t.detach().clone().set_requires_grad(true));
    Tensor y = op(leaves);
    const Tensor gy = gy_in.defined() ? gy_in : random_tensor(y.shape(), rng, DType::Float32);
    y.backward(gy);
    std::vector<Tensor> out{y.detach(), gy};
    for (const Tensor& l : leaves) out.push_back(l.grad());
    return out;
  };
  const std::vector<Tensor> fp32 = run(Precision::Float32, Tensor());
  const std::vector<Tensor> bf16 = run(Precision::BFloat16, fp32[1]);
  EXPECT_LT(relative_error(bf16[0], fp32[0]), kBf16Tolerance) << "output";
  EXPECT_GT(relative_error(bf16[0], fp32[0]), 0.0) << "bf16 mode computed exactly as float32";
  if (result_is_bfloat16) EXPECT_TRUE(all_bfloat16(bf16[0])) << "output not rounded to bf16";
  for (size_t i = 2; i < fp32.size(); ++i) {
    SCOPED_TRACE("gradient of input " + std::to_string(i - 2));
    EXPECT_LT(relative_error(bf16[i], fp32[i]), kBf16Tolerance);
    // A bias gradient is a float32 sum of the upstream gradient: the same in both modes.
    if (i < 4) EXPECT_GT(relative_error(bf16[i], fp32[i]), 0.0) << "computed exactly as float32";
  }
}

TEST(BFloat16Compute, MatmulIsTheFloat32ProductOfRoundedInputsRounded) {
  Rng rng(1);
  const Tensor a = random_tensor({33, 64}, rng, DType::Float32), b = random_tensor({64, 17}, rng, DType::Float32);
  Tensor expected = rounded(matmul(rounded(a), rounded(b)));  // float32 mode here
  Tensor y;
  {
    PrecisionScope bf16(Precision::BFloat16);
    y = matmul(a, b);
  }
  EXPECT_EQ(y.dtype(), DType::Float32);
  expect_close(y, expected, 0.0, 0.0, "bf16 matmul vs its emulation");
}

TEST(BFloat16Compute, MatmulAndBmmWithinToleranceOfFloat32) {
  Rng rng(2);
  for (bool ta : {false, true}) {
    for (bool tb : {false, true}) {
      SCOPED_TRACE(std::string("transpose_a ") + (ta ? "1" : "0") + " transpose_b " + (tb ? "1" : "0"));
      const Tensor a = random_tensor(ta ? Shape{64, 40} : Shape{40, 64}, rng, DType::Float32);
      const Tensor b = random_tensor(tb ? Shape{24, 64} : Shape{64, 24}, rng, DType::Float32);
      expect_bfloat16_close_to_float32([=](const auto& in) { return matmul(in[0], in[1], ta, tb); }, {a, b});
      const Tensor ba = random_tensor({3, a.size(0), a.size(1)}, rng, DType::Float32);
      const Tensor bb = random_tensor({3, b.size(0), b.size(1)}, rng, DType::Float32);
      expect_bfloat16_close_to_float32([=](const auto& in) { return bmm(in[0], in[1], ta, tb); }, {ba, bb});
    }
  }
  // Linear's shape: leading batch dims times a transposed weight.
  const Tensor x = random_tensor({4, 6, 48}, rng, DType::Float32), w = random_tensor({20, 48}, rng, DType::Float32);
  expect_bfloat16_close_to_float32([](const auto& in) { return matmul(in[0], in[1], false, true); }, {x, w});
}

TEST(BFloat16Compute, Conv2dWithinToleranceOfFloat32) {
  Rng rng(3);
  const Tensor x = random_tensor({2, 8, 9, 9}, rng, DType::Float32);
  const Tensor w = random_tensor({6, 8, 3, 3}, rng, DType::Float32);
  const Tensor bias = random_tensor({6}, rng, DType::Float32);
  const Conv2dParams p{{2, 2}, {1, 1}, {1, 1}, 1};
  expect_bfloat16_close_to_float32([p](const auto& in) { return conv2d(in[0], in[1], Tensor(), p); }, {x, w});
  // The bias is added in float32 after the rounded product, so that output is not a bf16 number.
  expect_bfloat16_close_to_float32([p](const auto& in) { return conv2d(in[0], in[1], in[2], p); }, {x, w, bias},
                                   /*result_is_bfloat16=*/false);
  const Tensor xg = random_tensor({2, 4, 7, 7}, rng, DType::Float32), wg = random_tensor({6, 2, 3, 3}, rng, DType::Float32);
  const Conv2dParams grouped{{1, 1}, {1, 1}, {1, 1}, 2};
  expect_bfloat16_close_to_float32([grouped](const auto& in) { return conv2d(in[0], in[1], Tensor(), grouped); },
                                   {xg, wg});
}

// The backward GEMMs/convolutions use the forward's precision, wherever backward() is called.
TEST(BFloat16Compute, BackwardKeepsTheForwardPrecision) {
  Rng rng(4);
  Tensor a = random_tensor({16, 32}, rng, DType::Float32).set_requires_grad(true);
  Tensor b = random_tensor({32, 8}, rng, DType::Float32).set_requires_grad(true);
  Tensor x = random_tensor({1, 3, 6, 6}, rng, DType::Float32).set_requires_grad(true);
  Tensor w = random_tensor({4, 3, 3, 3}, rng, DType::Float32).set_requires_grad(true);
  Tensor y, z;
  {
    PrecisionScope bf16(Precision::BFloat16);
    y = matmul(a, b);
    z = conv2d(x, w, Tensor());
  }
  y.backward(random_tensor(y.shape(), rng, DType::Float32));  // float32 mode here
  z.backward(random_tensor(z.shape(), rng, DType::Float32));
  EXPECT_TRUE(all_bfloat16(a.grad()) && all_bfloat16(b.grad())) << "matmul backward ran in float32";
  EXPECT_TRUE(all_bfloat16(x.grad()) && all_bfloat16(w.grad())) << "conv2d backward ran in float32";
}

// bf16 mode rounds float32 operands only: float64 ops (the gradient checks) compute as before.
TEST(BFloat16Compute, Float64IsUntouchedAndGradientsStillCheck) {
  Rng rng(5);
  const Tensor a = random_tensor({7, 9}, rng), b = random_tensor({9, 5}, rng);
  const Tensor exact = matmul(a, b);
  PrecisionScope bf16(Precision::BFloat16);
  expect_close(matmul(a, b), exact, 0.0, 0.0, "float64 matmul under bf16");
  testing::expect_gradients_match([](const auto& in) { return matmul(in[0], in[1]); }, {a, b});
  const Tensor x = random_tensor({1, 2, 5, 5}, rng), w = random_tensor({3, 2, 3, 3}, rng);
  testing::expect_gradients_match([](const auto& in) { return conv2d(in[0], in[1], Tensor()); }, {x, w});
}

// CUDA (bf16 buffers, cuBLAS/cuDNN with float32 compute) against the CPU emulation: both round
// the same inputs and their result to bf16, so they differ by summation order and at most one
// bf16 rounding step (2^-8 relative) of an output or gradient.
TEST(BFloat16ComputeCuda, MatchesCpuEmulation) {
  FFR_REQUIRE_CUDA();
  PrecisionScope bf16(Precision::BFloat16);
  Rng rng(6);
  const testing::CompareOptions tol{1e-2, 1e-2, true};
  const Tensor a = random_tensor({70, 96}, rng, DType::Float32), b = random_tensor({50, 96}, rng, DType::Float32);
  expect_cuda_matches_cpu([](const auto& in) { return matmul(in[0], in[1], false, true); }, {a, b}, tol);
  const Tensor ba = random_tensor({3, 40, 32}, rng, DType::Float32), bb = random_tensor({3, 32, 24}, rng, DType::Float32);
  expect_cuda_matches_cpu([](const auto& in) { return bmm(in[0], in[1]); }, {ba, bb}, tol);
  const Tensor x = random_tensor({2, 8, 12, 12}, rng, DType::Float32);
  const Tensor w = random_tensor({16, 8, 3, 3}, rng, DType::Float32), bias = random_tensor({16}, rng, DType::Float32);
  const Conv2dParams p{{1, 1}, {1, 1}, {1, 1}, 1};
  expect_cuda_matches_cpu([p](const auto& in) { return conv2d(in[0], in[1], in[2], p); }, {x, w, bias}, tol);
}

}  // namespace
}  // namespace ffr
