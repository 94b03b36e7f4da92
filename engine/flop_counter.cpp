#include "engine/flop_counter.h"

namespace ffr {

namespace {
thread_local FlopCounter* active = nullptr;
}

FlopCounter::FlopCounter() : previous_(active) { active = this; }
FlopCounter::~FlopCounter() { active = previous_; }

void FlopCounter::record(int64_t multiply_adds) {
  if (active != nullptr) active->multiply_adds_ += multiply_adds;
}

}  // namespace ffr
