// Scaled dot-product attention (Vaswani et al. 2017), no mask:
//   out = softmax(q k^T / sqrt(Dh)) v,   q: [B, H, Tq, Dh], k, v: [B, H, Tk, Dh] -> [B, H, Tq, Dh].
// The forward saves each query row's logsumexp L of the scaled scores; the backward recomputes
// the probabilities P = exp(s - L) from it instead of storing the [Tq, Tk] matrix, and uses
// rowsum(dout * out) for the softmax Jacobian term (as FlashAttention does):
//   dv = P^T dout,  dP = dout v^T,  dS = P * (dP - rowsum(dout * out)),
//   dq = dS k / sqrt(Dh),  dk = dS^T q / sqrt(Dh).
// CUDA: fused kernels for Dh <= 128 (ViT-B/32: T = 50, Dh = 64), see attention.cu.
#pragma once

#include "engine/tensor.h"

#include <cstdint>

namespace ffr {

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v);
// Self-attention on q, k, v packed as one [3, B, H, T, Dh] tensor (ViT's qkv projection, permuted):
// the same as scaled_dot_product_attention(qkv[0], qkv[1], qkv[2]), but the backward writes dq,
// dk and dv into one [3, ...] gradient instead of three zero-filled ones that autograd then sums.
Tensor scaled_dot_product_attention_packed(const Tensor& qkv);

// Sizes of one call: batch_heads = B * H independent (Tq x Dh, Tk x Dh) problems.
struct AttentionShape {
  int64_t batch_heads = 0;
  int64_t query_len = 0;
  int64_t key_len = 0;
  int64_t head_dim = 0;
};

constexpr int64_t kAttentionCudaMaxHeadDim = 128;

// Launchers. logsumexp: [batch_heads, query_len] of the statistics type (CPU: dtype; CUDA:
// float32). `scale` multiplies the scores (1 / sqrt(Dh) for the op).
void attention_forward_cpu(const void* q, const void* k, const void* v, void* out, void* logsumexp,
                           const AttentionShape& shape, DType dtype, double scale);
void attention_forward_cuda(const void* q, const void* k, const void* v, void* out, void* logsumexp,
                            const AttentionShape& shape, DType dtype, double scale);
// dk and dv are sums over queries in a fixed order (bit-identical run to run).
void attention_backward_cpu(const void* dout, const void* q, const void* k, const void* v, const void* out,
                            const void* logsumexp, void* dq, void* dk, void* dv, const AttentionShape& shape,
                            DType dtype, double scale);
void attention_backward_cuda(const void* dout, const void* q, const void* k, const void* v, const void* out,
                             const void* logsumexp, void* dq, void* dk, void* dv, const AttentionShape& shape,
                             DType dtype, double scale);

}  // namespace ffr
