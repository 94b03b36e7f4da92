#include "kernels/matmul.h"
#include "engine/error.h"
#include "engine/settings.h"
#include "tests/testing.h"

namespace ffr {
namespace {

using testing::expect_close;
using testing::expect_cuda_matches_cpu;
using testing::expect_gradients_match;
using testing::random_tensor;

// Stored shape of an [rows, cols] operand, transposed when asked.
Shape stored(int64_t rows, int64_t cols, bool transposed) { return transposed ? Shape{cols, rows} : Shape{rows, cols}; }

const bool kFlags[] = {false, true};

TEST(Matmul, GradientsAllTransposes) {
  Rng rng(11);
  for (bool ta : kFlags) {
    for (bool tb : kFlags) {
      const int64_t m = 1 + int64_t(rng.below(5)), k = 1 + int64_t(rng.below(5)), n = 1 + int64_t(rng.below(5));
      SCOPED_TRACE("m=" + std::to_string(m) + " k=" + std::to_string(k) + " n=" + std::to_string(n) +
                   " ta=" + std::to_string(ta) + " tb=" + std::to_string(tb));
      Tensor a = random_tensor(stored(m, k, ta), rng), b = random_tensor(stored(k, n, tb), rng);
      expect_gradients_match([ta, tb](const auto& in) { return matmul(in[0], in[1], ta, tb); }, {a, b});
    }
  }
}

TEST(Matmul, GradientsLeadingBatchDims) {
  Rng rng(12);
  Tensor a = random_tensor({2, 3, 4}, rng);
  Tensor b = random_tensor({4, 5}, rng), bt = random_tensor({5, 4}, rng);
  expect_gradients_match([](const auto& in) { return matmul(in[0], in[1]); }, {a, b});
  expect_gradients_match([](const auto& in) { return matmul(in[0], in[1], false, true); }, {a, bt});
}

TEST(Matmul, BmmGradientsAllTransposes) {
  Rng rng(13);
  for (bool ta : kFlags) {
    for (bool tb : kFlags) {
      const int64_t batch = 1 + int64_t(rng.below(3));
      const int64_t m = 1 + int64_t(rng.below(4)), k = 1 + int64_t(rng.below(4)), n = 1 + int64_t(rng.below(4));
      Shape sa = stored(m, k, ta), sb = stored(k, n, tb);
      sa.insert(sa.begin(), batch);
      sb.insert(sb.begin(), batch);
      Tensor a = random_tensor(sa, rng), b = random_tensor(sb, rng);
      expect_gradients_match([ta, tb](const auto& in) { return bmm(in[0], in[1], ta, tb); }, {a, b});
    }
  }
}

TEST(Matmul, ValuesMatchHandComputation) {
  // [[1,2],[3,4]] [[5,6],[7,8]] = [[19,22],[43,50]]
  Tensor a = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 2});
  Tensor b = Tensor::from_vector(std::vector<float>{5, 6, 7, 8}, {2, 2});
  EXPECT_EQ(matmul(a, b).to_vector<float>(), (std::vector<float>{19, 22, 43, 50}));
  EXPECT_EQ(matmul(a, b, true, false).to_vector<float>(), (std::vector<float>{26, 30, 38, 44}));
  EXPECT_EQ(matmul(a, b, false, true).to_vector<float>(), (std::vector<float>{17, 23, 39, 53}));
  EXPECT_EQ(matmul(a, b, true, true).to_vector<float>(), (std::vector<float>{23, 31, 34, 46}));
  // Non-square: [1,3] x [3,2].
  Tensor r = Tensor::from_vector(std::vector<float>{1, 2, 3}, {1, 3});
  Tensor s = Tensor::from_vector(std::vector<float>{1, 0, 0, 1, 1, 1}, {3, 2});
  Tensor rs = matmul(r, s);
  EXPECT_EQ(rs.shape(), (Shape{1, 2}));
  EXPECT_EQ(rs.to_vector<float>(), (std::vector<float>{4, 5}));
  // Leading dims are flattened and restored: [2,1,2] x [2,2] -> [2,1,2].
  Tensor x = Tensor::from_vector(std::vector<float>{1, 2, 3, 4}, {2, 1, 2});
  Tensor y = matmul(x, b);
  EXPECT_EQ(y.shape(), (Shape{2, 1, 2}));
  EXPECT_EQ(y.to_vector<float>(), (std::vector<float>{19, 22, 43, 50}));
  // bmm: batch 0 is a b, batch 1 is the identity times b.
  Tensor ab = Tensor::from_vector(std::vector<float>{1, 2, 3, 4, 1, 0, 0, 1}, {2, 2, 2});
  Tensor bb = Tensor::from_vector(std::vector<float>{5, 6, 7, 8, 5, 6, 7, 8}, {2, 2, 2});
  EXPECT_EQ(bmm(ab, bb).to_vector<float>(), (std::vector<float>{19, 22, 43, 50, 5, 6, 7, 8}));
  // An empty inner dimension is an empty sum.
  Tensor z = matmul(Tensor::ones({2, 0}), Tensor::ones({0, 3}));
  EXPECT_EQ(z.to_vector<float>(), std::vector<float>(6, 0.0f));
}

