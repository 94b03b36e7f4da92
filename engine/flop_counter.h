// Counts the multiply-adds of GEMMs and convolutions run on this thread while a FlopCounter is
// alive (`ffr-bench models` reports a model's forward cost this way). One thread-local pointer
// test per GEMM/conv call when no counter is active.
#pragma once

#include <cstdint>

namespace ffr {

class FlopCounter {
 public:
  FlopCounter();
  ~FlopCounter();
  FlopCounter(const FlopCounter&) = delete;
  FlopCounter& operator=(const FlopCounter&) = delete;

  int64_t multiply_adds() const { return multiply_adds_; }
  // Called by the ops: adds to the innermost active counter, if any.
  static void record(int64_t multiply_adds);

 private:
  int64_t multiply_adds_ = 0;
  FlopCounter* previous_;
};

}  // namespace ffr
