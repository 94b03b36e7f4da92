#include "kernels/attention.h"

#include "engine/flop_counter.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/parallel.h"
#include "kernels/dispatch.h"
#include "kernels/lane_sum.h"

#include <algorithm>
#include <cmath>
#include <vector>

namespace ffr {

// ---- CPU reference: plain loops, double accumulation (dot products in lanes: kernels/lane_sum.h) ----

namespace {

template <typename T>
double dot(const T* a, const T* b, int64_t n) {
  return lane_dot(a, b, n);
}

}  // namespace

void attention_forward_cpu(const void* q, const void* k, const void* v, void* out, void* logsumexp,
                           const AttentionShape& shape, DType dtype, double scale) {
  dispatch_cpu_floating(dtype, "scaled_dot_product_attention", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t tq = shape.query_len, tk = shape.key_len, dh = shape.head_dim;
    // Threads take whole (batch, head) pairs, each with its own scratch rows.
    parallel_for(0, shape.batch_heads, rows_grain(2 * tq * tk * dh), [&](int64_t bh_begin, int64_t bh_end) {
    std::vector<double> scores(static_cast<size_t>(tk)), acc(static_cast<size_t>(dh));
    for (int64_t bh = bh_begin; bh < bh_end; ++bh) {
      const T* qb = static_cast<const T*>(q) + bh * tq * dh;
      const T* kb = static_cast<const T*>(k) + bh * tk * dh;
      const T* vb = static_cast<const T*>(v) + bh * tk * dh;
      T* ob = static_cast<T*>(out) + bh * tq * dh;
      for (int64_t i = 0; i < tq; ++i) {
        double max_score = -INFINITY;
        for (int64_t j = 0; j < tk; ++j) {
          scores[size_t(j)] = scale * dot(qb + i * dh, kb + j * dh, dh);
          max_score = std::max(max_score, scores[size_t(j)]);
        }
        // Subtracting the row max keeps exp() in range (stable softmax). Each exp is taken once
        // (the scores become the unnormalised weights) and the sum divided out at the end: exp
        // was half of this kernel's time when it ran twice per score.
        double sum = 0.0;
        for (int64_t j = 0; j < tk; ++j) {
          scores[size_t(j)] = std::exp(scores[size_t(j)] - max_score);
          sum += scores[size_t(j)];
        }
        const double lse = max_score + std::log(sum);
        std::fill(acc.begin(), acc.end(), 0.0);
        for (int64_t j = 0; j < tk; ++j) {
          const double p = scores[size_t(j)];
          for (int64_t d = 0; d < dh; ++d) acc[size_t(d)] += p * double(vb[j * dh + d]);
        }
        const double inv_sum = 1.0 / sum;
        for (int64_t d = 0; d < dh; ++d) ob[i * dh + d] = T(acc[size_t(d)] * inv_sum);
        static_cast<T*>(logsumexp)[bh * tq + i] = T(lse);
      }
    }
    });
  });
}

void attention_backward_cpu(const void* dout, const void* q, const void* k, const void* v, const void* out,
                            const void* logsumexp, void* dq, void* dk, void* dv, const AttentionShape& shape,
                            DType dtype, double scale) {
  dispatch_cpu_floating(dtype, "scaled_dot_product_attention backward", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const int64_t tq = shape.query_len, tk = shape.key_len, dh = shape.head_dim;
    parallel_for(0, shape.batch_heads, rows_grain(4 * tq * tk * dh), [&](int64_t bh_begin, int64_t bh_end) {
    std::vector<double> gq(size_t(tq * dh)), gk(size_t(tk * dh)), gv(size_t(tk * dh));
    for (int64_t bh = bh_begin; bh < bh_end; ++bh) {
      const T* qb = static_cast<const T*>(q) + bh * tq * dh;
      const T* kb = static_cast<const T*>(k) + bh * tk * dh;
      const T* vb = static_cast<const T*>(v) + bh * tk * dh;
      const T* ob = static_cast<const T*>(out) + bh * tq * dh;
      const T* gob = static_cast<const T*>(dout) + bh * tq * dh;
      const T* lb = static_cast<const T*>(logsumexp) + bh * tq;
      std::fill(gq.begin(), gq.end(), 0.0);
      std::fill(gk.begin(), gk.end(), 0.0);
      std::fill(gv.begin(), gv.end(), 0.0);
      for (int64_t i = 0; i < tq; ++i) {
        const T* qi = qb + i * dh;
        const T* goi = gob + i * dh;
        // sum_j P_ij dP_ij = dout_i . out_i: the softmax Jacobian's shared term.
        const double delta = dot(goi, ob + i * dh, dh);
        for (int64_t j = 0; j < tk; ++j) {
          const T* kj = kb + j * dh;
          const double p = std::exp(scale * dot(qi, kj, dh) - double(lb[i]));
          const double ds = p * (dot(goi, vb + j * dh, dh) - delta);
          for (int64_t d = 0; d < dh; ++d) {
            gv[size_t(j * dh + d)] += p * double(goi[d]);
            gq[size_t(i * dh + d)] += scale * ds * double(kj[d]);
            gk[size_t(j * dh + d)] += scale * ds * double(qi[d]);
          }
        }
      }
      for (int64_t e = 0; e < tq * dh; ++e) static_cast<T*>(dq)[bh * tq * dh + e] = T(gq[size_t(e)]);
      for (int64_t e = 0; e < tk * dh; ++e) {
        static_cast<T*>(dk)[bh * tk * dh + e] = T(gk[size_t(e)]);
        static_cast<T*>(dv)[bh * tk * dh + e] = T(gv[size_t(e)]);
      }
    }
    });
  });
}

