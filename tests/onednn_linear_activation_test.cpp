// linear_bias_gelu (kernels/linear_activation.h): the fused inference path (oneDNN's product
// with the bias and GELU in its output pass) against the composition matmul -> add_bias -> gelu
// computed in float64, and the gradient path (always the composition) against finite
// differences. The fused cases are skipped, saying so, in a build without oneDNN.
#include "kernels/linear_activation.h"

#include "engine/autograd.h"
#include "kernels/activation.h"
#include "kernels/bias.h"
#include "kernels/matmul.h"
#include "tests/testing.h"

#include <gtest/gtest.h>

namespace ffr {
namespace {

using testing::expect_close;
using testing::expect_gradients_match;
using testing::random_tensor;

// The reference in float64 on the float32 inputs' values.
Tensor reference(const Tensor& x, const Tensor& w, const Tensor& b, bool gelu) {
  Tensor y = matmul(x.to(DType::Float64), w.to(DType::Float64), false, true);
  if (b.defined()) y = add_bias(y, b.to(DType::Float64));
  return gelu ? ffr::gelu(y) : y;
}

TEST(LinearBiasGelu, FusedInferenceMatchesTheComposition) {
#ifndef FFR_WITH_ONEDNN
  GTEST_SKIP() << "built without oneDNN (FFR_ENABLE_ONEDNN=OFF or libdnnl-dev missing): no fused path";
#else
  Rng rng(81);
  // 4 x 64 rows, 256 -> 512: 2^25 multiply-adds, the smallest product oneDNN takes by default.
  Tensor x = random_tensor({4, 64, 256}, rng, DType::Float32);
  Tensor w = random_tensor({512, 256}, rng, DType::Float32, -0.1, 0.1);
  Tensor b = random_tensor({512}, rng, DType::Float32);
  NoGradGuard no_grad;
  for (bool gelu : {false, true})
    for (bool with_bias : {false, true}) {
      SCOPED_TRACE(std::string(gelu ? "gelu" : "no gelu") + (with_bias ? ", bias" : ", no bias"));
      const Tensor bias = with_bias ? b : Tensor();
      ASSERT_TRUE(linear_bias_gelu_is_fused(x, w, bias));
      Tensor y = linear_bias_gelu(x, w, bias, gelu);
      ASSERT_EQ(y.shape(), (Shape{4, 64, 512}));
      expect_close(y.to(DType::Float64), reference(x, w, bias, gelu), 1e-4, 1e-5, "fused vs float64 composition");
    }
#endif
}

TEST(LinearBiasGelu, GradientsAndSmallProductsUseTheComposition) {
  Rng rng(82);
  Tensor x = random_tensor({2, 3, 4}, rng), w = random_tensor({5, 4}, rng), b = random_tensor({5}, rng);
  EXPECT_FALSE(linear_bias_gelu_is_fused(x, w, b));  // float64
  expect_gradients_match([](const auto& in) { return linear_bias_gelu(in[0], in[1], in[2], true); }, {x, w, b});
  // float32 but far below oneDNN's threshold: the composition, the same values.
  Tensor xf = x.to(DType::Float32), wf = w.to(DType::Float32), bf = b.to(DType::Float32);
  NoGradGuard no_grad;
  EXPECT_FALSE(linear_bias_gelu_is_fused(xf, wf, bf));
  expect_close(linear_bias_gelu(xf, wf, bf, true).to(DType::Float64), reference(xf, wf, bf, true), 1e-5, 1e-6,
               "small product");
}

TEST(LinearBiasGelu, ParametersThatNeedGradientsAreNeverFused) {
  Rng rng(83);
  Tensor x = random_tensor({4, 64, 256}, rng, DType::Float32);
  Tensor w = random_tensor({512, 256}, rng, DType::Float32).set_requires_grad(true);
  EXPECT_FALSE(linear_bias_gelu_is_fused(x, w, Tensor()));
  Tensor y = linear_bias_gelu(x, w, Tensor(), true);
  EXPECT_TRUE(y.requires_grad());
}

}  // namespace
}  // namespace ffr
