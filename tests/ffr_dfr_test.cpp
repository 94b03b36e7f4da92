#include "ffr/dfr.h"

#include "engine/error.h"
#include "engine/rng.h"
#include "ffr/experiment.h"
#include "ffr/experiment_json.h"
#include "ffr/logistic_regression.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

namespace ffr {
namespace {

// A spurious-correlation data set: y in {0, 1}, b in {0, 1}, group = 2 y + b. Features:
// [core = (2y - 1) + N(0, 1) (predicts y, ~84% alone), spurious = 2b - 1 (exact), noise dims],
// then a fixed per-dimension affine map (scale, offset) so the head must handle raw features.
struct Spurious {
  std::vector<float> x;
  std::vector<int64_t> y, g;
  int64_t n = 0;
  static constexpr int64_t kDims = 22;
};

Spurious make_spurious(int64_t majority, int64_t minority, Rng& rng) {
  Spurious s;
  for (int64_t y = 0; y < 2; ++y)
    for (int64_t b = 0; b < 2; ++b) {
      const int64_t count = b == y ? majority : minority;
      for (int64_t i = 0; i < count; ++i) {
        for (int64_t j = 0; j < Spurious::kDims; ++j) {
          double v = j == 0 ? (2.0 * double(y) - 1.0) + rng.normal() : j == 1 ? 2.0 * double(b) - 1.0 : rng.normal();
          v = v * (0.5 + 0.25 * double(j % 5)) + 3.0 - 0.5 * double(j % 7);
          s.x.push_back(float(v));
        }
        s.y.push_back(y);
        s.g.push_back(2 * y + b);
        ++s.n;
      }
    }
  return s;
}

Tensor as_tensor(const Spurious& s) { return Tensor::from_vector(s.x, {s.n, Spurious::kDims}); }

// Worst-group accuracy of the head logits = x W^T + b on the data set.
double head_worst_group_accuracy(const std::vector<float>& weight, const std::vector<float>& bias,
                                 int64_t num_classes, const Spurious& s, int64_t num_groups) {
  const int64_t d = Spurious::kDims;
  std::vector<int64_t> correct(size_t(num_groups), 0), total(size_t(num_groups), 0);
  for (int64_t i = 0; i < s.n; ++i) {
    int64_t best = 0;
    double best_logit = -1e300;
    for (int64_t c = 0; c < num_classes; ++c) {
      double z = bias[size_t(c)];
      for (int64_t j = 0; j < d; ++j) z += double(weight[size_t(c * d + j)]) * double(s.x[size_t(i * d + j)]);
      if (z > best_logit) best_logit = z, best = c;
    }
    ++total[size_t(s.g[size_t(i)])];
    correct[size_t(s.g[size_t(i)])] += best == s.y[size_t(i)];
  }
  double worst = 1.0;
  for (int64_t g = 0; g < num_groups; ++g) worst = std::min(worst, double(correct[size_t(g)]) / double(total[size_t(g)]));
  return worst;
}

TEST(FfrDfr, BeatsAConstantAndAPlainLogisticRegressionOnWorstGroupAccuracy) {
  Rng rng(2024);
  const Spurious val = make_spurious(475, 25, rng);  // biased 95/5 inside each class
  const Spurious test = make_spurious(500, 500, rng);  // balanced

  const DfrResult dfr = fit_dfr(as_tensor(val), val.y, val.g, 2, 4, /*seed=*/3);
  ASSERT_EQ(dfr.weight.shape(), (Shape{2, Spurious::kDims}));
  ASSERT_EQ(dfr.bias.shape(), (Shape{2}));
  EXPECT_EQ(dfr.weight.dtype(), DType::Float32);
  EXPECT_FALSE(dfr.weight.is_cuda());
  const DfrOptions defaults;
  EXPECT_NE(std::find(defaults.c_grid.begin(), defaults.c_grid.end(), dfr.best_c), defaults.c_grid.end());
  EXPECT_GT(dfr.tuning_worst_group_accuracy, 0.5);
  const double dfr_wga =
      head_worst_group_accuracy(dfr.weight.to_vector<float>(), dfr.bias.to_vector<float>(), 2, test, 4);

  // A constant predictor gets every group of the other class wrong: WA = 0.
  const double constant_wga = head_worst_group_accuracy(std::vector<float>(2 * Spurious::kDims, 0.0f), {1.0f, 0.0f},
                                                        2, test, 4);
  EXPECT_EQ(constant_wga, 0.0);

  // Plain logistic regression on the whole (biased) validation split leans on the spurious feature.
  std::vector<double> x(val.x.begin(), val.x.end());
  const LogisticRegressionModel plain = fit_logistic_regression(x, val.n, Spurious::kDims, val.y, 2, {1.0});
  const std::vector<float> plain_w(plain.weight.begin(), plain.weight.end());
  const std::vector<float> plain_b(plain.bias.begin(), plain.bias.end());
  const double plain_wga = head_worst_group_accuracy(plain_w, plain_b, 2, test, 4);

  // Over 20 data/DFR seeds: DFR WA 0.77-0.83, plain LR WA 0.22-0.43, DFR - plain >= 0.36.
  EXPECT_GT(dfr_wga, 0.7) << "the core feature alone gives ~0.84";
  EXPECT_GT(dfr_wga, constant_wga + 0.5);
  EXPECT_GT(dfr_wga, plain_wga + 0.2) << "plain LR WA " << plain_wga;

  // DFR's head leans on the core feature, not the spurious one (compared per unit of std).
  const std::vector<float> w = dfr.weight.to_vector<float>();
  const double core = std::abs(w[Spurious::kDims + 0] - w[0]) * 0.5, spurious = std::abs(w[Spurious::kDims + 1] - w[1]) * 0.75;
  EXPECT_LT(spurious, 0.25 * core);
}

TEST(FfrDfr, IsDeterministicInTheSeed) {
  Rng rng(5);
  const Spurious val = make_spurious(95, 12, rng);
  DfrOptions options;
  options.num_retrains = 2;
  const DfrResult a = fit_dfr(as_tensor(val), val.y, val.g, 2, 4, 9, options);
  const DfrResult b = fit_dfr(as_tensor(val), val.y, val.g, 2, 4, 9, options);
  const DfrResult c = fit_dfr(as_tensor(val), val.y, val.g, 2, 4, 10, options);
  EXPECT_EQ(a.weight.to_vector<float>(), b.weight.to_vector<float>());
  EXPECT_EQ(a.bias.to_vector<float>(), b.bias.to_vector<float>());
  EXPECT_EQ(a.best_c, b.best_c);
  EXPECT_EQ(a.tuning_worst_group_accuracy, b.tuning_worst_group_accuracy);
  EXPECT_NE(a.weight.to_vector<float>(), c.weight.to_vector<float>()) << "another seed, other subsets";
}

TEST(FfrDfr, OptionsChooseTheGridAndTheRetrains) {
  Rng rng(6);
  const Spurious val = make_spurious(95, 12, rng);
  DfrOptions options;
  options.c_grid = {0.5};
  options.num_retrains = 1;
  const DfrResult r = fit_dfr(as_tensor(val), val.y, val.g, 2, 4, 1, options);
  EXPECT_EQ(r.best_c, 0.5);
  // A C so small that every weight is zero: the head is a constant (biases only).
  options.c_grid = {1e-6};
  const DfrResult zero = fit_dfr(as_tensor(val), val.y, val.g, 2, 4, 1, options);
  for (float v : zero.weight.to_vector<float>()) EXPECT_EQ(v, 0.0f);
}

// DFR's reference averages 20 refits (dfr_on_validation_eval's num_retrains=20); we used 5 before.
TEST(FfrDfr, DefaultsToTwentyRefitsAndRecordsTheCount) {
  EXPECT_EQ(DfrOptions{}.num_retrains, 20);
  EXPECT_EQ(ExperimentConfig{}.dfr_refits, 20);
  Rng rng(8);
  const Spurious val = make_spurious(95, 12, rng);
  DfrOptions options;
  options.c_grid = {1.0};
  EXPECT_EQ(fit_dfr(as_tensor(val), val.y, val.g, 2, 4, 1, options).num_retrains, 20);
  options.num_retrains = 3;
  EXPECT_EQ(fit_dfr(as_tensor(val), val.y, val.g, 2, 4, 1, options).num_retrains, 3);
}

// A DFR config written before dfr_refits ran with 5 refits: it is not the same experiment as a
// run of today's default, so its result is not reused.
TEST(FfrDfr, ConfigWithoutRefitCountIsAnOlderExperiment) {
  ExperimentConfig c;
  c.method = TrainingMethod::DFR;
  std::string text = config_to_json(c);
  const std::string key = "\"dfr_refits\": 20,";
  ASSERT_NE(text.find(key), std::string::npos) << text;
  text.erase(text.find(key), key.size());
  const ExperimentConfig old = config_from_json(text, "old config.json");
  EXPECT_EQ(old.dfr_refits, 5);
  EXPECT_FALSE(same_experiment(old, c));
  ExperimentConfig erm;  // other methods do not carry it: their configs and run names stay
  EXPECT_EQ(config_to_json(erm).find("dfr_refits"), std::string::npos);
}

// The numbers DFR reports as validation come from the half its head was not fit on: the tuning
// half, each group's floor(n / 2) samples, scored by the best C's head (issue 17, item 6).
TEST(FfrDfr, ReportsTheHeldOutHalfWithTheBestC) {
  Rng rng(7);
  const Spurious val = make_spurious(95, 13, rng);
  DfrOptions options;
  options.num_retrains = 1;
  const DfrResult r = fit_dfr(as_tensor(val), val.y, val.g, 2, 4, 3, options);
  ASSERT_EQ(r.heldout_rows.size(), r.heldout_predictions.size());
  EXPECT_EQ(r.heldout_rows.size(), size_t(2 * (95 / 2) + 2 * (13 / 2)));
  std::vector<int64_t> per_group(4, 0), correct(4, 0);
  std::vector<bool> seen(size_t(val.n), false);
  for (size_t k = 0; k < r.heldout_rows.size(); ++k) {
    const int64_t row = r.heldout_rows[k];
    ASSERT_TRUE(row >= 0 && row < val.n);
    EXPECT_FALSE(seen[size_t(row)]) << "row " << row << " twice";
    seen[size_t(row)] = true;
    ++per_group[size_t(val.g[size_t(row)])];
    correct[size_t(val.g[size_t(row)])] += r.heldout_predictions[k] == val.y[size_t(row)];
  }
  EXPECT_EQ(per_group, (std::vector<int64_t>{47, 6, 6, 47}));
  double worst = 1.0;
  for (int g = 0; g < 4; ++g) worst = std::min(worst, double(correct[size_t(g)]) / double(per_group[size_t(g)]));
  EXPECT_DOUBLE_EQ(worst, r.tuning_worst_group_accuracy) << "the best C's score on the held-out half";
}

TEST(FfrDfr, FitsAMulticlassHead) {
  // 3 classes x 2 biases; core dims 0..2 one-hot-ish for y, dim 3 = b, biased 90/10.
  Rng rng(17);
  const int64_t d = 8;
  std::vector<float> x;
  std::vector<int64_t> labels, groups;
  for (int64_t y = 0; y < 3; ++y)
    for (int64_t b = 0; b < 2; ++b)
      for (int64_t i = 0; i < (b == y % 2 ? 90 : 10); ++i) {
        for (int64_t j = 0; j < d; ++j)
          x.push_back(float(j < 3 ? (j == y ? 1.5 : 0.0) + rng.normal() : j == 3 ? double(b) : rng.normal()));
        labels.push_back(y);
        groups.push_back(2 * y + b);
      }
  const Tensor features = Tensor::from_vector(x, {int64_t(labels.size()), d});
  const DfrResult r = fit_dfr(features, labels, groups, 3, 6, 0);
  EXPECT_EQ(r.weight.shape(), (Shape{3, d}));
  EXPECT_EQ(r.bias.shape(), (Shape{3}));
  EXPECT_GT(r.tuning_worst_group_accuracy, 1.0 / 3.0);
}

TEST(FfrDfr, RejectsBadInput) {
  Rng rng(1);
  const Spurious val = make_spurious(20, 4, rng);
  const Tensor x = as_tensor(val);
  EXPECT_THROW(fit_dfr(Tensor::zeros({0, 3}), {}, {}, 2, 4, 0), InputError);
  EXPECT_THROW(fit_dfr(x.to(DType::Float64), val.y, val.g, 2, 4, 0), InputError);
  EXPECT_THROW(fit_dfr(Tensor::zeros({48}), val.y, val.g, 2, 4, 0), InputError);
  std::vector<int64_t> short_labels(val.y.begin(), val.y.end() - 1);
  EXPECT_THROW(fit_dfr(x, short_labels, val.g, 2, 4, 0), InputError);
  std::vector<int64_t> bad_groups = val.g;
  bad_groups[0] = 4;
  EXPECT_THROW(fit_dfr(x, val.y, bad_groups, 2, 4, 0), InputError);
  std::vector<int64_t> bad_labels = val.y;
  bad_labels[0] = 2;
  EXPECT_THROW(fit_dfr(x, bad_labels, val.g, 2, 4, 0), InputError);
  EXPECT_THROW(fit_dfr(x, val.y, val.g, 3, 4, 0), InputError);  // class 2 has no samples

  // A group with one sample cannot be in both halves; the message names it.
  const Spurious tiny = make_spurious(20, 1, rng);
  try {
    fit_dfr(as_tensor(tiny), tiny.y, tiny.g, 2, 4, 0);
    ADD_FAILURE() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("group 1 "), std::string::npos) << e.what();
  }
  // A declared group with no samples at all (e.g. (y, b, g) groups on real-only data).
  try {
    fit_dfr(x, val.y, val.g, 2, 5, 0);
    ADD_FAILURE() << "expected InputError";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("group 4 "), std::string::npos) << e.what();
  }

  DfrOptions options;
  options.c_grid = {};
  EXPECT_THROW(fit_dfr(x, val.y, val.g, 2, 4, 0, options), InputError);
  options.c_grid = {1.0, -0.1};
  EXPECT_THROW(fit_dfr(x, val.y, val.g, 2, 4, 0, options), InputError);
  options.c_grid = {1.0};
  options.num_retrains = 0;
  EXPECT_THROW(fit_dfr(x, val.y, val.g, 2, 4, 0, options), InputError);
}

}  // namespace
}  // namespace ffr
