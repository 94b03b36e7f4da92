#include "kernels/batch_norm_activation.h"

#include "engine/error.h"

#include "engine/autograd.h"
#include "kernels/activation.h"
#include "kernels/batch_norm.h"
#include "kernels/elementwise.h"
#include "layers/conv_bn.h"
#include "tests/testing.h"

namespace ffr {
namespace {

using testing::expect_close;
using testing::expect_gradients_match;
using testing::random_tensor;

// The unfused reference: eval-mode batch_norm, then the add, then ReLU.
Tensor reference(const Tensor& x, const Tensor& w, const Tensor& b, Tensor mean, Tensor var, double eps,
                 const Tensor& residual, bool relu) {
  Tensor y = batch_norm(x, w, b, mean, var, false, 0.1, eps);
  if (residual.defined()) y = add(y, residual);
  return relu ? ffr::relu(y) : y;
}

struct Case {
  Shape shape;
  bool residual, relu, affine;
};

TEST(BatchNormEvalAddRelu, FusedPassMatchesTheComposition) {
  Rng rng(71);
  const Case cases[] = {{{2, 8, 5, 7}, true, true, true},   {{2, 8, 5, 7}, false, true, true},
                        {{1, 16, 3, 3}, true, false, true}, {{3, 5, 1, 1}, false, false, true},
                        {{2, 4, 6, 2}, true, true, false},  {{4, 3}, false, true, true}};
  for (const Case& c : cases) {
    for (DType dtype : {DType::Float32, DType::Float64}) {
      SCOPED_TRACE(shape_str(c.shape) + " residual " + std::to_string(c.residual) + " relu " +
                   std::to_string(c.relu) + " " + dtype_name(dtype));
      const int64_t C = c.shape[1];
      Tensor x = random_tensor(c.shape, rng, dtype, -2.0, 2.0);
      Tensor residual = c.residual ? random_tensor(c.shape, rng, dtype) : Tensor();
      Tensor w = c.affine ? random_tensor({C}, rng, dtype, 0.5, 1.5) : Tensor();
      Tensor b = c.affine ? random_tensor({C}, rng, dtype) : Tensor();
      Tensor mean = random_tensor({C}, rng, dtype, -0.5, 0.5), var = random_tensor({C}, rng, dtype, 0.5, 2.0);
      NoGradGuard no_grad;  // the fused path
      Tensor fused = batch_norm_eval_add_relu(x, w, b, mean, var, 1e-5, residual, c.relu);
      Tensor expected = reference(x, w, b, mean, var, 1e-5, residual, c.relu);
      ASSERT_EQ(fused.shape(), x.shape());
      // The fused pass folds (x - mean) a + bias into x a + (bias - mean a): one more rounding.
      const double tol = dtype == DType::Float32 ? 1e-5 : 1e-12;
      expect_close(fused, expected, tol, tol, "fused vs composition");
      if (c.relu)
        for (double v : fused.to_vector<double>()) ASSERT_GE(v, 0.0);
    }
  }
}

TEST(BatchNormEvalAddRelu, GradientsFollowTheComposition) {
  Rng rng(72);
  Tensor x = random_tensor({2, 3, 2, 3}, rng), r = random_tensor({2, 3, 2, 3}, rng);
  Tensor w = random_tensor({3}, rng, DType::Float64, 0.5, 1.5), b = random_tensor({3}, rng);
  Tensor mean = random_tensor({3}, rng, DType::Float64, -0.5, 0.5), var = random_tensor({3}, rng, DType::Float64, 0.5, 2.0);
  expect_gradients_match(
      [&](const auto& in) { return batch_norm_eval_add_relu(in[0], in[1], in[2], mean, var, 1e-5, in[3], true); },
      {x, w, b, r});
}

TEST(BatchNormEvalAddRelu, RefusesMismatchedResidual) {
  Rng rng(73);
  Tensor x = random_tensor({2, 3, 2, 2}, rng, DType::Float32), r = random_tensor({2, 3, 2, 1}, rng, DType::Float32);
  Tensor mean = Tensor::zeros({3}), var = Tensor::ones({3});
  NoGradGuard no_grad;
  EXPECT_THROW(batch_norm_eval_add_relu(x, Tensor(), Tensor(), mean, var, 1e-5, r, true), Error);
}

TEST(BatchNormEvalAddRelu, LayerInEvalModeMatchesUnfusedLayer) {
  Rng rng(74);
  BatchNorm2d bn(6);
  bn.weight.copy_(random_tensor({6}, rng, DType::Float32, 0.5, 1.5));
  bn.bias.copy_(random_tensor({6}, rng, DType::Float32));
  bn.running_mean.copy_(random_tensor({6}, rng, DType::Float32, -0.5, 0.5));
  bn.running_var.copy_(random_tensor({6}, rng, DType::Float32, 0.5, 2.0));
  bn.eval();
  Tensor x = random_tensor({2, 6, 4, 4}, rng, DType::Float32), r = random_tensor({2, 6, 4, 4}, rng, DType::Float32);
  NoGradGuard no_grad;
  expect_close(bn.forward_add_relu(x, r, true), relu(add(bn.forward(x), r)), 1e-5, 1e-5, "layer");
  // In training mode the layer uses (and updates) batch statistics: unfused, as before.
  bn.train();
  Tensor before = bn.running_mean.clone();
  Tensor y = bn.forward_add_relu(x, r, true);
  EXPECT_NE(bn.running_mean.to_vector<double>(), before.to_vector<double>());
  EXPECT_EQ(y.shape(), x.shape());
}

}  // namespace
}  // namespace ffr
