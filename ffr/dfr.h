// DFR, deep feature reweighting (Kirichenko et al. 2023, "Last layer re-training is sufficient
// for robustness to spurious correlations"), as the FFR protocol runs it: the backbone is frozen,
// and a new linear head is fitted on its penultimate features of the validation split.
//
//   1. Split the validation samples into two halves, each group split in half (seeded).
//   2. For each C of the grid: fit an L1 multinomial logistic regression on a group-balanced
//      subset of the first half (every group cut to the size of the smallest, seeded), features
//      standardised with that subset's mean/std; score it on the whole second half by
//      worst-group accuracy. Keep the best C (ties: the first in grid order).
//      The best C's scores on that half are what a run reports as DFR's validation numbers.
//   3. Refit with the best C num_retrains times, each on a fresh group-balanced subset of the
//      whole validation split, and average the coefficients.
//
// Scalers, as in the reference code (dfr_evaluate_spurious.py), each fitted on the data its head is
// trained on: the tuning fits standardise with the mean/std of their balanced subset of the first
// half (the reference's scaler.fit(x_train)); the refit heads are trained on balanced subsets of
// the whole validation split and standardise with the mean/std of that split
// (dfr_on_validation_eval's scaler.fit(all_embeddings["val"])), one scaler for all refits so their
// coefficients average in one space. Never test or train-split features. StandardScaler's
// conventions (population std, a constant feature keeps scale 1).
// Differences, on purpose: the halves are split per group (the reference shuffles all samples,
// which can leave a 10-sample group empty in a half); the head is multinomial with an
// unpenalised bias (liblinear's is one-vs-rest with a penalised intercept).
//
// The returned head applies to raw features: the standardisation is folded into weight and bias,
// logits = features @ weight^T + bias.
#pragma once

#include "engine/tensor.h"

#include <cstdint>
#include <vector>

namespace ffr {

struct DfrResult {
  Tensor weight;  // [C, D] float32 CPU
  Tensor bias;    // [C] float32 CPU
  double best_c;
  double tuning_worst_group_accuracy;  // of best_c, on the held-out half
  // The held-out (tuning) half: its rows of `features`, and the predictions of best_c's head fit
  // on the other half. What DFR reports as validation: the refit head has seen every row.
  std::vector<int64_t> heldout_rows;
  std::vector<int64_t> heldout_predictions;
  int num_retrains = 0;  // balanced refits averaged into weight/bias
};

struct DfrOptions {
  std::vector<double> c_grid = {3, 1, 0.3, 0.1, 0.03, 0.01, 0.003};  // the FFR protocol's
  int num_retrains = 20;         // balanced subsets averaged in the refit (the reference's default)
  int max_iterations = 1000;     // per logistic-regression fit
  double tolerance = 1e-6;       // LogisticRegressionOptions::tolerance
};

// features: [N, D] float32 CPU (penultimate features of the validation split); labels in
// [0, num_classes), groups in [0, num_groups), one per sample. Every group needs >= 2 samples
// (one per half). All randomness comes from ffr::Rng(seed, kDfrRngStream).
// Throws ffr::InputError on empty or mis-sized input, ids out of range, a group with no sample in a
// half (naming the group), or a bad option.
DfrResult fit_dfr(const Tensor& features, const std::vector<int64_t>& labels, const std::vector<int64_t>& groups,
                  int64_t num_classes, int64_t num_groups, uint64_t seed);
DfrResult fit_dfr(const Tensor& features, const std::vector<int64_t>& labels, const std::vector<int64_t>& groups,
                  int64_t num_classes, int64_t num_groups, uint64_t seed, const DfrOptions& options);

// The Philox stream DFR draws from, apart from the streams the same seed drives elsewhere.
constexpr uint64_t kDfrRngStream = 0xDF12;

}  // namespace ffr
