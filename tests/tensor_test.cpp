#include "engine/allocator.h"
#include "engine/bfloat16.h"
#include "engine/error.h"
#include "engine/tensor.h"
#include "kernels/convert.h"
#include "tests/testing.h"

#include <limits>

namespace ffr {
namespace {

TEST(Tensor, CreationAndProperties) {
  Tensor t = Tensor::full({2, 3}, 1.5);
  EXPECT_EQ(t.shape(), (Shape{2, 3}));
  EXPECT_EQ(t.numel(), 6);
  EXPECT_EQ(t.size(-1), 3);
  EXPECT_EQ(t.nbytes(), 24u);
  EXPECT_EQ(t.str(), "float32[2,3] cpu");
  EXPECT_EQ(t.to_vector<float>(), std::vector<float>(6, 1.5f));
  EXPECT_THROW(t.size(2), Error);
  EXPECT_THROW(Tensor::empty({-1, 2}), Error);
  EXPECT_THROW(Tensor().shape(), Error);
}

TEST(Tensor, ReshapeIsAViewAndInfersOneDim) {
  Tensor t = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor r = t.reshape({3, -1});
  EXPECT_EQ(r.shape(), (Shape{3, 2}));
  EXPECT_EQ(r.raw_data(), t.raw_data());
  EXPECT_THROW(t.reshape({4, -1}), Error);
  EXPECT_THROW(t.reshape({-1, -1}), Error);
}

TEST(Tensor, ReshapeGradient) {
  Rng rng(4);
  Tensor x = testing::random_tensor({2, 3, 4}, rng);
  testing::expect_gradients_match([](const auto& in) { return in[0].reshape({4, -1}); }, {x});
}

TEST(TensorCuda, ReshapeMatchesCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(4);
  Tensor x = testing::random_tensor({2, 3, 4}, rng, DType::Float32);
  testing::expect_cuda_matches_cpu([](const auto& in) { return in[0].reshape({6, 4}); }, {x}, {0.0, 0.0, true});
}

TEST(Tensor, DtypeConversionRoundsToNearestEven) {
  // 1 + 2^-8 lies exactly between two bfloat16 values: ties go to the even mantissa (1.0).
  EXPECT_EQ(bfloat16_to_float(float_to_bfloat16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_EQ(bfloat16_to_float(float_to_bfloat16(1.0f + 3.0f / 256)), 1.0f + 4.0f / 256);
  Tensor x = Tensor::from_vector(std::vector<float>{0.1f, -2.5f, 3e5f}, {3});
  Tensor back = x.to(DType::BFloat16).to(DType::Float32);
  testing::expect_close(back, x, 1.0 / 128, 0.0, "bf16 round trip");
  EXPECT_EQ(x.to(DType::Int64).to_vector<int64_t>(), (std::vector<int64_t>{0, -2, 300000}));
}

// Through double, an int64 above 2^53 would lose its low bits (INT64_MAX read back as -2^63).
TEST(Tensor, IntegerConversionsAreExact) {
  const std::vector<int64_t> big{std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min(),
                                 (int64_t(1) << 53) + 1, -7};
  Tensor x = Tensor::from_vector(big, {4});
  EXPECT_EQ(x.to_vector<int64_t>(), big);
  EXPECT_EQ(x.clone().to_vector<int64_t>(), big);
  Tensor small = Tensor::from_vector(std::vector<int64_t>{-2147483648LL, 2147483647LL, 12345}, {3});
  EXPECT_EQ(small.to(DType::Int32).to(DType::Int64).to_vector<int64_t>(), small.to_vector<int64_t>());
}

TEST(TensorCuda, IntegerConversionsAreExact) {
  FFR_REQUIRE_CUDA();
  const std::vector<int64_t> big{std::numeric_limits<int64_t>::max(), (int64_t(1) << 53) + 1, -7};
  Tensor x = Tensor::from_vector(big, {3}).cuda();
  EXPECT_EQ(x.to_vector<int64_t>(), big);
  Tensor small = Tensor::from_vector(std::vector<int64_t>{-2147483648LL, 2147483647LL, 12345}, {3}, DType::Int64,
                                     Device::cuda(0));
  EXPECT_EQ(small.to(DType::Int32).to(DType::Int64).to_vector<int64_t>(), small.to_vector<int64_t>());
}

TEST(Tensor, ConversionGradient) {
  Rng rng(3);
  Tensor x = testing::random_tensor({4, 3}, rng);
  testing::expect_gradients_match(
      [](const auto& in) { return to_dtype(to_dtype(in[0], DType::Float32), DType::Float64); }, {x},
      {1e-3, 1e-3, 1e-4, 64});  // through float32: finite differences need a larger step
}

TEST(Tensor, CudaRequestWithoutGpuIsAClearError) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is present; this checks the no-GPU path";
  try {
    Tensor::empty({2}, DType::Float32, Device::cuda(0));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("no GPU is usable"), std::string::npos) << e.what();
  }
  EXPECT_EQ(default_device(), Device::cpu());
}

TEST(Tensor, HostAllocatorLimitGivesOutOfMemoryError) {
  Allocator& cpu = cpu_allocator();
  const size_t in_use = cpu.stats().allocated_bytes;
  cpu.set_limit(in_use + 1024);
  EXPECT_THROW(Tensor::empty({1024}), OutOfMemoryError);  // 4 KiB over a 1 KiB allowance
  Tensor small = Tensor::empty({16});                         // 64 B fits
  cpu.set_limit(0);
  EXPECT_EQ(small.numel(), 16);
}

TEST(TensorCuda, RoundTripAndFill) {
  FFR_REQUIRE_CUDA();
  Rng rng(8);
  Tensor x = testing::random_tensor({33, 7}, rng, DType::Float32);
  EXPECT_EQ(x.cuda().cpu().to_vector<float>(), x.to_vector<float>());
  Tensor z = Tensor::full({1000}, 2.5, DType::BFloat16, Device::cuda(0));
  EXPECT_EQ(z.to(DType::Float32).to_vector<float>(), std::vector<float>(1000, 2.5f));
  EXPECT_EQ(x.cuda().to(DType::BFloat16).cpu().to(DType::Float32).to_vector<float>(),
            x.to(DType::BFloat16).to(DType::Float32).to_vector<float>());
}

TEST(TensorCuda, CachingAllocatorReusesBlocksInSteadyState) {
  FFR_REQUIRE_CUDA();
  Allocator& gpu = cuda_allocator(0);
  for (int i = 0; i < 3; ++i) Tensor::empty({1 << 20}, DType::Float32, Device::cuda(0));  // warm the pool
  const uint64_t os_before = gpu.stats().os_allocations;
  gpu.reset_peak();
  for (int i = 0; i < 100; ++i) {
    Tensor a = Tensor::empty({1 << 20}, DType::Float32, Device::cuda(0));
    Tensor b = Tensor::empty({1000}, DType::Float32, Device::cuda(0));
  }
  EXPECT_EQ(gpu.stats().os_allocations - os_before, 1u) << "only the small block is new; the rest is reused";
  EXPECT_GE(gpu.stats().peak_allocated_bytes, size_t(4) << 20);
}

TEST(TensorCuda, OutOfMemoryNamesRequestedAndFreeBytes) {
  FFR_REQUIRE_CUDA();
  try {
    Tensor::empty({int64_t(1) << 42}, DType::Float32, Device::cuda(0));  // 16 TiB
    FAIL() << "expected OutOfMemoryError";
  } catch (const OutOfMemoryError& e) {
    EXPECT_EQ(e.requested_bytes, size_t(1) << 44);
    EXPECT_NE(std::string(e.what()).find("smaller batch"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace ffr
