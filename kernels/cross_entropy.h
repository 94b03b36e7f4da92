// Softmax cross-entropy over class logits, fused: one pass over each row gives the row's
// logsumexp and the loss  loss_i = logsumexp(logits_i) - logits_i[label_i]; the backward writes
// dlogits = (softmax(logits) - onehot(label)) * upstream in one more pass, from the saved
// logsumexp (no softmax tensor is ever materialised).
//
// Labels outside [0, C): an error on the CPU (checked before any work). The CUDA kernels cannot
// raise an error without a host synchronisation, so they never read out of bounds (the label is
// clamped for the read) and instead give that sample a NaN loss and NaN gradients, which poisons
// a mean loss so the bad batch is not silently trained on.
#pragma once

#include "engine/tensor.h"

#include <cstdint>

namespace ffr {

enum class Reduction : uint8_t { None, Mean, Sum };

// logits [N,C] (float), labels [N] (int64 or int32) -> [N] per-sample losses (None) or a scalar
// (Mean over N, Sum). Differentiable w.r.t. the logits.
Tensor cross_entropy(const Tensor& logits, const Tensor& labels, Reduction reduction = Reduction::Mean);

// Launchers on raw buffers. logits/loss/grad buffers are of `dtype` (CPU: float32/float64; CUDA:
// float32/bfloat16); labels of `label_dtype`; the saved logsumexp `lse` [N] is float64 for float64
// logits and float32 otherwise (bf16 would cost the probabilities 3 significant digits).
void cross_entropy_forward_cpu(const void* logits, const void* labels, void* loss, void* lse, DType dtype,
                               DType label_dtype, int64_t n, int64_t c);
void cross_entropy_forward_cuda(const void* logits, const void* labels, void* loss, void* lse, DType dtype,
                                DType label_dtype, int64_t n, int64_t c);
// grad_logits[i,:] = (softmax(logits[i,:]) - onehot(labels[i])) * grad_loss[i * grad_stride] * scale.
// grad_stride is 1 for per-sample upstream gradients and 0 for a reduced (scalar) loss; scale is
// 1/N for a mean. grad_loss stays on the device: no host synchronisation.
void cross_entropy_backward_cpu(const void* logits, const void* labels, const void* lse, const void* grad_loss,
                                int64_t grad_stride, double scale, void* grad_logits, DType dtype,
                                DType label_dtype, int64_t n, int64_t c);
void cross_entropy_backward_cuda(const void* logits, const void* labels, const void* lse, const void* grad_loss,
                                 int64_t grad_stride, double scale, void* grad_logits, DType dtype,
                                 DType label_dtype, int64_t n, int64_t c);

}  // namespace ffr
