// oneDNN's float32 matmul (kernels/onednn/matmul.h) against the float64 OpenBLAS path
// (gemm_cpu), over transposes, batches, shared (stride 0) operands and odd sizes, and through
// matmul()/bmm()'s CPU dispatch. Skipped (saying so) in a build without oneDNN.
#include "kernels/matmul.h"

#include "tests/testing.h"

#ifdef FFR_WITH_ONEDNN
#include "kernels/onednn/matmul.h"
#endif

#include <gtest/gtest.h>

namespace ffr {
namespace {

#ifdef FFR_WITH_ONEDNN

using testing::expect_close;
using testing::random_tensor;

// float32 dot products of up to k = 512 values in [-1, 1].
constexpr double kRtol = 1e-4, kAtol = 1e-4;

TEST(OnednnMatmul, MatchesFloat64Reference) {
  Rng rng(31);
  struct Case {
    int64_t batch, m, n, k;
    bool shared_a, shared_b;
  };
  const std::vector<Case> cases = {{1, 5, 3, 7, false, false},  {1, 1, 1, 1, false, false},
                                   {1, 33, 65, 97, false, false}, {3, 4, 6, 5, false, false},
                                   {4, 17, 9, 16, false, false},  {3, 4, 6, 5, true, false},
                                   {3, 4, 6, 5, false, true},     {2, 1, 8, 3, false, false}};
  for (const Case& c : cases) {
    for (int t = 0; t < 4; ++t) {
      GemmProblem p;
      p.batch = c.batch;
      p.m = c.m;
      p.n = c.n;
      p.k = c.k;
      p.transpose_a = (t & 1) != 0;
      p.transpose_b = (t & 2) != 0;
      p.stride_a = c.shared_a ? 0 : c.m * c.k;
      p.stride_b = c.shared_b ? 0 : c.k * c.n;
      p.stride_c = c.m * c.n;
      SCOPED_TRACE("batch " + std::to_string(c.batch) + " m " + std::to_string(c.m) + " n " + std::to_string(c.n) +
                   " k " + std::to_string(c.k) + " transposes " + std::to_string(t) + (c.shared_a ? " shared a" : "") +
                   (c.shared_b ? " shared b" : ""));
      const Tensor a64 = random_tensor({c.shared_a ? 1 : c.batch, c.m * c.k}, rng);
      const Tensor b64 = random_tensor({c.shared_b ? 1 : c.batch, c.k * c.n}, rng);
      Tensor c64 = Tensor::empty({c.batch, c.m * c.n}, DType::Float64);
      gemm_cpu(p, a64.raw_data(), b64.raw_data(), c64.raw_data(), DType::Float64);
      const Tensor a = a64.to(DType::Float32), b = b64.to(DType::Float32);
      Tensor c32 = Tensor::empty({c.batch, c.m * c.n});
      onednn::gemm(p, a.data<float>(), b.data<float>(), c32.data<float>());
      expect_close(c32.to(DType::Float64), c64, kRtol, kAtol);
    }
  }
}

// Small products stay on OpenBLAS (FFR_ONEDNN_MATMUL_MIN_MACS, default 2^25 multiply-adds).
TEST(OnednnMatmul, OnlyLargeProductsGoToOnednn) {
  GemmProblem small;
  small.m = 50, small.n = 50, small.k = 64, small.batch = 192, small.stride_c = 50 * 50;
  EXPECT_FALSE(onednn::gemm_supported(small));
  GemmProblem large;
  large.m = 800, large.n = 768, large.k = 768;
  EXPECT_TRUE(onednn::gemm_supported(large));
  large.batch = 2;
  large.stride_c = 800 * 769;  // not dense: oneDNN writes c densely
  EXPECT_FALSE(onednn::gemm_supported(large));
}

// matmul()/bmm() on float32 CPU tensors, small (OpenBLAS) and at least 2^25 multiply-adds
// (oneDNN): results and gradients match float64.
TEST(OnednnMatmul, DispatchAndAutogradMatchFloat64) {
  Rng rng(32);
  auto check = [&](const Shape& sa, const Shape& sb, bool ta, bool tb, bool batched) {
    const Tensor a64 = random_tensor(sa, rng), b64 = random_tensor(sb, rng);
    auto run = [&](DType dtype) {
      Tensor a = a64.to(dtype).detach(), b = b64.to(dtype).detach();
      a.set_requires_grad(true);
      b.set_requires_grad(true);
      Tensor y = batched ? bmm(a, b, ta, tb) : matmul(a, b, ta, tb);
      y.backward(Tensor::ones(y.shape(), dtype));
      return std::vector<Tensor>{y.detach(), a.grad(), b.grad()};
    };
    const std::vector<Tensor> f32 = run(DType::Float32), f64 = run(DType::Float64);
    const char* names[] = {"y", "da", "db"};
    for (int i = 0; i < 3; ++i) expect_close(f32[i].to(DType::Float64), f64[i], kRtol, kAtol, names[i]);
  };
  check({2, 5, 7}, {7, 3}, false, false, false);  // Linear: leading dims flattened into M
  check({7, 5}, {3, 7}, true, true, false);
  check({3, 4, 6}, {3, 6, 5}, false, false, true);
  check({3, 6, 4}, {3, 5, 6}, true, true, true);  // attention's q k^T shape family
  check({256, 512}, {256, 512}, false, true, false);      // 2^25 multiply-adds: oneDNN
  check({32, 64, 128}, {32, 128, 128}, false, false, true);
}

#else

TEST(OnednnMatmul, MatchesFloat64Reference) {
  GTEST_SKIP() << "built without oneDNN (FFR_ENABLE_ONEDNN=OFF or libdnnl-dev not found)";
}

#endif

}  // namespace
}  // namespace ffr
