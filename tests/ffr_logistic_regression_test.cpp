#include "ffr/logistic_regression.h"

#include "engine/error.h"
#include "engine/rng.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace ffr {
namespace {

struct Data {
  std::vector<double> x;  // [n, d]
  std::vector<int64_t> y;
  int64_t n = 0, d = 0;
};

// Gaussian features; labels = argmax of x W^T (+ Gaussian label noise on the scores).
Data linear_data(int64_t n, int64_t d, const std::vector<double>& true_weight, int64_t k, double noise, Rng& rng) {
  Data data{std::vector<double>(size_t(n * d)), std::vector<int64_t>(size_t(n)), n, d};
  for (double& v : data.x) v = rng.normal();
  for (int64_t i = 0; i < n; ++i) {
    std::vector<double> score(size_t(k), 0.0);
    for (int64_t c = 0; c < k; ++c) {
      for (int64_t j = 0; j < d; ++j) score[size_t(c)] += true_weight[size_t(c * d + j)] * data.x[size_t(i * d + j)];
      score[size_t(c)] += noise * rng.normal();
    }
    data.y[size_t(i)] = std::max_element(score.begin(), score.end()) - score.begin();
  }
  return data;
}

// The gradient of C * sum of log-losses (sklearn's scale), by plain loops: [K*D weights, K biases].
std::vector<double> sklearn_gradient(const LogisticRegressionModel& m, const Data& data, double c) {
  const int64_t k = m.num_classes, d = m.num_features;
  std::vector<double> grad(size_t(k * d + k), 0.0);
  for (int64_t i = 0; i < data.n; ++i) {
    std::vector<double> z(static_cast<size_t>(k));
    for (int64_t a = 0; a < k; ++a) {
      z[size_t(a)] = m.bias[size_t(a)];
      for (int64_t j = 0; j < d; ++j) z[size_t(a)] += m.weight[size_t(a * d + j)] * data.x[size_t(i * d + j)];
    }
    const double top = *std::max_element(z.begin(), z.end());
    double sum = 0.0;
    for (double v : z) sum += std::exp(v - top);
    for (int64_t a = 0; a < k; ++a) {
      const double r = std::exp(z[size_t(a)] - top) / sum - (data.y[size_t(i)] == a ? 1.0 : 0.0);
      for (int64_t j = 0; j < d; ++j) grad[size_t(a * d + j)] += c * r * data.x[size_t(i * d + j)];
      grad[size_t(k * d + a)] += c * r;
    }
  }
  return grad;
}

int64_t count_nonzero(const std::vector<double>& v) {
  return std::count_if(v.begin(), v.end(), [](double w) { return w != 0.0; });
}

TEST(FfrLogisticRegression, RecoversAKnownSeparatingDirection) {
  Rng rng(7);
  const int64_t d = 8;
  std::vector<double> direction = {1.0, -2.0, 0.5, 0.0, 1.5, 0.0, 0.0, -0.5};
  // Binary: class 1 scores +direction, class 0 scores 0.
  std::vector<double> true_weight(size_t(2 * d), 0.0);
  std::copy(direction.begin(), direction.end(), true_weight.begin() + d);
  const Data data = linear_data(2000, d, true_weight, 2, 0.3, rng);

  const LogisticRegressionModel m = fit_logistic_regression(data.x, data.n, d, data.y, 2, {1.0});
  EXPECT_TRUE(m.converged) << m.iterations << " iterations";
  double dot = 0.0, norm_v = 0.0, norm_t = 0.0;
  for (int64_t j = 0; j < d; ++j) {
    const double v = m.weight[size_t(d + j)] - m.weight[size_t(j)];
    EXPECT_NEAR(m.weight[size_t(d + j)], -m.weight[size_t(j)], 1e-9) << "binary fits stay symmetric";
    dot += v * direction[size_t(j)];
    norm_v += v * v;
    norm_t += direction[size_t(j)] * direction[size_t(j)];
  }
  EXPECT_GT(dot / std::sqrt(norm_v * norm_t), 0.99);

  // Multinomial, 3 classes: held-out accuracy close to what the noise allows.
  Rng rng3(8);
  std::vector<double> w3(size_t(3 * d));
  for (double& v : w3) v = 2.0 * rng3.normal();
  const Data train = linear_data(3000, d, w3, 3, 0.2, rng3);
  const Data test = linear_data(1000, d, w3, 3, 0.0, rng3);
  const LogisticRegressionModel m3 = fit_logistic_regression(train.x, train.n, d, train.y, 3, {1.0});
  EXPECT_TRUE(m3.converged);
  const std::vector<int64_t> pred = logistic_regression_predict(m3, test.x, test.n);
  int64_t correct = 0;
  for (int64_t i = 0; i < test.n; ++i) correct += pred[size_t(i)] == test.y[size_t(i)];
  EXPECT_GT(double(correct) / double(test.n), 0.95);
}

// x = +1 (10 samples, 8 positive) and x = -1 (10 samples, 2 positive). By symmetry the bias is 0
// and the logit difference v solves sign(v) + C * 2n (sigmoid(v) - p) = 0 with n = 10, p = 0.8:
// sigmoid(v) = p - 1 / (2 C n) while that exceeds 1/2, else v = 0 (C <= 1/6).
TEST(FfrLogisticRegression, MatchesTheAnalyticOptimumInOneDimension) {
  Data data;
  data.n = 20;
  data.d = 1;
  for (int i = 0; i < 20; ++i) {
    data.x.push_back(i < 10 ? 1.0 : -1.0);
    data.y.push_back(i < 10 ? (i < 8 ? 1 : 0) : (i < 12 ? 1 : 0));
  }
  for (double c : {3.0, 1.0, 0.3, 0.2, 0.1, 0.01}) {
    SCOPED_TRACE(c);
    const LogisticRegressionModel m = fit_logistic_regression(data.x, data.n, 1, data.y, 2, {c});
    EXPECT_TRUE(m.converged);
    const double q = 0.8 - 1.0 / (2.0 * c * 10.0);
    const double expected_v = q > 0.5 ? std::log(q / (1.0 - q)) : 0.0;
    const double v = m.weight[1] - m.weight[0];
    EXPECT_NEAR(v, expected_v, 1e-6);
    if (expected_v == 0.0) EXPECT_EQ(count_nonzero(m.weight), 0);
    EXPECT_NEAR(m.bias[1] - m.bias[0], 0.0, 1e-6);
    // sklearn's objective: |v| + C * (16 samples at loss -log s(v), 4 at -log(1 - s(v))).
    const double s = 1.0 / (1.0 + std::exp(-expected_v));
    const double loss = -(8.0 * std::log(s) + 2.0 * std::log(1.0 - s)) * 2.0;
    EXPECT_NEAR(m.objective, std::abs(expected_v) + c * loss, 1e-6);
  }
  const LogisticRegressionModel m1 = fit_logistic_regression(data.x, data.n, 1, data.y, 2, {1.0});
  EXPECT_NEAR(m1.weight[1] - m1.weight[0], std::log(3.0), 1e-6);  // sigmoid(v) = 0.75
}

// Reference values from scikit-learn 1.9.1 on the same data:
//   LogisticRegression(penalty="l1", C=C, solver="saga", tol=1e-14, max_iter=10**6).fit(X, y)
// (multinomial for 3 classes, unpenalised intercepts that sum to zero, as ours do from zero).
TEST(FfrLogisticRegression, MatchesScikitLearnOnATinyProblem) {
  const std::vector<double> x = {0.5, 1.0,  1.5, -0.5, 2.0, 0.3,  -1.0, 0.8,  -0.5, 2.0,  0.2, 1.7,
                                 -1.2, -1.0, 0.1, -1.5, -2.0, -0.4, 1.0, 0.9, -0.3, -0.2, 0.7, -1.1};
  const std::vector<int64_t> y = {0, 0, 0, 1, 1, 1, 2, 2, 2, 1, 2, 0};
  struct Reference {
    double c, objective;
    std::vector<double> weight, bias;
  };
  const std::vector<Reference> references = {
      {1.0, 8.425669949429267,
       {1.151414709878681, 0.0, 0.0, 1.3668181080272261, -0.3383847495886787, -0.42691336640209376},
       {0.020590259950824634, -0.2036013244727131, 0.18301106452189872}},
      {0.3, 3.8076922891397,
       {0.32827208316300827, 0.0, 0.0, 0.4661187714199516, 0.0, 0.0},
       {0.00773245193984647, -0.06102352642483136, 0.053291074484993095}},
  };
  for (const Reference& r : references) {
    SCOPED_TRACE(r.c);
    const LogisticRegressionModel m = fit_logistic_regression(x, 12, 2, y, 3, {r.c, 10000, 1e-10});
    EXPECT_TRUE(m.converged);
    EXPECT_NEAR(m.objective, r.objective, 1e-9);
    for (size_t i = 0; i < r.weight.size(); ++i) {
      EXPECT_NEAR(m.weight[i], r.weight[i], 1e-6) << "weight " << i;
      if (r.weight[i] == 0.0) EXPECT_EQ(m.weight[i], 0.0) << "weight " << i << " is exactly zero";
    }
    for (size_t i = 0; i < r.bias.size(); ++i) EXPECT_NEAR(m.bias[i], r.bias[i], 1e-6) << "bias " << i;
  }
}

// Optimality in sklearn's scale, with G the gradient of C * sum of log-losses:
// w != 0 => G = -sign(w); w == 0 => |G| <= 1; every bias: G = 0. (Divide by C for the
// gradient of the plain log-loss sum: |grad| <= 1/C at zeros, grad = -sign(w)/C elsewhere.)
TEST(FfrLogisticRegression, SatisfiesTheSubgradientOptimalityConditions) {
  Rng rng(11);
  const int64_t d = 20, k = 4;
  std::vector<double> w(size_t(k * d), 0.0);
  for (int64_t c = 0; c < k; ++c)
    for (int64_t j = 0; j < 5; ++j) w[size_t(c * d + j)] = rng.normal();
  const Data data = linear_data(300, d, w, k, 1.0, rng);
  for (double c : {0.03, 0.3, 3.0}) {
    SCOPED_TRACE(c);
    const LogisticRegressionModel m = fit_logistic_regression(data.x, data.n, d, data.y, k, {c});
    EXPECT_TRUE(m.converged) << m.iterations;
    const int64_t nonzero = count_nonzero(m.weight);
    EXPECT_GT(nonzero, 0);
    EXPECT_LT(nonzero, k * d);
    const std::vector<double> g = sklearn_gradient(m, data, c);
    double worst = 0.0;
    for (int64_t i = 0; i < k * d; ++i) {
      const double wi = m.weight[size_t(i)];
      worst = std::max(worst, wi != 0.0 ? std::abs(g[size_t(i)] + (wi > 0 ? 1.0 : -1.0))
                                        : std::max(0.0, std::abs(g[size_t(i)]) - 1.0));
    }
    for (int64_t a = 0; a < k; ++a) worst = std::max(worst, std::abs(g[size_t(k * d + a)]));
    EXPECT_LT(worst, 1e-3);
    EXPECT_NEAR(m.kkt_violation, worst, 1e-6);
  }
}

TEST(FfrLogisticRegression, L1GivesSparserWeightsAsCShrinks) {
  Rng rng(12);
  const int64_t d = 30;
  std::vector<double> w(size_t(2 * d), 0.0);
  w[size_t(d + 0)] = 2.0;
  w[size_t(d + 1)] = -1.0;
  w[size_t(d + 2)] = 0.5;
  const Data data = linear_data(500, d, w, 2, 0.5, rng);

  std::vector<int64_t> counts;
  for (double c : {3.0, 1.0, 0.3, 0.1, 0.03, 0.01, 0.003}) {
    const LogisticRegressionModel m = fit_logistic_regression(data.x, data.n, d, data.y, 2, {c});
    counts.push_back(count_nonzero(m.weight) / 2);  // the binary fit puts each feature in both rows
  }
  EXPECT_GT(counts.front(), 3) << "weak penalty: noise features used too";
  for (size_t i = 1; i < counts.size(); ++i) EXPECT_LE(counts[i], counts[i - 1]) << "at grid position " << i;
  EXPECT_LE(counts[4], 3) << "C = 0.03: at most the informative features";
  EXPECT_EQ(counts.back(), 0);

  // Exactly: all weights are zero iff C <= 1 / max |sum_i (freq - onehot_i) x_i| (the gradient at
  // W = 0 with the bias at the class frequencies).
  double positive = 0;
  for (int64_t y : data.y) positive += double(y);
  const double freq = positive / double(data.n);
  double top = 0.0;
  for (int64_t j = 0; j < d; ++j) {
    double g = 0.0;
    for (int64_t i = 0; i < data.n; ++i) g += (freq - double(data.y[size_t(i)])) * data.x[size_t(i * d + j)];
    top = std::max(top, std::abs(g));
  }
  const double c_zero = 1.0 / top;
  EXPECT_EQ(count_nonzero(fit_logistic_regression(data.x, data.n, d, data.y, 2, {0.95 * c_zero}).weight), 0);
  EXPECT_GT(count_nonzero(fit_logistic_regression(data.x, data.n, d, data.y, 2, {1.05 * c_zero}).weight), 0);
}

TEST(FfrLogisticRegression, WarmStartReachesTheSameOptimum) {
  Rng rng(13);
  const int64_t d = 10, k = 3;
  std::vector<double> w(size_t(k * d));
  for (double& v : w) v = rng.normal();
  const Data data = linear_data(400, d, w, k, 0.5, rng);
  const LogisticRegressionModel cold = fit_logistic_regression(data.x, data.n, d, data.y, k, {1.0});
  const LogisticRegressionModel start = fit_logistic_regression(data.x, data.n, d, data.y, k, {0.1});
  const LogisticRegressionModel warm = fit_logistic_regression(data.x, data.n, d, data.y, k, {1.0}, &start);
  EXPECT_TRUE(warm.converged);
  EXPECT_NEAR(warm.objective, cold.objective, 1e-6 * cold.objective);
  const std::vector<double> a = logistic_regression_logits(cold, data.x, data.n);
  const std::vector<double> b = logistic_regression_logits(warm, data.x, data.n);
  for (size_t i = 0; i < a.size(); i += 3) {
    // Logit differences are unique at the optimum (the common shift per row is not).
    EXPECT_NEAR(a[i + 1] - a[i], b[i + 1] - b[i], 1e-3);
    EXPECT_NEAR(a[i + 2] - a[i], b[i + 2] - b[i], 1e-3);
  }
}

TEST(FfrLogisticRegression, TensorInputMatchesVectorInput) {
  Rng rng(14);
  const int64_t d = 5;
  std::vector<double> w(size_t(2 * d));
  for (double& v : w) v = rng.normal();
  const Data data = linear_data(100, d, w, 2, 0.5, rng);
  const Tensor x = Tensor::from_vector(data.x, {data.n, d});
  const LogisticRegressionModel a = fit_logistic_regression(x, data.y, 2, {0.5});
  const LogisticRegressionModel b = fit_logistic_regression(data.x, data.n, d, data.y, 2, {0.5});
  EXPECT_EQ(a.weight, b.weight);
  EXPECT_EQ(a.bias, b.bias);
}

TEST(FfrLogisticRegression, RejectsBadInput) {
  const std::vector<double> x = {0.0, 1.0, 2.0, 3.0};  // [2, 2]
  const std::vector<int64_t> y = {0, 1};
  EXPECT_THROW(fit_logistic_regression({}, 0, 2, {}, 2, {1.0}), InputError);
  EXPECT_THROW(fit_logistic_regression(x, 2, 3, y, 2, {1.0}), InputError);         // size mismatch
  EXPECT_THROW(fit_logistic_regression(x, 2, 2, {0, 1, 1}, 2, {1.0}), InputError);  // label count
  EXPECT_THROW(fit_logistic_regression(x, 2, 2, {0, 2}, 2, {1.0}), InputError);     // label range
  EXPECT_THROW(fit_logistic_regression(x, 2, 2, {0, -1}, 2, {1.0}), InputError);
  EXPECT_THROW(fit_logistic_regression(x, 2, 2, y, 1, {1.0}), InputError);          // one class
  EXPECT_THROW(fit_logistic_regression(x, 2, 2, y, 2, {0.0}), InputError);          // C <= 0
  EXPECT_THROW(fit_logistic_regression(x, 2, 2, y, 2, {-1.0}), InputError);
  EXPECT_THROW(fit_logistic_regression(x, 2, 2, y, 2, {std::nan("")}), InputError);
  const std::vector<double> bad = {0.0, std::numeric_limits<double>::infinity(), 2.0, 3.0};
  EXPECT_THROW(fit_logistic_regression(bad, 2, 2, y, 2, {1.0}), InputError);
  EXPECT_THROW(fit_logistic_regression(Tensor::zeros({2, 2}, DType::Int64), y, 2, {1.0}), InputError);
  EXPECT_THROW(fit_logistic_regression(Tensor::zeros({4}), y, 2, {1.0}), InputError);
  LogisticRegressionModel wrong;
  wrong.num_classes = 3;
  wrong.num_features = 2;
  EXPECT_THROW(fit_logistic_regression(x, 2, 2, y, 2, {1.0}, &wrong), InputError);
  const LogisticRegressionModel m = fit_logistic_regression(x, 2, 2, y, 2, {1.0});
  EXPECT_THROW(logistic_regression_predict(m, {1.0, 2.0, 3.0}, 2), InputError);
}

}  // namespace
}  // namespace ffr
