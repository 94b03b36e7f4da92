// Elementwise arithmetic with broadcasting, unary math and scalar ops. All differentiable;
// gradients of broadcast inputs are summed back to the input's shape (sum_to_shape).
#pragma once

#include "engine/tensor.h"
#include "kernels/broadcast.h"

namespace ffr {

enum class BinaryOp : uint8_t { Add, Sub, Mul, Div };
enum class UnaryOp : uint8_t { Neg, Exp, Log, Sqrt, AddScalar, MulScalar };

Tensor add(const Tensor& a, const Tensor& b);
Tensor sub(const Tensor& a, const Tensor& b);
Tensor mul(const Tensor& a, const Tensor& b);
Tensor div(const Tensor& a, const Tensor& b);
Tensor neg(const Tensor& x);
Tensor exp(const Tensor& x);
Tensor log(const Tensor& x);
Tensor sqrt(const Tensor& x);
Tensor add_scalar(const Tensor& x, double s);
Tensor mul_scalar(const Tensor& x, double s);
// Copies x (broadcastable to `shape`) out to `shape`; its gradient is sum_to_shape.
Tensor broadcast_to(const Tensor& x, const Shape& shape);

inline Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
inline Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
inline Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
inline Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
inline Tensor operator-(const Tensor& x) { return neg(x); }
inline Tensor operator*(const Tensor& x, double s) { return mul_scalar(x, s); }
inline Tensor operator*(double s, const Tensor& x) { return mul_scalar(x, s); }
inline Tensor operator+(const Tensor& x, double s) { return add_scalar(x, s); }

// In place, no autograd: dst += src (src broadcastable to dst). Used for gradient accumulation.
void add_(Tensor& dst, const Tensor& src);

// Launchers (raw buffers of `dtype`). CPU: float32/float64; CUDA: float32/bfloat16.
void binary_cpu(BinaryOp op, const void* a, const void* b, void* out, int64_t n, DType dtype,
                const BroadcastIndexer& idx, bool same_shape);
void binary_cuda(BinaryOp op, const void* a, const void* b, void* out, int64_t n, DType dtype,
                 const BroadcastIndexer& idx, bool same_shape);
void unary_cpu(UnaryOp op, const void* x, void* out, int64_t n, DType dtype, double scalar);
void unary_cuda(UnaryOp op, const void* x, void* out, int64_t n, DType dtype, double scalar);

}  // namespace ffr
