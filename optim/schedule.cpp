#include "optim/schedule.h"

#include "engine/error.h"
#include "optim/optimizer.h"

#include <algorithm>
#include <cmath>

namespace ffr {

LearningRateSchedule LearningRateSchedule::constant(double lr) {
  FFR_CHECK(lr >= 0, "learning rate must be >= 0, got ", lr);
  return LearningRateSchedule(Kind::Constant, lr, 0, 0, lr);
}

LearningRateSchedule LearningRateSchedule::cosine(double lr, int64_t total_steps, int64_t warmup_steps, double min_lr) {
  FFR_CHECK(lr >= 0 && min_lr >= 0 && min_lr <= lr, "cosine schedule needs 0 <= min_lr <= lr, got lr ", lr,
            ", min_lr ", min_lr);
  FFR_CHECK(total_steps > 0 && warmup_steps >= 0 && warmup_steps <= total_steps,
            "cosine schedule needs 0 <= warmup_steps <= total_steps and total_steps > 0, got warmup ", warmup_steps,
            ", total ", total_steps);
  return LearningRateSchedule(Kind::Cosine, lr, total_steps, warmup_steps, min_lr);
}

double LearningRateSchedule::at(int64_t step) const {
  FFR_CHECK(step >= 0, "schedule step must be >= 0, got ", step);
  if (kind_ == Kind::Constant) return lr_;
  if (step < warmup_steps_) return lr_ * double(step + 1) / double(warmup_steps_);
  const int64_t decay_steps = std::max<int64_t>(1, total_steps_ - warmup_steps_);
  const double progress = std::min(1.0, double(step - warmup_steps_) / double(decay_steps));
  const double pi = 3.14159265358979323846;
  return min_lr_ + (lr_ - min_lr_) * 0.5 * (1.0 + std::cos(pi * progress));
}

void LearningRateSchedule::apply(Optimizer& optimizer) const { optimizer.set_lr(at(optimizer.steps_taken())); }

}  // namespace ffr
