#include "kernels/elementwise.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/parallel.h"
#include "kernels/dispatch.h"
#include "kernels/elementwise_ops.h"
#include "kernels/reduce.h"

namespace ffr {

// ---- CPU reference ----

void binary_cpu(BinaryOp op, const void* a, const void* b, void* out, int64_t n, DType dtype,
                const BroadcastIndexer& idx, bool same_shape) {
  dispatch_cpu_floating(dtype, "binary op", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* pa = static_cast<const T*>(a);
    const T* pb = static_cast<const T*>(b);
    T* po = static_cast<T*>(out);
    if (same_shape || idx.ndim == 0) {
      parallel_for(0, n, kElementwiseGrain, [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) po[i] = apply_binary<T>(op, pa[i], pb[i]);
      });
      return;
    }
    // Row by row along the last dimension: the broadcast offsets are worked out once per row,
    // then stepped by the inputs' last strides (0 where an input is stretched).
    const int64_t inner = idx.sizes[idx.ndim - 1];
    if (inner == 0) return;
    const int64_t rows = n / inner;
    const int64_t sa = idx.a_strides[idx.ndim - 1], sb = idx.b_strides[idx.ndim - 1];
    parallel_for(0, rows, rows_grain(inner), [&](int64_t begin, int64_t end) {
      for (int64_t r = begin; r < end; ++r) {
        int64_t ia, ib;
        idx.offsets(r * inner, ia, ib);
        T* row = po + r * inner;
        for (int64_t j = 0; j < inner; ++j) row[j] = apply_binary<T>(op, pa[ia + j * sa], pb[ib + j * sb]);
      }
    });
  });
}

void unary_cpu(UnaryOp op, const void* x, void* out, int64_t n, DType dtype, double scalar) {
  dispatch_cpu_floating(dtype, "unary op", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const T* px = static_cast<const T*>(x);
    T* po = static_cast<T*>(out);
    const T s = T(scalar);
    parallel_for(0, n, kElementwiseGrain, [&](int64_t begin, int64_t end) {
      for (int64_t i = begin; i < end; ++i) po[i] = apply_unary<T>(op, px[i], s);
    });
  });
}

// ---- dispatch + autograd ----