// ---- dispatch + autograd ----

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v) {
  OpScope scope("scaled_dot_product_attention(" + q.str() + ", " + k.str() + ", " + v.str() + ")");
  NvtxRange range("scaled_dot_product_attention");
  FFR_CHECK(q.ndim() == 4 && k.ndim() == 4 && v.ndim() == 4, "attention needs [B, H, T, Dh] inputs");
  FFR_CHECK(k.shape() == v.shape(), "attention: keys ", k.str(), " and values ", v.str(), " differ in shape");
  FFR_CHECK(q.size(0) == k.size(0) && q.size(1) == k.size(1) && q.size(3) == k.size(3),
            "attention: queries ", q.str(), " and keys ", k.str(), " differ in batch, heads or head size");
  FFR_CHECK(k.size(2) > 0 && q.size(3) > 0, "attention needs at least one key and a non-empty head");
  FFR_CHECK(q.dtype() == k.dtype() && q.dtype() == v.dtype(), "attention: inputs differ in dtype");
  FFR_CHECK(q.device() == k.device() && q.device() == v.device(), "attention: inputs differ in device");
  const AttentionShape shape{q.size(0) * q.size(1), q.size(2), k.size(2), q.size(3)};
  const double scale = 1.0 / std::sqrt(double(shape.head_dim));
  // q k^T and (softmax) v: two products of [Tq, Dh] x [Dh, Tk] per batch-head.
  FlopCounter::record(2 * shape.batch_heads * shape.query_len * shape.key_len * shape.head_dim);
  Tensor out = Tensor::empty(q.shape(), q.dtype(), q.device());
  Tensor logsumexp = Tensor::empty({shape.batch_heads, shape.query_len}, q.is_cuda() ? DType::Float32 : q.dtype(),
                                   q.device());
#ifdef FFR_WITH_CUDA
  if (q.is_cuda()) {
    attention_forward_cuda(q.raw_data(), k.raw_data(), v.raw_data(), out.raw_data(), logsumexp.raw_data(), shape,
                           q.dtype(), scale);
  } else
#endif
  {
    attention_forward_cpu(q.raw_data(), k.raw_data(), v.raw_data(), out.raw_data(), logsumexp.raw_data(), shape,
                          q.dtype(), scale);
  }
  if (!needs_grad({&q, &k, &v})) return out;
  record_op("scaled_dot_product_attention", out, {q, k, v},
            [qd = q.detach(), kd = k.detach(), vd = v.detach(), od = out.detach(), logsumexp, shape,
             scale](const Tensor& gy) {
              FFR_CHECK(gy.dtype() == qd.dtype() && gy.shape() == qd.shape(), "attention backward: gradient ",
                        gy.str(), " for output of ", qd.str());
              Tensor dq = Tensor::empty(qd.shape(), qd.dtype(), qd.device());
              Tensor dk = Tensor::empty(kd.shape(), kd.dtype(), kd.device());
              Tensor dv = Tensor::empty(vd.shape(), vd.dtype(), vd.device());
#ifdef FFR_WITH_CUDA
              if (qd.is_cuda()) {
                attention_backward_cuda(gy.raw_data(), qd.raw_data(), kd.raw_data(), vd.raw_data(), od.raw_data(),
                                        logsumexp.raw_data(), dq.raw_data(), dk.raw_data(), dv.raw_data(), shape,
                                        qd.dtype(), scale);
                return std::vector<Tensor>{dq, dk, dv};
              }
#endif
              attention_backward_cpu(gy.raw_data(), qd.raw_data(), kd.raw_data(), vd.raw_data(), od.raw_data(),
                                     logsumexp.raw_data(), dq.raw_data(), dk.raw_data(), dv.raw_data(), shape,
                                     qd.dtype(), scale);
              return std::vector<Tensor>{dq, dk, dv};
            });
  return out;
}

