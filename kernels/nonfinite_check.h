// First non-finite value over many tensors (multi-tensor apply), cheap enough to run every step.
//
// record_first_nonfinite(plan, status, step) scans every tensor of the plan; if tensor i holds a
// NaN or an Inf, the int64 `status` becomes min(status, step * 2^24 + i). Being a min, the status
// keeps the first step that went non-finite and, at that step, the lowest tensor index (the first
// layer in the order the caller lists them); kNoNonFinite (INT64_MAX) means every check was clean.
// On CUDA that is one launch, a block per chunk, one atomicMin per block that found something: no
// host synchronisation, no allocation, nothing read back, so it can sit inside a CUDA graph. The
// host reads the status when it chooses (see ffr/numeric_guard.h); fused Adam can read it on the
// device to skip a poisoned update (kernels/fused_adam.h).
//
// The test is on the exponent bits (all ones: NaN or +-Inf), so it holds under fast-math too.
#pragma once

#include "engine/host_device.h"
#include "engine/tensor.h"

#include <cstdint>
#include <limits>
#include <vector>

namespace ffr {

// The status of a run with no non-finite value yet.
constexpr int64_t kNoNonFinite = std::numeric_limits<int64_t>::max();
// A key is step * 2^24 + tensor index: up to 2^24 tensors, steps in [0, kMaxNonFiniteStep].
constexpr int kNonFiniteTensorBits = 24;
constexpr int64_t kMaxNonFiniteTensors = int64_t(1) << kNonFiniteTensorBits;
constexpr int64_t kMaxNonFiniteStep = (kNoNonFinite >> kNonFiniteTensorBits) - 1;  // keeps keys < kNoNonFinite

struct NonFiniteKey {
  int64_t step;
  int64_t tensor_index;
};

inline int64_t encode_nonfinite_key(int64_t step, int64_t tensor_index) {
  return (step << kNonFiniteTensorBits) + tensor_index;
}
// The (step, tensor index) a status holds; only meaningful when status != kNoNonFinite.
inline NonFiniteKey decode_nonfinite_key(int64_t key) {
  return {key >> kNonFiniteTensorBits, key & (kMaxNonFiniteTensors - 1)};
}

// A one-element int64 status on `device`, set to kNoNonFinite.
Tensor make_nonfinite_status(Device device);
// Sets a status back to kNoNonFinite (asynchronously on CUDA).
void reset_nonfinite_status(Tensor& status);

// True when a float's bits (uint16_t: bfloat16, uint32_t: float32, uint64_t: float64) have an
// all-ones exponent: NaN, +Inf or -Inf.
template <typename Bits>
FFR_HOST_DEVICE bool nonfinite_bits(Bits bits) {
  if constexpr (sizeof(Bits) == 2) {
    return (bits & Bits(0x7F80u)) == Bits(0x7F80u);
  } else if constexpr (sizeof(Bits) == 4) {
    return (bits & Bits(0x7F800000u)) == Bits(0x7F800000u);
  } else {
    return (bits & Bits(0x7FF0000000000000ull)) == Bits(0x7FF0000000000000ull);
  }
}

// A contiguous slice of one tensor.
struct NonFiniteChunk {
  const void* data;
  int64_t numel;
  int32_t tensor_index;
  DType dtype;
};

// Elements per chunk (one CUDA block's work): large tensors spread over many SMs, small ones
// (the loss, biases) cost one block each.
constexpr int64_t kNonFiniteChunkElements = 65536;

// Scalars a plan passes by value, in the launch's arguments, instead of in its uploaded chunk
// array (see NonFiniteCheckPlan's `scalars_by_value`).
constexpr int kMaxNonFiniteScalars = 8;
struct NonFiniteScalars {
  NonFiniteChunk chunks[kMaxNonFiniteScalars];
  int32_t count;
};

// The chunks of a list of tensors, built once and reused while the buffers stay the same.
//
// The plan keeps the tensors' addresses, not the tensors: a plan holding last step's loss would
// keep that buffer alive, so the next loss would land elsewhere and the plan would never be
// reused. The caller records with a plan only while its tensors (or tensors it matches()) are
// alive; NumericGuard does exactly that.
//
// With `scalars_by_value`, the first kMaxNonFiniteScalars one-element tensors (the loss: a new
// tensor every step) are not in the uploaded chunk array nor in the key: matches() ignores their
// addresses, bind_scalars() points the plan at this step's ones, and their addresses travel in
// the launch's arguments. So one plan serves every step of a run (no pinned staging, device
// allocation or host-to-device copy after the first), and the launch can sit in a CUDA graph
// whose scalar addresses are fixed.
class NonFiniteCheckPlan {
 public:
  NonFiniteCheckPlan() = default;
  // Tensors on one device; CPU: float32, float64 or bfloat16; CUDA: float32 or bfloat16 (dtypes
  // may differ between tensors). Undefined tensors (a parameter without a grad) and empty ones
  // keep their index but are not scanned. At most kMaxNonFiniteTensors tensors.
  explicit NonFiniteCheckPlan(const std::vector<Tensor>& tensors, bool scalars_by_value = false);

  // True when `tensors` are the buffers (address, size, dtype) this plan was built for; with
  // `scalars_by_value`, any one-element tensors of the same dtypes at the scalar positions.
  bool matches(const std::vector<Tensor>& tensors) const;
  // Points the by-value scalars at those of `tensors` (which the plan matches()).
  void bind_scalars(const std::vector<Tensor>& tensors);

  int64_t num_chunks() const { return int64_t(host_chunks_.size()); }  // not counting the scalars
  const NonFiniteScalars& scalars() const { return scalars_; }
  int64_t num_tensors() const { return num_tensors_; }
  int64_t numel() const { return numel_; }
  Device device() const { return device_; }
  const std::vector<NonFiniteChunk>& host_chunks() const { return host_chunks_; }
  const Tensor& device_chunks() const { return device_chunks_; }  // CUDA: the chunk array on the device

 private:
  std::vector<uintptr_t> key_;  // (address, numel, dtype) per tensor
  bool scalars_by_value_ = false;
  NonFiniteScalars scalars_{};
  std::vector<NonFiniteChunk> host_chunks_;
  Tensor device_chunks_;
  int64_t num_tensors_ = 0;
  int64_t numel_ = 0;
  Device device_;
};

// status (int64, one element, on the plan's device) = min(status, step * 2^24 + i) over the
// tensors i of the plan that hold a NaN or an Inf. step in [0, kMaxNonFiniteStep].
void record_first_nonfinite(const NonFiniteCheckPlan& plan, Tensor& status, int64_t step);

// Launchers. CPU: `chunks` on the host. CUDA: `device_chunks` is a device array of `num_chunks`
// NonFiniteChunk, `scalars` more chunks passed by value; `status` a device pointer.
void first_nonfinite_cpu(const NonFiniteChunk* chunks, int64_t num_chunks, int64_t step, int64_t* status);
void first_nonfinite_cuda(const void* device_chunks, int64_t num_chunks, const NonFiniteScalars& scalars, int64_t step,
                          int64_t* status);

}  // namespace ffr