namespace {

const char* binary_name(BinaryOp op) {
  switch (op) {
    case BinaryOp::Add: return "add";
    case BinaryOp::Sub: return "sub";
    case BinaryOp::Mul: return "mul";
    case BinaryOp::Div: return "div";
  }
  return "binary";
}

const char* unary_name(UnaryOp op) {
  switch (op) {
    case UnaryOp::Neg: return "neg";
    case UnaryOp::Exp: return "exp";
    case UnaryOp::Log: return "log";
    case UnaryOp::Sqrt: return "sqrt";
    case UnaryOp::AddScalar: return "add_scalar";
    case UnaryOp::MulScalar: return "mul_scalar";
  }
  return "unary";
}

// out = a (op) b, writing into `out` (already shaped as the broadcast shape).
void run_binary(BinaryOp op, const Tensor& a, const Tensor& b, Tensor& out) {
  FFR_CHECK(a.dtype() == b.dtype(), "dtype mismatch: ", a.str(), " and ", b.str());
  FFR_CHECK(a.device() == b.device(), "device mismatch: ", a.str(), " and ", b.str());
  const bool same_shape = a.shape() == b.shape() && a.shape() == out.shape();
  const BroadcastIndexer idx = make_broadcast_indexer(out.shape(), a.shape(), b.shape());
#ifdef FFR_WITH_CUDA
  if (a.is_cuda()) {
    binary_cuda(op, a.raw_data(), b.raw_data(), out.raw_data(), out.numel(), a.dtype(), idx, same_shape);
    return;
  }
#endif
  binary_cpu(op, a.raw_data(), b.raw_data(), out.raw_data(), out.numel(), a.dtype(), idx, same_shape);
}

Tensor binary(BinaryOp op, const Tensor& a, const Tensor& b) {
  OpScope scope(std::string(binary_name(op)) + "(" + a.str() + ", " + b.str() + ")");
  NvtxRange range(binary_name(op));
  Tensor out = Tensor::empty(broadcast_shapes(a.shape(), b.shape()), a.dtype(), a.device());
  run_binary(op, a, b, out);
  if (!needs_grad({&a, &b})) return out;
  const Shape sa = a.shape(), sb = b.shape();
  BackwardFunction backward;
  switch (op) {
    case BinaryOp::Add:
      backward = [sa, sb](const Tensor& gy) { return std::vector<Tensor>{sum_to_shape(gy, sa), sum_to_shape(gy, sb)}; };
      break;
    case BinaryOp::Sub:
      backward = [sa, sb](const Tensor& gy) {
        return std::vector<Tensor>{sum_to_shape(gy, sa), sum_to_shape(neg(gy), sb)};
      };
      break;
    case BinaryOp::Mul:
      backward = [ad = a.detach(), bd = b.detach()](const Tensor& gy) {
        return std::vector<Tensor>{sum_to_shape(mul(gy, bd), ad.shape()), sum_to_shape(mul(gy, ad), bd.shape())};
      };
      break;
    case BinaryOp::Div:
      backward = [ad = a.detach(), bd = b.detach()](const Tensor& gy) {
        Tensor ga = div(gy, bd);
        Tensor gb = neg(div(mul(ga, ad), bd));
        return std::vector<Tensor>{sum_to_shape(ga, ad.shape()), sum_to_shape(gb, bd.shape())};
      };
      break;
  }
  record_op(binary_name(op), out, {a, b}, std::move(backward));
  return out;
}

Tensor unary_forward(UnaryOp op, const Tensor& x, double scalar) {
  OpScope scope(std::string(unary_name(op)) + "(" + x.str() + ")");
  NvtxRange range(unary_name(op));
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
#ifdef FFR_WITH_CUDA
  if (x.is_cuda()) {
    unary_cuda(op, x.raw_data(), out.raw_data(), x.numel(), x.dtype(), scalar);
    return out;
  }
#endif
  unary_cpu(op, x.raw_data(), out.raw_data(), x.numel(), x.dtype(), scalar);
  return out;
}

Tensor unary(UnaryOp op, const Tensor& x, double scalar = 0.0) {
  Tensor out = unary_forward(op, x, scalar);
  if (!needs_grad({&x})) return out;
  BackwardFunction backward;
  switch (op) {
    case UnaryOp::Neg: backward = [](const Tensor& gy) { return std::vector<Tensor>{neg(gy)}; }; break;
    case UnaryOp::Exp:
      backward = [y = out.detach()](const Tensor& gy) { return std::vector<Tensor>{mul(gy, y)}; };
      break;
    case UnaryOp::Log:
      backward = [xd = x.detach()](const Tensor& gy) { return std::vector<Tensor>{div(gy, xd)}; };
      break;
    case UnaryOp::Sqrt:
      backward = [y = out.detach()](const Tensor& gy) { return std::vector<Tensor>{mul_scalar(div(gy, y), 0.5)}; };
      break;
    case UnaryOp::AddScalar: backward = [](const Tensor& gy) { return std::vector<Tensor>{gy}; }; break;
    case UnaryOp::MulScalar:
      backward = [scalar](const Tensor& gy) { return std::vector<Tensor>{mul_scalar(gy, scalar)}; };
      break;
  }
  record_op(unary_name(op), out, {x}, std::move(backward));
  return out;
}

}  // namespace

Tensor add(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Add, a, b); }
Tensor sub(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Sub, a, b); }
Tensor mul(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Mul, a, b); }
Tensor div(const Tensor& a, const Tensor& b) { return binary(BinaryOp::Div, a, b); }
Tensor neg(const Tensor& x) { return unary(UnaryOp::Neg, x); }
Tensor exp(const Tensor& x) { return unary(UnaryOp::Exp, x); }
Tensor log(const Tensor& x) { return unary(UnaryOp::Log, x); }
Tensor sqrt(const Tensor& x) { return unary(UnaryOp::Sqrt, x); }
Tensor add_scalar(const Tensor& x, double s) { return unary(UnaryOp::AddScalar, x, s); }
Tensor mul_scalar(const Tensor& x, double s) { return unary(UnaryOp::MulScalar, x, s); }

Tensor broadcast_to(const Tensor& x, const Shape& shape) {
  OpScope scope("broadcast_to(" + x.str() + " -> " + shape_str(shape) + ")");
  FFR_CHECK(broadcast_shapes(x.shape(), shape) == shape, "cannot broadcast ", x.str(), " to ", shape_str(shape));
  if (x.shape() == shape) return x;
  // out = 0 + x, with the zero operand broadcast for free (stride 0 over a one-element tensor).
  Tensor zero = Tensor::zeros({1}, x.dtype(), x.device());
  Tensor out = Tensor::empty(shape, x.dtype(), x.device());
  run_binary(BinaryOp::Add, zero, x.detach(), out);
  const Shape input_shape = x.shape();
  record_op("broadcast_to", out, {x}, [input_shape](const Tensor& gy) {
    return std::vector<Tensor>{sum_to_shape(gy, input_shape)};
  });
  return out;
}

void add_(Tensor& dst, const Tensor& src) {
  OpScope scope("add_(" + dst.str() + ", " + src.str() + ")");
  FFR_CHECK(broadcast_shapes(dst.shape(), src.shape()) == dst.shape(), "add_: ", src.str(),
            " does not broadcast to ", dst.str());
  run_binary(BinaryOp::Add, dst, src, dst);
}

}  // namespace ffr