Tensor scaled_dot_product_attention_packed(const Tensor& qkv) {
  OpScope scope("scaled_dot_product_attention_packed(" + qkv.str() + ")");
  NvtxRange range("scaled_dot_product_attention");
  FFR_CHECK(qkv.ndim() == 5 && qkv.size(0) == 3, "packed attention needs a [3, B, H, T, Dh] input, got ", qkv.str());
  FFR_CHECK(qkv.size(3) > 0 && qkv.size(4) > 0, "attention needs at least one key and a non-empty head");
  const Shape per_head{qkv.size(1), qkv.size(2), qkv.size(3), qkv.size(4)};
  const AttentionShape shape{qkv.size(1) * qkv.size(2), qkv.size(3), qkv.size(3), qkv.size(4)};
  const double scale = 1.0 / std::sqrt(double(shape.head_dim));
  const size_t third = size_t(qkv.numel() / 3) * dtype_size(qkv.dtype());  // bytes of q (and of k, of v)
  auto part = [third](const void* base, int i) { return static_cast<const char*>(base) + i * third; };
  FlopCounter::record(2 * shape.batch_heads * shape.query_len * shape.key_len * shape.head_dim);
  Tensor out = Tensor::empty(per_head, qkv.dtype(), qkv.device());
  Tensor logsumexp = Tensor::empty({shape.batch_heads, shape.query_len}, qkv.is_cuda() ? DType::Float32 : qkv.dtype(),
                                   qkv.device());
#ifdef FFR_WITH_CUDA
  if (qkv.is_cuda()) {
    attention_forward_cuda(part(qkv.raw_data(), 0), part(qkv.raw_data(), 1), part(qkv.raw_data(), 2), out.raw_data(),
                           logsumexp.raw_data(), shape, qkv.dtype(), scale);
  } else
#endif
  {
    attention_forward_cpu(part(qkv.raw_data(), 0), part(qkv.raw_data(), 1), part(qkv.raw_data(), 2), out.raw_data(),
                          logsumexp.raw_data(), shape, qkv.dtype(), scale);
  }
  if (!needs_grad({&qkv})) return out;
  record_op("scaled_dot_product_attention_packed", out, {qkv},
            [qkvd = qkv.detach(), od = out.detach(), logsumexp, shape, scale, part](const Tensor& gy) {
              FFR_CHECK(gy.dtype() == od.dtype() && gy.shape() == od.shape(), "attention backward: gradient ",
                        gy.str(), " for output of ", od.str());
              // dq, dk, dv written straight into their thirds of one buffer: no zero-filled
              // [3, ...] gradient per slice, no sum of three.
              Tensor dqkv = Tensor::empty(qkvd.shape(), qkvd.dtype(), qkvd.device());
              const void* x = qkvd.raw_data();
              char* dx = static_cast<char*>(dqkv.raw_data());
              char* dq = const_cast<char*>(part(dx, 0));
              char* dk = const_cast<char*>(part(dx, 1));
              char* dv = const_cast<char*>(part(dx, 2));
#ifdef FFR_WITH_CUDA
              if (qkvd.is_cuda()) {
                attention_backward_cuda(gy.raw_data(), part(x, 0), part(x, 1), part(x, 2), od.raw_data(),
                                        logsumexp.raw_data(), dq, dk, dv, shape, qkvd.dtype(), scale);
                return std::vector<Tensor>{dqkv};
              }
#endif
              attention_backward_cpu(gy.raw_data(), part(x, 0), part(x, 1), part(x, 2), od.raw_data(),
                                     logsumexp.raw_data(), dq, dk, dv, shape, qkvd.dtype(), scale);
              return std::vector<Tensor>{dqkv};
            });
  return out;
}

}  // namespace ffr