TEST(Matmul, HandGradients) {
  // y = a b summed: dA = 1 b^T (row sums of b), dB = a^T 1 (column sums of a).
  Tensor a = Tensor::from_vector(std::vector<double>{1, 2, 3, 4}, {2, 2}).set_requires_grad(true);
  Tensor b = Tensor::from_vector(std::vector<double>{5, 6, 7, 8}, {2, 2}).set_requires_grad(true);
  matmul(a, b).backward(Tensor::ones({2, 2}, DType::Float64));
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{11, 15, 11, 15}));
  EXPECT_EQ(b.grad().to_vector<double>(), (std::vector<double>{4, 4, 6, 6}));
}

TEST(Matmul, BadShapesAreErrors) {
  Tensor a = Tensor::ones({2, 3}), b = Tensor::ones({4, 5});
  EXPECT_THROW(matmul(a, b), Error);                               // K mismatch
  EXPECT_THROW(matmul(a, Tensor::ones({3, 4}), true, false), Error);  // [3,2]^T needs b [2,N]
  EXPECT_THROW(matmul(Tensor::ones({3}), Tensor::ones({3, 2})), Error);
  EXPECT_THROW(matmul(a, Tensor::ones({2, 3, 4})), Error);
  EXPECT_THROW(matmul(Tensor::ones({2, 2, 3}), Tensor::ones({2, 4}), true, false), Error);
  EXPECT_THROW(matmul(a, Tensor::ones({3, 2}, DType::Float64)), Error);
  EXPECT_THROW(matmul(Tensor::ones({2, 3}, DType::Int64), Tensor::ones({3, 2}, DType::Int64)), Error);
  EXPECT_THROW(matmul(Tensor::ones({2, 3}, DType::BFloat16), Tensor::ones({3, 2}, DType::BFloat16)), Error);
  EXPECT_THROW(bmm(Tensor::ones({2, 2, 3}), Tensor::ones({3, 3, 2})), Error);  // batch mismatch
  EXPECT_THROW(bmm(Tensor::ones({2, 2, 3}), Tensor::ones({2, 4, 2})), Error);  // K mismatch
  EXPECT_THROW(bmm(a, Tensor::ones({3, 2})), Error);
}

