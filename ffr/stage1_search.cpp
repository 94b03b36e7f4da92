#include "ffr/stage1_search.h"

#include <cmath>
#include <limits>

namespace ffr {

bool searches_stage1(const Grid& grid, const GridCell& cell) {
  return cell.config.augmentation == data::Augmentation::FFR && cell.config.stages == StageOrder::Full &&
         grid.stage1_learning_rates.size() >= 2;
}

ExperimentConfig stage1_search_config(const GridCell& cell, double learning_rate, uint64_t seed) {
  // Exactly what run_config gives a Table 1 "stage 1 only" cell, so the runs are shared.
  GridCell stage1 = cell;
  stage1.config.stages = StageOrder::Stage1Only;
  stage1.config.method = TrainingMethod::ERM;  // stage 1 trains with ERM whatever stage 2's method
  stage1.config.dfr_refits = ExperimentConfig{}.dfr_refits;
  return run_config(stage1, {learning_rate, false}, seed);
}

double choose_stage1_learning_rate(const Grid& grid, const GridCell& cell, const RunLookup& completed) {
  const double unknown = std::numeric_limits<double>::quiet_NaN();
  if (!completed || grid.seeds.empty()) return unknown;
  double best_rate = unknown, best_wa = -1.0;
  for (double rate : grid.stage1_learning_rates) {
    double sum = 0.0;
    for (uint64_t seed : grid.seeds) {
      const std::optional<ExperimentResult> result = completed(run_name(stage1_search_config(cell, rate, seed)));
      if (!result) return unknown;
      // NaN (no group measured) counts as the worst possible.
      const double wa = result->val.worst_group_accuracy;
      sum += std::isfinite(wa) ? wa : 0.0;
    }
    const double mean = sum / double(grid.seeds.size());
    if (mean > best_wa) {  // strictly: a tie keeps the earlier rate
      best_wa = mean;
      best_rate = rate;
    }
  }
  return best_rate;
}

}  // namespace ffr
