#include "ffr/dfr.h"

#include "engine/error.h"
#include "engine/rng.h"
#include "ffr/logistic_regression.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <utility>

namespace ffr {
namespace {

// Row-major [n, d] double features.
struct Matrix {
  std::vector<double> values;
  int64_t rows = 0, cols = 0;
};

Matrix select_rows(const Matrix& m, const std::vector<int64_t>& rows) {
  Matrix out{std::vector<double>(rows.size() * size_t(m.cols)), int64_t(rows.size()), m.cols};
  for (size_t r = 0; r < rows.size(); ++r)
    std::copy_n(m.values.begin() + rows[r] * m.cols, m.cols, out.values.begin() + int64_t(r) * m.cols);
  return out;
}

template <typename T>
std::vector<T> select(const std::vector<T>& v, const std::vector<int64_t>& rows) {
  std::vector<T> out(rows.size());
  for (size_t r = 0; r < rows.size(); ++r) out[r] = v[size_t(rows[r])];
  return out;
}

// sklearn's StandardScaler: mean and population std per column; a (numerically) constant column
// keeps scale 1 so it maps to 0 instead of dividing by zero.
struct Standardizer {
  std::vector<double> mean, scale;

  static Standardizer fit(const Matrix& m) {
    Standardizer s{std::vector<double>(size_t(m.cols), 0.0), std::vector<double>(size_t(m.cols), 0.0)};
    for (int64_t i = 0; i < m.rows; ++i)
      for (int64_t j = 0; j < m.cols; ++j) s.mean[size_t(j)] += m.values[size_t(i * m.cols + j)];
    for (double& v : s.mean) v /= double(m.rows);
    for (int64_t i = 0; i < m.rows; ++i)
      for (int64_t j = 0; j < m.cols; ++j) {
        const double d = m.values[size_t(i * m.cols + j)] - s.mean[size_t(j)];
        s.scale[size_t(j)] += d * d;
      }
    for (size_t j = 0; j < s.scale.size(); ++j) {
      const double std = std::sqrt(s.scale[j] / double(m.rows));
      const double eps = 10.0 * std::numeric_limits<double>::epsilon() * std::max(1.0, std::abs(s.mean[j]));
      s.scale[j] = std < eps ? 1.0 : std;
    }
    return s;
  }