TEST(Matmul, ErrorNamesTheOp) {
  try {
    matmul(Tensor::ones({2, 3}), Tensor::ones({4, 5}));
    FAIL() << "no error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("matmul("), std::string::npos) << e.what();
  }
}

// float32 without TF32: cuBLAS and OpenBLAS differ only in summation order.
TEST(MatmulCuda, MatchesCpu) {
  FFR_REQUIRE_CUDA();
  SettingsScope exact({/*allow_tf32=*/false, /*deterministic=*/false});
  Rng rng(21);
  const testing::CompareOptions tol{1e-5, 1e-5, true};
  for (bool ta : kFlags) {
    for (bool tb : kFlags) {
      Tensor a = random_tensor(stored(67, 45, ta), rng, DType::Float32);
      Tensor b = random_tensor(stored(45, 33, tb), rng, DType::Float32);
      expect_cuda_matches_cpu([ta, tb](const auto& in) { return matmul(in[0], in[1], ta, tb); }, {a, b}, tol);
      Tensor ba = random_tensor({3, a.size(0), a.size(1)}, rng, DType::Float32);
      Tensor bb = random_tensor({3, b.size(0), b.size(1)}, rng, DType::Float32);
      expect_cuda_matches_cpu([ta, tb](const auto& in) { return bmm(in[0], in[1], ta, tb); }, {ba, bb}, tol);
    }
  }
  Tensor x = random_tensor({4, 7, 45}, rng, DType::Float32);
  Tensor w = random_tensor({33, 45}, rng, DType::Float32);
  expect_cuda_matches_cpu([](const auto& in) { return matmul(in[0], in[1], false, true); }, {x, w}, tol);
}

// TF32 keeps 10 mantissa bits of each operand: ~1e-3 relative per product. With K = 64 terms of
// size ~0.25 the summed error stays below a few 1e-3 absolute.
TEST(MatmulCuda, Tf32WithinTolerance) {
  FFR_REQUIRE_CUDA();
  SettingsScope tf32({/*allow_tf32=*/true, /*deterministic=*/false});
  Rng rng(22);
  Tensor a = random_tensor({96, 64}, rng, DType::Float32), b = random_tensor({64, 80}, rng, DType::Float32);
  expect_cuda_matches_cpu([](const auto& in) { return matmul(in[0], in[1]); }, {a, b}, {1e-3, 5e-3, true});
  Tensor ba = random_tensor({4, 96, 64}, rng, DType::Float32), bb = random_tensor({4, 80, 64}, rng, DType::Float32);
  expect_cuda_matches_cpu([](const auto& in) { return bmm(in[0], in[1], false, true); }, {ba, bb}, {1e-3, 5e-3, true});
}

// bf16 operands, float32 accumulation, bf16 output: the error is the output's rounding (2^-9
// relative), checked against a float32 CPU product of the same bf16-rounded operands.
TEST(MatmulCuda, BFloat16WithinTolerance) {
  FFR_REQUIRE_CUDA();
  Rng rng(23);
  for (bool tb : kFlags) {
    const Tensor a = random_tensor({70, 96}, rng, DType::Float32).to(DType::BFloat16);
    const Tensor b = random_tensor(stored(96, 50, tb), rng, DType::Float32).to(DType::BFloat16);
    const Tensor gy = random_tensor({70, 50}, rng, DType::Float32).to(DType::BFloat16);

    Tensor a_gpu = a.cuda().set_requires_grad(true), b_gpu = b.cuda().set_requires_grad(true);
    Tensor y_gpu = matmul(a_gpu, b_gpu, false, tb);
    ASSERT_EQ(y_gpu.dtype(), DType::BFloat16);
    y_gpu.backward(gy.cuda());

    Tensor a_ref = a.to(DType::Float32).set_requires_grad(true), b_ref = b.to(DType::Float32).set_requires_grad(true);
    Tensor y_ref = matmul(a_ref, b_ref, false, tb);
    y_ref.backward(gy.to(DType::Float32));

    expect_close(y_gpu.cpu().to(DType::Float32), y_ref, 1e-2, 1e-2, "bf16 output");
    expect_close(a_gpu.grad().cpu().to(DType::Float32), a_ref.grad(), 1e-2, 1e-2, "bf16 grad a");
    expect_close(b_gpu.grad().cpu().to(DType::Float32), b_ref.grad(), 1e-2, 1e-2, "bf16 grad b");
  }
}

TEST(MatmulCuda, BadShapesAreErrors) {
  FFR_REQUIRE_CUDA();
  Tensor a = Tensor::ones({2, 3}, DType::Float32, Device::cuda()), b = Tensor::ones({4, 5}, DType::Float32, Device::cuda());
  EXPECT_THROW(matmul(a, b), Error);
  EXPECT_THROW(matmul(a, Tensor::ones({3, 2})), Error);  // device mismatch
  EXPECT_THROW(matmul(Tensor::ones({2, 3}, DType::Int64, Device::cuda()), Tensor::ones({3, 2}, DType::Int64, Device::cuda())), Error);
}

}  // namespace
}  // namespace ffr
