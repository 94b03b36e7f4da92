#include "tests/testing.h"

#include "kernels/elementwise.h"
#include "kernels/reduce.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <sstream>

namespace ffr::testing {

std::string source_dir() {
  const char* env = std::getenv("FFR_SOURCE_DIR");
  return env != nullptr && env[0] != '\0' ? env : FFR_SOURCE_DIR;
}

Tensor random_tensor(const Shape& shape, Rng& rng, DType dtype, double low, double high) {
  return Tensor::uniform(shape, low, high, rng, dtype, Device::cpu());
}

void expect_close(const Tensor& actual, const Tensor& expected, double rtol, double atol, const std::string& what) {
  ASSERT_EQ(actual.shape(), expected.shape()) << what << ": shape " << actual.str() << " vs " << expected.str();
  const std::vector<double> a = actual.to_vector<double>();
  const std::vector<double> e = expected.to_vector<double>();
  double worst = 0.0;
  size_t worst_at = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    const double diff = std::abs(a[i] - e[i]);
    const double err = diff == 0.0 ? 0.0 : diff / (atol + rtol * std::abs(e[i]));  // exact match passes at zero tolerance
    if (!(err <= worst) || std::isnan(a[i]) != std::isnan(e[i])) {
      worst = std::isnan(err) ? INFINITY : err;
      worst_at = i;
    }
  }
  EXPECT_LE(worst, 1.0) << what << ": worst mismatch at flat index " << worst_at << ": " << a[worst_at]
                        << " vs expected " << e[worst_at] << " (rtol " << rtol << ", atol " << atol << ")";
}

namespace {

std::vector<Tensor> as_leaves(const std::vector<Tensor>& inputs) {
  std::vector<Tensor> leaves;
  for (const Tensor& t : inputs) {
    Tensor leaf = t.clone();
    if (is_floating(leaf.dtype())) leaf.set_requires_grad(true);
    leaves.push_back(leaf);
  }
  return leaves;
}

double weighted_sum(const Tensor& y, const Tensor& w) {
  const std::vector<double> yv = y.to_vector<double>();
  const std::vector<double> wv = w.to_vector<double>();
  double s = 0.0;
  for (size_t i = 0; i < yv.size(); ++i) s += yv[i] * wv[i];
  return s;
}

}  // namespace

void expect_gradients_match(const OpFunction& f, const std::vector<Tensor>& inputs, const GradCheckOptions& options) {
  for (const Tensor& t : inputs) {
    ASSERT_TRUE(t.device().is_cpu());
    if (is_floating(t.dtype())) ASSERT_EQ(t.dtype(), DType::Float64) << "gradient checks run in float64";
  }
  std::vector<Tensor> leaves = as_leaves(inputs);
  Tensor y = f(leaves);
  Rng rng(1234);
  Tensor w = Tensor::uniform(y.shape(), 0.5, 1.5, rng, DType::Float64);
  sum(mul(y, w)).backward();

  Rng pick(99);
  for (size_t k = 0; k < leaves.size(); ++k) {
    if (!is_floating(leaves[k].dtype())) continue;
    Tensor grad = leaves[k].grad();
    ASSERT_TRUE(grad.defined()) << "input " << k << " got no gradient";
    const std::vector<double> analytic = grad.to_vector<double>();
    const int64_t n = leaves[k].numel();
    std::vector<int64_t> positions(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i) positions[size_t(i)] = i;
    if (n > options.max_elements_per_input) {
      pick.shuffle(positions);
      positions.resize(size_t(options.max_elements_per_input));
    }
    NoGradGuard no_grad;
    double* x = leaves[k].data<double>();
    for (int64_t i : positions) {
      const double saved = x[i];
      x[i] = saved + options.eps;
      const double plus = weighted_sum(f(leaves), w);
      x[i] = saved - options.eps;
      const double minus = weighted_sum(f(leaves), w);
      x[i] = saved;
      const double numeric = (plus - minus) / (2 * options.eps);
      EXPECT_NEAR(analytic[size_t(i)], numeric, options.atol + options.rtol * std::abs(numeric))
          << "input " << k << " element " << i;
    }
  }
}

void expect_cuda_matches_cpu(const OpFunction& f, const std::vector<Tensor>& inputs, const CompareOptions& options) {
  std::vector<Tensor> cpu_leaves = as_leaves(inputs);
  std::vector<Tensor> cuda_leaves;
  for (const Tensor& t : inputs) {
    Tensor leaf = t.to(Device::cuda(0));
    if (is_floating(leaf.dtype())) leaf.set_requires_grad(true);
    cuda_leaves.push_back(leaf);
  }
  Tensor y_cpu = f(cpu_leaves);
  Tensor y_cuda = f(cuda_leaves);
  ASSERT_TRUE(y_cuda.is_cuda()) << "the op's output is not on the GPU";
  expect_close(y_cuda.to(Device::cpu()), y_cpu, options.rtol, options.atol, "output");
  if (!options.check_gradients) return;
  Rng rng(4321);
  Tensor gy = Tensor::uniform(y_cpu.shape(), -1.0, 1.0, rng, y_cpu.dtype());
  y_cpu.backward(gy);
  y_cuda.backward(gy.to(Device::cuda(0)));
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (!is_floating(inputs[k].dtype())) continue;
    ASSERT_TRUE(cpu_leaves[k].grad().defined() && cuda_leaves[k].grad().defined()) << "input " << k;
    expect_close(cuda_leaves[k].grad().to(Device::cpu()), cpu_leaves[k].grad(), options.rtol, options.atol,
                 "gradient of input " + std::to_string(k));
  }
}

OpFunction in_bfloat16(OpFunction op) {
  return [op](const std::vector<Tensor>& in) {
    std::vector<Tensor> rounded;
    for (const Tensor& t : in) rounded.push_back(t.to(DType::BFloat16));
    if (!in[0].is_cuda())
      for (Tensor& t : rounded) t = t.to(DType::Float32);
    return op(rounded).to(DType::BFloat16).to(DType::Float32);
  };
}

}  // namespace ffr::testing
