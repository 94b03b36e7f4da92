// The scalar math of each elementwise op, shared by the CPU reference and the CUDA kernels so the
// two cannot drift apart. Computed in T (float or double); CUDA bfloat16 goes through float.
#pragma once

#include "engine/host_device.h"
#include "kernels/elementwise.h"

#include <cmath>

namespace ffr {

template <typename T>
FFR_HOST_DEVICE T apply_binary(BinaryOp op, T a, T b) {
  switch (op) {
    case BinaryOp::Add: return a + b;
    case BinaryOp::Sub: return a - b;
    case BinaryOp::Mul: return a * b;
    case BinaryOp::Div: return a / b;
  }
  return T(0);
}

template <typename T>
FFR_HOST_DEVICE T apply_unary(UnaryOp op, T x, T scalar) {
  switch (op) {
    case UnaryOp::Neg: return -x;
    case UnaryOp::Exp: return std::exp(x);
    case UnaryOp::Log: return std::log(x);
    case UnaryOp::Sqrt: return std::sqrt(x);
    case UnaryOp::AddScalar: return x + scalar;
    case UnaryOp::MulScalar: return x * scalar;
  }
  return T(0);
}

}  // namespace ffr
