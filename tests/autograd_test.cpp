#include "engine/autograd.h"
#include "engine/error.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "tests/testing.h"

namespace ffr {
namespace {

TEST(Autograd, DiamondGraphSumsBothPaths) {
  // y = exp(x) * log(x): both branches meet at mul; dy/dx = exp(x) log(x) + exp(x) / x.
  Tensor x = Tensor::from_vector(std::vector<double>{0.5, 2.0}, {2}).set_requires_grad(true);
  sum(mul(exp(x), log(x))).backward();
  const std::vector<double> g = x.grad().to_vector<double>();
  for (int i = 0; i < 2; ++i) {
    const double v = i == 0 ? 0.5 : 2.0;
    EXPECT_NEAR(g[size_t(i)], std::exp(v) * std::log(v) + std::exp(v) / v, 1e-12);
  }
}

TEST(Autograd, NoGradScopeRecordsNothing) {
  Tensor x = Tensor::ones({3}, DType::Float64).set_requires_grad(true);
  Tensor y;
  {
    NoGradGuard guard;
    y = mul(x, x);
  }
  EXPECT_FALSE(y.requires_grad());
  EXPECT_EQ(y.grad_fn(), nullptr);
  EXPECT_TRUE(grad_enabled());
  EXPECT_THROW(sum(y).backward(), Error);
}

TEST(Autograd, InputsThatNeedNoGradGetNone) {
  Tensor a = Tensor::full({2}, 3.0, DType::Float64).set_requires_grad(true);
  Tensor b = Tensor::full({2}, 4.0, DType::Float64);
  sum(mul(a, b)).backward();
  EXPECT_EQ(a.grad().to_vector<double>(), (std::vector<double>{4.0, 4.0}));
  EXPECT_FALSE(b.grad().defined());
}

TEST(Autograd, SecondBackwardThroughFreedGraphIsAnError) {
  Tensor x = Tensor::ones({2}, DType::Float64).set_requires_grad(true);
  Tensor loss = sum(exp(x));
  loss.backward();
  EXPECT_THROW(loss.backward(), Error);
}

TEST(Autograd, GraphIsFreedWithItsOutput) {
  Tensor x = Tensor::ones({2}, DType::Float64).set_requires_grad(true);
  std::weak_ptr<Node> node;
  {
    Tensor y = exp(x);
    node = y.grad_fn();
    EXPECT_FALSE(node.expired());
  }
  EXPECT_TRUE(node.expired()) << "a node kept alive after its output died: a reference cycle";
}

TEST(Autograd, NonScalarBackwardNeedsAGradient) {
  Tensor x = Tensor::ones({2}, DType::Float64).set_requires_grad(true);
  EXPECT_THROW(exp(x).backward(), Error);
  EXPECT_THROW(Tensor::ones({2}, DType::Int64).set_requires_grad(true), Error);
}

TEST(Autograd, ZeroGradKeepsTheBuffer) {
  Tensor x = Tensor::ones({2}, DType::Float64).set_requires_grad(true);
  sum(mul_scalar(x, 3.0)).backward();
  void* buffer = x.grad().raw_data();
  x.zero_grad();
  EXPECT_EQ(x.grad().raw_data(), buffer);
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{0.0, 0.0}));
}

// zero_grad() launches nothing: the next backward writes the gradient over the old buffer (one
// copy instead of a zero fill and an add); a grad read before any backward reads zeros.
TEST(Autograd, ZeroGradIsLazyAndBackwardOverwrites) {
  Tensor x = Tensor::ones({2}, DType::Float64).set_requires_grad(true);
  Tensor unused = Tensor::ones({3}, DType::Float64).set_requires_grad(true);
  sum(mul_scalar(x, 3.0)).backward();
  sum(mul_scalar(unused, 2.0)).backward();
  const Tensor held = x.grad();  // the buffer itself, not a read of x.grad() after zero_grad
  void* buffer = held.raw_data();
  x.zero_grad();
  unused.zero_grad();
  EXPECT_EQ(held.to_vector<double>(), (std::vector<double>{3.0, 3.0})) << "zero_grad wrote the buffer (a fill launch)";
  sum(mul_scalar(x, 5.0)).backward();
  EXPECT_EQ(x.grad().raw_data(), buffer);
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{5.0, 5.0}));  // 5, not 3 + 5
  sum(mul_scalar(x, 1.0)).backward();                                        // accumulates as before
  EXPECT_EQ(x.grad().to_vector<double>(), (std::vector<double>{6.0, 6.0}));
  EXPECT_EQ(unused.grad().to_vector<double>(), (std::vector<double>{0.0, 0.0, 0.0}));  // no backward reached it
  unused.set_grad(Tensor::full({3}, 7.0, DType::Float64));
  EXPECT_EQ(unused.grad().to_vector<double>(), (std::vector<double>{7.0, 7.0, 7.0}));
}

TEST(Autograd, ErrorsNameTheOpAndShapes) {
  Tensor a = Tensor::ones({2, 3}), b = Tensor::ones({4});
  try {
    add(a, b);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("add(float32[2,3] cpu, float32[4] cpu)"), std::string::npos) << what;
  }
}

}  // namespace
}  // namespace ffr
