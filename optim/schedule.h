// Learning-rate schedules: the rate as a pure function of the optimizer's step index (0 = the
// first step), so a resumed run continues on the same curve from the saved step count.
//   schedule.apply(optimizer);   // before optimizer.step()
#pragma once

#include <cstdint>

namespace ffr {

class Optimizer;

class LearningRateSchedule {
 public:
  // The same rate at every step.
  static LearningRateSchedule constant(double lr);
  // Linear warmup over `warmup_steps` (step s < warmup gets lr * (s + 1) / warmup), then a
  // half cosine from `lr` down to `min_lr` at step `total_steps`; min_lr after that.
  static LearningRateSchedule cosine(double lr, int64_t total_steps, int64_t warmup_steps = 0, double min_lr = 0.0);

  double at(int64_t step) const;
  // Sets the optimizer's rate for its next step.
  void apply(Optimizer& optimizer) const;

 private:
  enum class Kind : uint8_t { Constant, Cosine };
  LearningRateSchedule(Kind kind, double lr, int64_t total_steps, int64_t warmup_steps, double min_lr)
      : kind_(kind), lr_(lr), total_steps_(total_steps), warmup_steps_(warmup_steps), min_lr_(min_lr) {}

  Kind kind_;
  double lr_;
  int64_t total_steps_;
  int64_t warmup_steps_;
  double min_lr_;
};

}  // namespace ffr
