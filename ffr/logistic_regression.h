// Multinomial (softmax) logistic regression with an L1 penalty on the weights, fitted in double
// precision on the CPU: the linear head DFR retrains on frozen penultimate features.
//
// The objective is sklearn's LogisticRegression(penalty="l1", multi_class="multinomial"):
//
//   minimise over W [K, D], b [K]:   ||W||_1 + C * sum_i -log softmax(W x_i + b)[y_i]
//
// C is the inverse regularisation strength; the bias is not penalised. The solver minimises the
// same objective divided by C*N (mean log-loss + ||W||_1 / (C N)), so that gradients stay O(1)
// whatever N and C, by FISTA (Beck & Teboulle 2009) with a backtracking line search on the step,
// gradient-based adaptive restart (O'Donoghue & Candes 2015) and soft-thresholding as the
// proximal step. X W^T and R^T X products go through cblas_dgemm, fused into one pass over X per
// step (see fused_step_pass in the .cpp).
//
// With K = 2 the softmax has one redundant direction; started from zero the solver keeps
// w_1 = -w_0, so the logit difference v = w_1 - w_0 solves sklearn's binary problem
// ||v||_1 + C * sum_i log-loss(v x_i + c) at the same C.
#pragma once

#include "engine/tensor.h"

#include <cstdint>
#include <vector>

namespace ffr {

struct LogisticRegressionOptions {
  double c;                   // inverse regularisation strength (sklearn's C), > 0
  int max_iterations = 1000;  // FISTA iterations (each ~1 pass over the features, more when backtracking)
  // Stop when the largest entry of the proximal-gradient mapping (a subgradient of the objective
  // at the new iterate, up to the step's curvature error) falls below tolerance * max(1, v0) in
  // sklearn's scale, v0 being the largest KKT violation at W = 0, b = 0: relative to the start,
  // like liblinear's test, yet never stricter than tolerance times the penalty's own scale.
  double tolerance = 1e-6;
};

struct LogisticRegressionModel {
  int64_t num_classes = 0;
  int64_t num_features = 0;
  std::vector<double> weight;  // [num_classes, num_features], row-major
  std::vector<double> bias;    // [num_classes]
  // Diagnostics.
  int iterations = 0;
  bool converged = false;
  double objective = 0.0;      // sklearn's scale: ||W||_1 + C * sum of log-losses
  // Largest violation of the optimality conditions, in sklearn's scale: per weight
  // |g + sign(w)| where w != 0 and max(0, |g| - 1) where w == 0, |g| for each bias, with g the
  // gradient of C * sum of log-losses.
  double kkt_violation = 0.0;
};

// features: row-major [num_samples, num_features]; labels in [0, num_classes). `initial` (same
// shape, optional) warm-starts the solver, e.g. from the fit at the next smaller C.
// Throws ffr::InputError on empty or mis-sized input, labels out of range, C <= 0 or
// non-finite features.
LogisticRegressionModel fit_logistic_regression(const std::vector<double>& features, int64_t num_samples,
                                                int64_t num_features, const std::vector<int64_t>& labels,
                                                int64_t num_classes, const LogisticRegressionOptions& options,
                                                const LogisticRegressionModel* initial = nullptr);

// Same, from a CPU float32/float64 tensor [N, D].
LogisticRegressionModel fit_logistic_regression(const Tensor& features, const std::vector<int64_t>& labels,
                                                int64_t num_classes, const LogisticRegressionOptions& options,
                                                const LogisticRegressionModel* initial = nullptr);

// W x + b for each row of features [num_samples, model.num_features]: [num_samples, num_classes].
std::vector<double> logistic_regression_logits(const LogisticRegressionModel& model,
                                               const std::vector<double>& features, int64_t num_samples);

// Argmax of the logits per row (ties to the lowest class, as torch.argmax).
std::vector<int64_t> logistic_regression_predict(const LogisticRegressionModel& model,
                                                 const std::vector<double>& features, int64_t num_samples);

}  // namespace ffr
