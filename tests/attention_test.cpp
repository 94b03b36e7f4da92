#include "kernels/attention.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "engine/error.h"
#include "tests/testing.h"

#include <cmath>

namespace ffr {
namespace {

using testing::expect_cuda_matches_cpu;
using testing::expect_gradients_match;
using testing::random_tensor;

Tensor attention(const std::vector<Tensor>& in) { return scaled_dot_product_attention(in[0], in[1], in[2]); }


struct Sizes {
  int64_t batch, heads, queries, keys, head_dim;
};

std::vector<Tensor> random_qkv(const Sizes& s, Rng& rng, DType dtype) {
  return {random_tensor({s.batch, s.heads, s.queries, s.head_dim}, rng, dtype),
          random_tensor({s.batch, s.heads, s.keys, s.head_dim}, rng, dtype),
          random_tensor({s.batch, s.heads, s.keys, s.head_dim}, rng, dtype)};
}

TEST(Attention, Gradients) {
  Rng rng(50);
  // Self-attention at the brief's small shape, and cross-attention (Tq != Tk).
  for (const Sizes& s : {Sizes{2, 2, 5, 5, 4}, Sizes{1, 3, 3, 6, 2}}) {
    SCOPED_TRACE(std::to_string(s.queries) + " queries, " + std::to_string(s.keys) + " keys");
    expect_gradients_match(attention, random_qkv(s, rng, DType::Float64));
  }
  // Larger scores (a peaked softmax) stress the saved logsumexp.
  std::vector<Tensor> qkv = random_qkv({2, 2, 5, 5, 4}, rng, DType::Float64);
  qkv[0] = random_tensor(qkv[0].shape(), rng, DType::Float64, -3.0, 3.0);
  expect_gradients_match(attention, qkv);
}

TEST(Attention, ValuesMatchHandComputation) {
  // Dh = 4, so scores are q.k / 2. Query 0 scores (2, 0); query 1 is zero: scores (0, 0).
  Tensor q = Tensor::from_vector(std::vector<double>{1, 1, 1, 1, 0, 0, 0, 0}, {1, 1, 2, 4});
  Tensor k = Tensor::from_vector(std::vector<double>{1, 1, 1, 1, 0, 0, 0, 0}, {1, 1, 2, 4});
  Tensor v = Tensor::from_vector(std::vector<double>{1, 2, 3, 4, 5, 6, 7, 8}, {1, 1, 2, 4});
  const double p0 = std::exp(2.0) / (std::exp(2.0) + 1.0), p1 = 1.0 - p0;
  const std::vector<double> expected = {p0 * 1 + p1 * 5, p0 * 2 + p1 * 6, p0 * 3 + p1 * 7, p0 * 4 + p1 * 8,
                                        3, 4, 5, 6};
  testing::expect_close(scaled_dot_product_attention(q, k, v), Tensor::from_vector(expected, {1, 1, 2, 4}), 1e-12,
                        1e-12, "output");
}

TEST(Attention, ConstantValuesAndLargeScores) {
  // Softmax rows sum to 1: constant value rows come out unchanged, even with scores of ~1e4
  // (the row max is subtracted before exp, so nothing overflows).
  Rng rng(51);
  Tensor q = random_tensor({1, 2, 6, 8}, rng, DType::Float32, -100.0, 100.0);
  Tensor k = random_tensor({1, 2, 7, 8}, rng, DType::Float32, -100.0, 100.0);
  Tensor v = Tensor::full({1, 2, 7, 8}, 0.75);
  const std::vector<float> out = scaled_dot_product_attention(q, k, v).to_vector<float>();
  for (float value : out) EXPECT_NEAR(value, 0.75f, 1e-6);
}

TEST(Attention, Errors) {
  Tensor x = Tensor::zeros({1, 2, 3, 4});
  EXPECT_THROW(scaled_dot_product_attention(Tensor::zeros({2, 3, 4}), x, x), Error);
  EXPECT_THROW(scaled_dot_product_attention(x, Tensor::zeros({1, 2, 3, 5}), Tensor::zeros({1, 2, 3, 5})), Error);
  EXPECT_THROW(scaled_dot_product_attention(x, x, Tensor::zeros({1, 2, 4, 4})), Error);
  EXPECT_THROW(scaled_dot_product_attention(x, Tensor::zeros({1, 3, 3, 4}), Tensor::zeros({1, 3, 3, 4})), Error);
  EXPECT_THROW(scaled_dot_product_attention(x, Tensor::zeros({1, 2, 0, 4}), Tensor::zeros({1, 2, 0, 4})), Error);
  EXPECT_THROW(scaled_dot_product_attention(x, x, Tensor::zeros({1, 2, 3, 4}, DType::Float64)), Error);
}

// The packed op (ViT's path): q, k, v as one [3, B, H, T, Dh] tensor, whose backward writes all
// three gradients into one buffer.
Tensor attention_packed(const std::vector<Tensor>& in) { return scaled_dot_product_attention_packed(in[0]); }

TEST(Attention, PackedGradients) {
  Rng rng(55);
  expect_gradients_match(attention_packed, {random_tensor({3, 2, 2, 5, 4}, rng, DType::Float64)});
}

TEST(Attention, PackedMatchesSeparateInputsBitForBit) {
  Rng rng(56);
  Tensor qkv = random_tensor({3, 2, 3, 7, 8}, rng, DType::Float32);
  const Shape per_head{2, 3, 7, 8};
  const int64_t n = qkv.numel() / 3;
  const std::vector<float> all = qkv.to_vector<float>();
  std::vector<Tensor> separate;
  for (int64_t i = 0; i < 3; ++i) {
    separate.push_back(Tensor::from_vector(std::vector<float>(all.begin() + i * n, all.begin() + (i + 1) * n), per_head)
                           .set_requires_grad(true));
  }
  qkv.set_requires_grad(true);
  Tensor packed_out = scaled_dot_product_attention_packed(qkv);
  Tensor separate_out = scaled_dot_product_attention(separate[0], separate[1], separate[2]);
  EXPECT_EQ(packed_out.to_vector<float>(), separate_out.to_vector<float>());
  Tensor weights = random_tensor(per_head, rng, DType::Float32);
  sum(mul(packed_out, weights)).backward();
  sum(mul(separate_out, weights)).backward();
  std::vector<float> expected;
  for (const Tensor& t : separate) {
    const std::vector<float> g = t.grad().to_vector<float>();
    expected.insert(expected.end(), g.begin(), g.end());
  }
  EXPECT_EQ(qkv.grad().to_vector<float>(), expected);
  EXPECT_THROW(scaled_dot_product_attention_packed(random_tensor({2, 1, 1, 3, 4}, rng, DType::Float32)), Error);
}

TEST(AttentionCuda, PackedMatchesCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(57);
  expect_cuda_matches_cpu(attention_packed, {random_tensor({3, 2, 3, 50, 64}, rng, DType::Float32)}, {1e-4, 1e-5, true});
}

TEST(AttentionCuda, MatchesCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(52);
  // ViT-B/32 (T = 50, Dh = 64); partial tiles with Tq != Tk; the largest head; a head that is
  // not a multiple of 32; a long sequence (many key tiles through the online softmax).
  for (const Sizes& s : {Sizes{2, 3, 50, 50, 64}, Sizes{1, 2, 37, 70, 16}, Sizes{1, 2, 20, 33, 128},
                         Sizes{2, 1, 9, 9, 40}, Sizes{1, 1, 300, 300, 64}}) {
    SCOPED_TRACE(std::to_string(s.queries) + "x" + std::to_string(s.keys) + ", Dh " + std::to_string(s.head_dim));
    // float32 accumulation over <= 300 keys (GPU) against double (CPU).
    expect_cuda_matches_cpu(attention, random_qkv(s, rng, DType::Float32), {1e-4, 1e-5, true});
  }
}

TEST(AttentionCuda, BFloat16WithinTolerance) {
  FFR_REQUIRE_CUDA();
  Rng rng(53);
  // rtol: 2.5 bf16 ulps. atol: the backward's rowsum(dout * out) uses the bf16 output (as
  // FlashAttention does) where the CPU has it in float32; at this shape that moves dq by up to
  // ~1e-4 (a host emulation of the kernels put the worst case at 0.08 of this budget).
  expect_cuda_matches_cpu(testing::in_bfloat16(attention), random_qkv({2, 3, 50, 50, 64}, rng, DType::Float32),
                          {1e-2, 1e-3, true});
}

TEST(AttentionCuda, GradientsBitIdenticalRunToRun) {
  FFR_REQUIRE_CUDA();
  Rng rng(54);
  std::vector<Tensor> qkv = random_qkv({4, 2, 50, 50, 64}, rng, DType::Float32);
  Tensor gy = random_tensor(qkv[0].shape(), rng, DType::Float32).cuda();
  std::vector<std::vector<float>> first;
  for (int run = 0; run < 3; ++run) {
    std::vector<Tensor> leaves;
    for (const Tensor& t : qkv) {
      Tensor leaf = t.cuda();
      leaf.set_requires_grad(true);
      leaves.push_back(leaf);
    }
    attention(leaves).backward(gy);
    for (size_t i = 0; i < leaves.size(); ++i) {
      if (run == 0) {
        first.push_back(leaves[i].grad().to_vector<float>());
      } else {
        EXPECT_EQ(leaves[i].grad().to_vector<float>(), first[i]) << "input " << i;
      }
    }
  }
}

TEST(AttentionCuda, HeadTooLargeIsAnError) {
  FFR_REQUIRE_CUDA();
  Tensor x = Tensor::zeros({1, 1, 4, kAttentionCudaMaxHeadDim + 1}, DType::Float32, Device::cuda());
  EXPECT_THROW(scaled_dot_product_attention(x, x, x), Error);
}

}  // namespace
}  // namespace ffr