  Matrix apply(Matrix m) const {
    for (int64_t i = 0; i < m.rows; ++i)
      for (int64_t j = 0; j < m.cols; ++j) {
        double& v = m.values[size_t(i * m.cols + j)];
        v = (v - mean[size_t(j)]) / scale[size_t(j)];
      }
    return m;
  }
};

// The sample indices of each group, in input order.
std::vector<std::vector<int64_t>> members_of_groups(const std::vector<int64_t>& groups, int64_t num_groups) {
  std::vector<std::vector<int64_t>> members(static_cast<size_t>(num_groups));
  for (size_t i = 0; i < groups.size(); ++i) members[size_t(groups[i])].push_back(int64_t(i));
  return members;
}

// Every group cut to the size of the smallest (a seeded choice), in group order.
std::vector<int64_t> balanced_subset(std::vector<std::vector<int64_t>> members, Rng& rng) {
  size_t smallest = std::numeric_limits<size_t>::max();
  for (const auto& m : members) smallest = std::min(smallest, m.size());
  std::vector<int64_t> subset;
  for (auto& m : members) {
    rng.shuffle(m);
    subset.insert(subset.end(), m.begin(), m.begin() + int64_t(smallest));
  }
  return subset;
}

double worst_group_accuracy(const std::vector<int64_t>& predictions, const std::vector<int64_t>& labels,
                            const std::vector<int64_t>& groups, int64_t num_groups) {
  std::vector<int64_t> correct(size_t(num_groups), 0), total(size_t(num_groups), 0);
  for (size_t i = 0; i < labels.size(); ++i) {
    ++total[size_t(groups[i])];
    correct[size_t(groups[i])] += predictions[i] == labels[i];
  }
  double worst = 1.0;
  for (int64_t g = 0; g < num_groups; ++g)
    if (total[size_t(g)] > 0) worst = std::min(worst, double(correct[size_t(g)]) / double(total[size_t(g)]));
  return worst;
}

void check_inputs(const Tensor& features, const std::vector<int64_t>& labels, const std::vector<int64_t>& groups,
                  int64_t num_classes, int64_t num_groups, const DfrOptions& options) {
  if (!features.defined() || features.ndim() != 2 || features.is_cuda() || features.dtype() != DType::Float32)
    throw InputError("DFR: features must be a CPU float32 tensor [N, D], got " +
                     (features.defined() ? features.str() : std::string("an undefined tensor")));
  if (features.size(0) == 0 || features.size(1) == 0)
    throw InputError("DFR: empty features " + features.str());
  const int64_t n = features.size(0);
  if (int64_t(labels.size()) != n || int64_t(groups.size()) != n)
    throw InputError("DFR: " + std::to_string(n) + " feature rows but " + std::to_string(labels.size()) +
                     " labels and " + std::to_string(groups.size()) + " groups");
  if (num_classes < 2) throw InputError("DFR: num_classes must be >= 2, got " + std::to_string(num_classes));
  if (num_groups < 1) throw InputError("DFR: num_groups must be >= 1, got " + std::to_string(num_groups));
  std::vector<int64_t> per_class(size_t(num_classes), 0);
  for (size_t i = 0; i < labels.size(); ++i) {
    if (labels[i] < 0 || labels[i] >= num_classes)
      throw InputError("DFR: label " + std::to_string(labels[i]) + " of sample " + std::to_string(i) +
                       " is outside [0, " + std::to_string(num_classes) + ")");
    if (groups[i] < 0 || groups[i] >= num_groups)
      throw InputError("DFR: group " + std::to_string(groups[i]) + " of sample " + std::to_string(i) +
                       " is outside [0, " + std::to_string(num_groups) + ")");
    ++per_class[size_t(labels[i])];
  }
  for (int64_t c = 0; c < num_classes; ++c)
    if (per_class[size_t(c)] == 0)
      throw InputError("DFR: class " + std::to_string(c) + " has no samples; every class in [0, " +
                       std::to_string(num_classes) + ") needs some");
  if (options.c_grid.empty()) throw InputError("DFR: the C grid is empty");
  for (double c : options.c_grid)
    if (!(c > 0.0) || !std::isfinite(c)) throw InputError("DFR: C values must be positive, got " + std::to_string(c));
  if (options.num_retrains < 1)
    throw InputError("DFR: num_retrains must be >= 1, got " + std::to_string(options.num_retrains));
}

}  // namespace

DfrResult fit_dfr(const Tensor& features, const std::vector<int64_t>& labels, const std::vector<int64_t>& groups,
                  int64_t num_classes, int64_t num_groups, uint64_t seed) {
  return fit_dfr(features, labels, groups, num_classes, num_groups, seed, DfrOptions{});
}

DfrResult fit_dfr(const Tensor& features, const std::vector<int64_t>& labels, const std::vector<int64_t>& groups,
                  int64_t num_classes, int64_t num_groups, uint64_t seed, const DfrOptions& options) {
  check_inputs(features, labels, groups, num_classes, num_groups, options);
  Matrix all{features.to_vector<double>(), features.size(0), features.size(1)};
  for (size_t i = 0; i < all.values.size(); ++i)
    if (!std::isfinite(all.values[i]))
      throw InputError("DFR: non-finite feature at sample " + std::to_string(i / size_t(all.cols)) + ", dimension " +
                       std::to_string(i % size_t(all.cols)));
  Rng rng(seed, kDfrRngStream);
  const std::vector<std::vector<int64_t>> members = members_of_groups(groups, num_groups);

  // ---- halves, per group: the fitting half gets ceil(n/2), the tuning half floor(n/2) ----
  std::vector<std::vector<int64_t>> fit_members(static_cast<size_t>(num_groups));
  std::vector<int64_t> tune_rows;
  for (int64_t g = 0; g < num_groups; ++g) {
    std::vector<int64_t> m = members[size_t(g)];
    if (m.size() < 2)
      throw InputError("DFR: group " + std::to_string(g) + " has " + std::to_string(m.size()) +
                       " sample(s) in the validation data, so one of its halves would be empty; DFR needs >= 2 per "
                       "group (pass the groups present in the data, e.g. (y, b), not (y, b, g))");
    rng.shuffle(m);
    const size_t half = (m.size() + 1) / 2;
    fit_members[size_t(g)].assign(m.begin(), m.begin() + int64_t(half));
    tune_rows.insert(tune_rows.end(), m.begin() + int64_t(half), m.end());
  }

  // ---- tune C on the second half ----
  const std::vector<int64_t> fit_rows = balanced_subset(fit_members, rng);
  const Matrix fit_raw = select_rows(all, fit_rows);
  const Standardizer fit_scaler = Standardizer::fit(fit_raw);
  const Matrix fit_x = fit_scaler.apply(fit_raw);
  const std::vector<int64_t> fit_y = select(labels, fit_rows);
  const Matrix tune_x = fit_scaler.apply(select_rows(all, tune_rows));
  const std::vector<int64_t> tune_y = select(labels, tune_rows), tune_g = select(groups, tune_rows);

  // Strongest regularisation first, each fit warm-started from the previous one.
  std::vector<size_t> order(options.c_grid.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return options.c_grid[a] < options.c_grid[b]; });
  std::vector<double> tuning_wga(options.c_grid.size());
  std::vector<std::vector<int64_t>> tuning_predictions(options.c_grid.size());
  LogisticRegressionModel previous;
  for (size_t k = 0; k < order.size(); ++k) {
    const LogisticRegressionOptions lr{options.c_grid[order[k]], options.max_iterations, options.tolerance};
    previous = fit_logistic_regression(fit_x.values, fit_x.rows, fit_x.cols, fit_y, num_classes, lr,
                                       k > 0 ? &previous : nullptr);
    const std::vector<int64_t> predictions = logistic_regression_predict(previous, tune_x.values, tune_x.rows);
    tuning_wga[order[k]] = worst_group_accuracy(predictions, tune_y, tune_g, num_groups);
    tuning_predictions[order[k]] = predictions;
  }
  const size_t best = size_t(std::max_element(tuning_wga.begin(), tuning_wga.end()) - tuning_wga.begin());
  const double best_c = options.c_grid[best];

