// The scalar math of each activation and its derivative, shared by the CPU reference and the
// CUDA kernels so the two compute the same formula. Computed in T (float or double); CUDA
// bfloat16 goes through float.
#pragma once

#include "engine/host_device.h"
#include "kernels/activation.h"

#include <cmath>

namespace ffr {

// `x < 0 ? 0 : x` rather than `x > 0 ? x : 0`: a NaN input stays NaN, so divergence shows.
template <typename T>
FFR_HOST_DEVICE T relu_value(T x) {
  return x < T(0) ? T(0) : x;
}

template <typename T>
FFR_HOST_DEVICE T relu_grad(T dy, T y) {
  return y > T(0) ? dy : T(0);
}

// Constants in double; converted once to T.
constexpr double kInvSqrt2 = 0.70710678118654752440;     // 1/sqrt(2)
constexpr double kInvSqrt2Pi = 0.39894228040143267794;   // 1/sqrt(2 pi): the normal pdf at 0
constexpr double kSqrt2OverPi = 0.79788456080286535588;  // sqrt(2/pi)
constexpr double kGeluTanhCubic = 0.044715;

// u = sqrt(2/pi) (x + 0.044715 x^3), the argument of tanh; one expression for value and grad.
template <typename T>
FFR_HOST_DEVICE T gelu_tanh_argument(T x) {
  return T(kSqrt2OverPi) * x * (T(1) + T(kGeluTanhCubic) * x * x);
}

template <typename T>
FFR_HOST_DEVICE T gelu_value(T x, GeluApproximation approx) {
  if (approx == GeluApproximation::Tanh) return T(0.5) * x * (T(1) + std::tanh(gelu_tanh_argument(x)));
  return T(0.5) * x * (T(1) + std::erf(x * T(kInvSqrt2)));
}

// d/dx [x Phi(x)] = Phi(x) + x phi(x);
// d/dx [0.5 x (1 + tanh u)] = 0.5 (1 + tanh u) + 0.5 x (1 - tanh^2 u) du/dx.
template <typename T>
FFR_HOST_DEVICE T gelu_grad(T dy, T x, GeluApproximation approx) {
  if (approx == GeluApproximation::Tanh) {
    const T x2 = x * x;
    const T t = std::tanh(gelu_tanh_argument(x));
    const T du = T(kSqrt2OverPi) * (T(1) + T(3 * kGeluTanhCubic) * x2);
    return dy * (T(0.5) * (T(1) + t) + T(0.5) * x * (T(1) - t * t) * du);
  }
  const T cdf = T(0.5) * (T(1) + std::erf(x * T(kInvSqrt2)));
  const T pdf = T(kInvSqrt2Pi) * std::exp(T(-0.5) * x * x);
  return dy * (cdf + x * pdf);
}

}  // namespace ffr
