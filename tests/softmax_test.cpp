#include "kernels/softmax.h"
#include "engine/error.h"
#include "kernels/reduce.h"
#include "tests/testing.h"

#include <cmath>

namespace ffr {
namespace {

using testing::expect_close;
using testing::expect_cuda_matches_cpu;
using testing::expect_gradients_match;
using testing::random_tensor;

TEST(Softmax, GradientsEveryAxis) {
  Rng rng(31);
  for (int axis : {-1, 0, 1, 2}) {
    SCOPED_TRACE("axis " + std::to_string(axis));
    const Shape shape = {1 + int64_t(rng.below(3)), 2 + int64_t(rng.below(4)), 2 + int64_t(rng.below(5))};
    Tensor x = random_tensor(shape, rng, DType::Float64, -3.0, 3.0);
    expect_gradients_match([axis](const auto& in) { return softmax(in[0], axis); }, {x});
    expect_gradients_match([axis](const auto& in) { return log_softmax(in[0], axis); }, {x});
  }
  Tensor v = random_tensor({7}, rng, DType::Float64, -3.0, 3.0);
  expect_gradients_match([](const auto& in) { return softmax(in[0]); }, {v});
  expect_gradients_match([](const auto& in) { return log_softmax(in[0]); }, {v});
}

TEST(Softmax, ValuesMatchHandComputation) {
  // softmax([1,2,3]) = e^x / (e + e^2 + e^3); log_softmax = x - log(e + e^2 + e^3) = x - 3.40760596.
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3});
  expect_close(softmax(x), Tensor::from_vector(std::vector<double>{0.09003057317038046, 0.24472847105479764,
                                                                   0.6652409557748219}, {3}),
               1e-12, 0, "softmax");
  expect_close(log_softmax(x), Tensor::from_vector(std::vector<double>{-2.4076059644443806, -1.4076059644443806,
                                                                       -0.4076059644443806}, {3}),
               1e-12, 0, "log_softmax");
  // Over axis 0 of a [2,2]: columns normalised. Column 0 is (0, ln 3) -> (1/4, 3/4).
  Tensor m = Tensor::from_vector(std::vector<double>{0, 5, std::log(3.0), 5}, {2, 2});
  expect_close(softmax(m, 0), Tensor::from_vector(std::vector<double>{0.25, 0.5, 0.75, 0.5}, {2, 2}), 1e-12, 0, "axis 0");
}

TEST(Softmax, LargeAndInfiniteLogits) {
  // Max subtraction: e^1000 would overflow.
  Tensor big = Tensor::from_vector(std::vector<float>{1000, 1000, 990}, {3});
  const std::vector<float> p = softmax(big).to_vector<float>();
  EXPECT_NEAR(p[0], 0.5f / (1 + 0.5f * std::exp(-10.0f)), 1e-6);
  EXPECT_NEAR(log_softmax(big).to_vector<float>()[2], -10 - std::log(2 + std::exp(-10.0f)), 1e-4);
  // A masked (-inf) entry gets probability 0; a row of -inf only is NaN, as in PyTorch.
  Tensor masked = Tensor::from_vector(std::vector<float>{0, -INFINITY, 0}, {3});
  EXPECT_EQ(softmax(masked).to_vector<float>(), (std::vector<float>{0.5f, 0.0f, 0.5f}));
  Tensor all_masked = Tensor::from_vector(std::vector<float>{-INFINITY, -INFINITY}, {2});
  EXPECT_TRUE(std::isnan(softmax(all_masked).to_vector<float>()[0]));
}

TEST(Softmax, HandGradient) {
  // For y = softmax(x) and upstream one-hot e_k: dx = y_k (e_k - y).
  Tensor x = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}).set_requires_grad(true);
  Tensor y = softmax(x);
  y.backward(Tensor::from_vector(std::vector<double>{0, 0, 1}, {3}));
  const std::vector<double> yv = y.to_vector<double>();
  expect_close(x.grad(), Tensor::from_vector(std::vector<double>{-yv[2] * yv[0], -yv[2] * yv[1], yv[2] * (1 - yv[2])}, {3}),
               1e-12, 1e-15, "softmax grad");
  // log_softmax with upstream ones: dx = 1 - 3 softmax(x).
  Tensor x2 = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}).set_requires_grad(true);
  log_softmax(x2).backward(Tensor::ones({3}, DType::Float64));
  expect_close(x2.grad(), Tensor::from_vector(std::vector<double>{1 - 3 * yv[0], 1 - 3 * yv[1], 1 - 3 * yv[2]}, {3}),
               1e-12, 1e-15, "log_softmax grad");
}

TEST(Softmax, BadInputsAreErrors) {
  Tensor x = Tensor::ones({2, 3});
  EXPECT_THROW(softmax(x, 2), Error);
  EXPECT_THROW(softmax(x, -3), Error);
  EXPECT_THROW(log_softmax(Tensor::ones({2, 3}, DType::Int64)), Error);
  EXPECT_THROW(softmax(Tensor::ones({2, 3}, DType::BFloat16)), Error);  // the CPU has no bf16 kernels
}

