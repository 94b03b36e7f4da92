#include "kernels/dropout.h"
#include "engine/error.h"
#include "tests/testing.h"

#include <cmath>

namespace ffr {
namespace {

using testing::expect_cuda_matches_cpu;
using testing::expect_gradients_match;
using testing::random_tensor;

// Inputs away from zero, so a zero in the output means "dropped".
Tensor nonzero(const Shape& shape, Rng& rng, DType dtype = DType::Float32) {
  return random_tensor(shape, rng, dtype, 0.5, 1.5);
}

TEST(Dropout, MaskFollowsPhilox) {
  Rng data(30);
  Tensor x = nonzero({7, 13}, data);
  Rng rng(31, 5);
  rng.next_u32();  // an unaligned offset: reserve() moves to the next Philox block
  Rng expected_rng = rng;
  const uint64_t offset = expected_rng.reserve(uint64_t(x.numel()));
  const std::vector<float> y = dropout(x, 0.3, true, rng).to_vector<float>();
  EXPECT_EQ(rng.offset(), expected_rng.offset());
  const std::vector<float> xv = x.to_vector<float>();
  const float scale = float(1.0 / 0.7);
  for (size_t i = 0; i < xv.size(); ++i) {
    const bool keep = word_to_unit_float(philox_word(31, 5, offset + i)) >= 0.3f;
    EXPECT_EQ(y[i], keep ? xv[i] * scale : 0.f) << "element " << i;
  }
}

TEST(Dropout, DropRateAndScale) {
  Rng rng(32);
  const int64_t n = 200000;
  const std::vector<float> y = dropout(Tensor::ones({n}), 0.25, true, rng).to_vector<float>();
  int64_t dropped = 0;
  double total = 0.0;
  for (float v : y) {
    dropped += v == 0.f;
    total += v;
  }
  // Binomial(n, 0.25): standard deviation of the rate ~0.001, so 0.005 is a 5-sigma band.
  EXPECT_NEAR(double(dropped) / double(n), 0.25, 0.005);
  EXPECT_NEAR(total / double(n), 1.0, 0.01);  // inverted dropout keeps the expectation
}

TEST(Dropout, IdentityInEvalOrWithoutDropping) {
  Rng data(33);
  Tensor x = nonzero({4, 5}, data, DType::Float64);
  Rng rng(34);
  EXPECT_EQ(dropout(x, 0.5, false, rng).impl(), x.impl());
  EXPECT_EQ(dropout(x, 0.0, true, rng).impl(), x.impl());
  EXPECT_EQ(rng.offset(), 0u);  // no random numbers drawn
}

TEST(Dropout, Gradients) {
  Rng rng(35);
  Tensor x = random_tensor({3, 11}, rng);
  // A fresh generator per call: every evaluation of the finite differences sees the same mask.
  expect_gradients_match([](const auto& in) {
    Rng r(36);
    return dropout(in[0], 0.4, true, r);
  }, {x});
}

TEST(Dropout, BackwardReusesTheForwardMask) {
  Rng data(37);
  Tensor x = nonzero({50}, data, DType::Float64).set_requires_grad(true);
  Rng rng(38);
  Tensor y = dropout(x, 0.5, true, rng);
  dropout(Tensor::ones({50}), 0.5, true, rng);  // the generator moves on before backward runs
  y.backward(Tensor::ones({50}, DType::Float64));
  const std::vector<double> yv = y.to_vector<double>(), gx = x.grad().to_vector<double>();
  int64_t dropped = 0;
  for (size_t i = 0; i < yv.size(); ++i) {
    EXPECT_EQ(gx[i], yv[i] == 0.0 ? 0.0 : 2.0) << "element " << i;
    dropped += yv[i] == 0.0;
  }
  EXPECT_GT(dropped, 0);
  EXPECT_LT(dropped, 50);
}

TEST(Dropout, Errors) {
  Rng rng(39);
  Tensor x = Tensor::ones({4});
  EXPECT_THROW(dropout(x, 1.0, true, rng), Error);
  EXPECT_THROW(dropout(x, -0.1, true, rng), Error);
  EXPECT_THROW(dropout(x, 1.5, false, rng), Error);  // a bad p is an error in eval too
  EXPECT_THROW(dropout(Tensor::ones({4}, DType::Int64), 0.5, true, rng), Error);
}

TEST(DropoutCuda, SameMaskAsCpu) {
  FFR_REQUIRE_CUDA();
  Rng data(40);
  Tensor x = nonzero({1001, 37}, data);  // not a multiple of 4 elements
  Rng cpu_rng(41, 2), cuda_rng(41, 2);
  const std::vector<float> y_cpu = dropout(x, 0.1, true, cpu_rng).to_vector<float>();
  const std::vector<float> y_cuda = dropout(x.cuda(), 0.1, true, cuda_rng).to_vector<float>();
  EXPECT_EQ(y_cuda, y_cpu);  // same mask, and survivors are x * float(scale) on both
  EXPECT_EQ(cuda_rng.offset(), cpu_rng.offset());
  expect_cuda_matches_cpu([](const auto& in) {
    Rng r(42);
    return dropout(in[0], 0.6, true, r);
  }, {x}, {1e-7, 1e-7, true});
}

TEST(DropoutCuda, UnalignedPositionsMatchCpu) {
  FFR_REQUIRE_CUDA();
  // The launchers take any Philox position; the kernel reads 4 words per Philox block, so start
  // mid-block and end mid-block.
  Rng data(43);
  Tensor x = nonzero({103}, data);
  for (uint64_t offset : {1u, 2u, 3u, 6u}) {
    const PhiloxPosition at{44, 7, offset};
    Tensor y_cpu = Tensor::empty({103});
    dropout_apply_cpu(x.raw_data(), y_cpu.raw_data(), 103, DType::Float32, at, 0.5);
#ifdef FFR_WITH_CUDA  // the raw CUDA launcher exists only in CUDA builds
    Tensor x_cuda = x.cuda();
    Tensor y_cuda = Tensor::empty({103}, DType::Float32, Device::cuda());
    dropout_apply_cuda(x_cuda.raw_data(), y_cuda.raw_data(), 103, DType::Float32, at, 0.5);
    EXPECT_EQ(y_cuda.to_vector<float>(), y_cpu.to_vector<float>()) << "offset " << offset;
#endif
  }
}

TEST(DropoutCuda, BFloat16DropsTheSameElements) {
  FFR_REQUIRE_CUDA();
  Rng data(45);
  Tensor x = nonzero({4096}, data);
  Rng cpu_rng(46), cuda_rng(46);
  const std::vector<float> y_cpu = dropout(x, 0.2, true, cpu_rng).to_vector<float>();
  const std::vector<float> y_bf16 =
      dropout(x.cuda().to(DType::BFloat16), 0.2, true, cuda_rng).to_vector<float>();
  for (size_t i = 0; i < y_cpu.size(); ++i) {
    EXPECT_EQ(y_bf16[i] == 0.f, y_cpu[i] == 0.f) << "element " << i;
    EXPECT_NEAR(y_bf16[i], y_cpu[i], 1e-2 * std::abs(y_cpu[i])) << "element " << i;
  }
}

}  // namespace
}  // namespace ffr
