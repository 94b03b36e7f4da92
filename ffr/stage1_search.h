// FFR's stage-1 learning-rate search, as the authors run it: in every full-FFR cell, stage 1
// (ERM on the balanced synthetic set) is trained alone at each candidate rate and seed; the rate
// with the best mean stage-1 val WA over seeds (real validation split) is kept, and stage 2's
// settings are then run from it. The search runs are plain "stage 1 only" runs, so Table 1's
// "stage 1 only" row and every FFR cell of the same data, ratio and synthetic set share them.
//
// A choice is made only once every candidate has every seed complete, so a stage-2 run never
// depends on a partial search (and a rerun never changes its mind).
#pragma once

#include "ffr/grid.h"

#include <cstdint>

namespace ffr {

// True when `cell` searches its stage-1 rate: a full-FFR cell in a grid with two or more
// stage-1 rates.
bool searches_stage1(const Grid& grid, const GridCell& cell);

// The stage-1-only ERM run that scores stage-1 rate `learning_rate` for `cell` at `seed`.
ExperimentConfig stage1_search_config(const GridCell& cell, double learning_rate, uint64_t seed);

// The chosen stage-1 rate of a searching cell (ties: the earlier rate in grid order), or NaN while
// some search run is not complete in `completed`.
double choose_stage1_learning_rate(const Grid& grid, const GridCell& cell, const RunLookup& completed);

}  // namespace ffr