// Shapes cover each CUDA path: a warp per row (dim <= 1024), a block per row (longer rows),
// and the strided kernel (an axis that is not the last).
struct SoftmaxCase {
  Shape shape;
  int axis;
};
const std::vector<SoftmaxCase> kCudaCases = {
    {{64, 10}, -1}, {{33, 1024}, 1}, {{5, 3000}, -1}, {{4, 7, 33}, 1}, {{6, 5, 4}, 0}, {{8, 1}, -1}, {{3, 2, 300}, 2}};

TEST(SoftmaxCuda, MatchesCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(32);
  const testing::CompareOptions tol{1e-5, 1e-6, true};
  for (const auto& [shape, axis] : kCudaCases) {
    SCOPED_TRACE(shape_str(shape) + " axis " + std::to_string(axis));
    Tensor x = random_tensor(shape, rng, DType::Float32, -8.0, 8.0);
    expect_cuda_matches_cpu([axis = axis](const auto& in) { return softmax(in[0], axis); }, {x}, tol);
    expect_cuda_matches_cpu([axis = axis](const auto& in) { return log_softmax(in[0], axis); }, {x}, {1e-5, 1e-5, true});
  }
}

TEST(SoftmaxCuda, LargeAndInfiniteLogits) {
  FFR_REQUIRE_CUDA();
  Tensor x = Tensor::from_vector(std::vector<float>{1000, 1000, 990, 0, -INFINITY, 0, -INFINITY, -INFINITY}, {4, 2});
  const std::vector<float> gpu = softmax(x.cuda()).cpu().to_vector<float>();
  const std::vector<float> cpu = softmax(x).to_vector<float>();
  for (size_t i = 0; i < cpu.size(); ++i) {
    if (std::isnan(cpu[i])) {
      EXPECT_TRUE(std::isnan(gpu[i])) << i;
    } else {
      EXPECT_NEAR(gpu[i], cpu[i], 1e-6) << i;
    }
  }
}

// One +inf in a softmax column: the CPU reference gives the whole column NaN (exp(inf - inf));
// each CUDA path must too (the strided kernel once gave [0, .., NaN, .., 0]).
TEST(SoftmaxCuda, PositiveInfinityMakesTheWholeColumnNaN) {
  FFR_REQUIRE_CUDA();
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, INFINITY, 7, 8, 9, 10, 11, 12}, {2, 3, 2});
  for (int axis : {0, 1, 2}) {  // strided (outer 1), strided (inner 2), rows
    SCOPED_TRACE("axis " + std::to_string(axis));
    for (bool log : {false, true}) {
      const std::vector<float> cpu = (log ? log_softmax(x, axis) : softmax(x, axis)).to_vector<float>();
      const std::vector<float> gpu = (log ? log_softmax(x.cuda(), axis) : softmax(x.cuda(), axis)).cpu().to_vector<float>();
      ASSERT_EQ(gpu.size(), cpu.size());
      int nans = 0;
      for (size_t i = 0; i < cpu.size(); ++i) {
        nans += std::isnan(cpu[i]);
        if (std::isnan(cpu[i])) {
          EXPECT_TRUE(std::isnan(gpu[i])) << i;
        } else {
          EXPECT_NEAR(gpu[i], cpu[i], 1e-6) << i;
        }
      }
      EXPECT_EQ(nans, int(x.shape()[size_t(axis)])) << "the CPU reference: the +inf's column is all NaN";
    }
  }
}

// bf16 in and out with float32 math: the outputs carry bf16 rounding (2^-9 relative).
TEST(SoftmaxCuda, BFloat16WithinTolerance) {
  FFR_REQUIRE_CUDA();
  Rng rng(33);
  for (const auto& [shape, axis] : kCudaCases) {
    SCOPED_TRACE(shape_str(shape) + " axis " + std::to_string(axis));
    const Tensor x = random_tensor(shape, rng, DType::Float32, -8.0, 8.0).to(DType::BFloat16);
    const Tensor gy = random_tensor(shape, rng, DType::Float32).to(DType::BFloat16);
    for (bool log : {false, true}) {
      Tensor x_gpu = x.cuda().set_requires_grad(true);
      Tensor y_gpu = log ? log_softmax(x_gpu, axis) : softmax(x_gpu, axis);
      y_gpu.backward(gy.cuda());
      Tensor x_ref = x.to(DType::Float32).set_requires_grad(true);
      Tensor y_ref = log ? log_softmax(x_ref, axis) : softmax(x_ref, axis);
      y_ref.backward(gy.to(DType::Float32));
      expect_close(y_gpu.cpu().to(DType::Float32), y_ref, 1e-2, 1e-3, "bf16 output");
      expect_close(x_gpu.grad().cpu().to(DType::Float32), x_ref.grad(), 1e-2, 1e-2, "bf16 gradient");
    }
  }
}

TEST(SoftmaxCuda, BadInputsAreErrors) {
  FFR_REQUIRE_CUDA();
  EXPECT_THROW(softmax(Tensor::ones({2, 3}, DType::Float32, Device::cuda()), 2), Error);
  EXPECT_THROW(softmax(Tensor::ones({2, 3}, DType::Int32, Device::cuda())), Error);
}

}  // namespace
}  // namespace ffr