  // ---- refit on balanced subsets of the whole split, one scaler, averaged coefficients ----
  const Standardizer scaler = Standardizer::fit(all);
  const int64_t d = all.cols;
  const Matrix all_x = scaler.apply(std::move(all));  // the raw copy is no longer needed
  std::vector<double> weight(size_t(num_classes * d), 0.0), bias(size_t(num_classes), 0.0);
  const LogisticRegressionOptions lr{best_c, options.max_iterations, options.tolerance};
  LogisticRegressionModel model;
  for (int r = 0; r < options.num_retrains; ++r) {
    const std::vector<int64_t> rows = balanced_subset(members, rng);
    const Matrix x = select_rows(all_x, rows);
    model = fit_logistic_regression(x.values, x.rows, x.cols, select(labels, rows), num_classes, lr,
                                    r > 0 ? &model : nullptr);
    for (size_t i = 0; i < weight.size(); ++i) weight[i] += model.weight[i] / options.num_retrains;
    for (size_t i = 0; i < bias.size(); ++i) bias[i] += model.bias[i] / options.num_retrains;
  }

  // ---- fold the standardisation into the head: W (x - m) / s + b = (W / s) x + (b - W m / s) ----
  std::vector<float> raw_weight(weight.size()), raw_bias(bias.size());
  for (int64_t c = 0; c < num_classes; ++c) {
    double shift = 0.0;
    for (int64_t j = 0; j < d; ++j) {
      const double w = weight[size_t(c * d + j)] / scaler.scale[size_t(j)];
      raw_weight[size_t(c * d + j)] = float(w);
      shift += w * scaler.mean[size_t(j)];
    }
    raw_bias[size_t(c)] = float(bias[size_t(c)] - shift);
  }

  DfrResult result;
  result.weight = Tensor::from_vector(raw_weight, {num_classes, d});
  result.bias = Tensor::from_vector(raw_bias, {num_classes});
  result.best_c = best_c;
  result.num_retrains = options.num_retrains;
  result.tuning_worst_group_accuracy = tuning_wga[best];
  result.heldout_rows = tune_rows;
  result.heldout_predictions = std::move(tuning_predictions[best]);
  return result;
}

}  // namespace ffr
