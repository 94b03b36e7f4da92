#include "kernels/nonfinite_check.h"

#include "engine/error.h"
#include "engine/nvtx.h"

#include <algorithm>
#include <cstring>
#include <string>

namespace ffr {

// Both write the bits directly: fill_ and Tensor::full take the value as a double, where
// INT64_MAX does not survive.
Tensor make_nonfinite_status(Device device) {
  Tensor status = Tensor::empty({1}, DType::Int64, device);
  reset_nonfinite_status(status);
  return status;
}

void reset_nonfinite_status(Tensor& status) {
  FFR_CHECK(status.defined() && status.dtype() == DType::Int64 && status.numel() == 1,
            "a non-finite status is a one-element int64 tensor, got ", status.str());
  if (status.device().is_cpu()) {
    status.data<int64_t>()[0] = kNoNonFinite;
    return;
  }
  Tensor clean = Tensor::empty_pinned(status.shape(), DType::Int64);
  clean.data<int64_t>()[0] = kNoNonFinite;
  copy_async(status, clean);
}

// ---- CPU reference ----

namespace {

template <typename Bits>
bool chunk_has_nonfinite(const NonFiniteChunk& chunk) {
  const Bits* x = static_cast<const Bits*>(chunk.data);
  bool found = false;
  for (int64_t i = 0; i < chunk.numel; ++i) found |= nonfinite_bits<Bits>(x[i]);  // no branch: vectorises
  return found;
}

}  // namespace

void first_nonfinite_cpu(const NonFiniteChunk* chunks, int64_t num_chunks, int64_t step, int64_t* status) {
  // Chunks are in tensor order, so the first chunk that has one gives the smallest key.
  for (int64_t k = 0; k < num_chunks; ++k) {
    const NonFiniteChunk& chunk = chunks[k];
    bool found = false;
    switch (chunk.dtype) {
      case DType::BFloat16: found = chunk_has_nonfinite<uint16_t>(chunk); break;
      case DType::Float32: found = chunk_has_nonfinite<uint32_t>(chunk); break;
      case DType::Float64: found = chunk_has_nonfinite<uint64_t>(chunk); break;
      default: FFR_FAIL("first_nonfinite: chunk of ", dtype_name(chunk.dtype));
    }
    if (found) {
      *status = std::min(*status, encode_nonfinite_key(step, chunk.tensor_index));
      return;
    }
  }
}

// ---- the plan ----

namespace {

// The positions of the tensors a plan passes by value: the first kMaxNonFiniteScalars defined
// one-element ones.
std::vector<size_t> scalar_positions(const std::vector<Tensor>& tensors) {
  std::vector<size_t> positions;
  for (size_t i = 0; i < tensors.size() && positions.size() < size_t(kMaxNonFiniteScalars); ++i) {
    if (tensors[i].defined() && tensors[i].numel() == 1) positions.push_back(i);
  }
  return positions;
}

// A by-value scalar's address is no part of the key: 1 stands for "a scalar, wherever it is"
// (no tensor lives at address 1).
constexpr uintptr_t kScalarAddress = 1;

std::vector<uintptr_t> key_of(const std::vector<Tensor>& tensors, bool scalars_by_value) {
  std::vector<uintptr_t> key;
  key.reserve(tensors.size() * 3);
  for (const Tensor& t : tensors) {
    key.push_back(t.defined() ? reinterpret_cast<uintptr_t>(t.raw_data()) : 0);
    key.push_back(t.defined() ? uintptr_t(t.numel()) : 0);
    key.push_back(t.defined() ? uintptr_t(t.dtype()) + 1 : 0);
  }
  if (scalars_by_value) {
    for (size_t i : scalar_positions(tensors)) key[3 * i] = kScalarAddress;
  }
  return key;
}

}  // namespace

NonFiniteCheckPlan::NonFiniteCheckPlan(const std::vector<Tensor>& tensors, bool scalars_by_value)
    : key_(key_of(tensors, scalars_by_value)), scalars_by_value_(scalars_by_value), num_tensors_(int64_t(tensors.size())) {
  FFR_CHECK(num_tensors_ <= kMaxNonFiniteTensors, "first_nonfinite checks at most ", kMaxNonFiniteTensors,
            " tensors, got ", num_tensors_);
  const Tensor* first = nullptr;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (!t.defined()) continue;
    if (first == nullptr) first = &t;
    FFR_CHECK(t.device() == first->device(), "first_nonfinite: tensor ", i, " is ", t.str(), ", tensor ",
              first - tensors.data(), " is ", first->str(), " (one device per plan)");
    const DType d = t.dtype();
    if (t.is_cuda()) {
      FFR_CHECK(d == DType::Float32 || d == DType::BFloat16,
                "first_nonfinite on CUDA checks float32 or bfloat16 tensors; tensor ", i, " is ", t.str());
    } else {
      FFR_CHECK(d == DType::Float32 || d == DType::Float64 || d == DType::BFloat16,
                "first_nonfinite on CPU checks float32, float64 or bfloat16 tensors; tensor ", i, " is ", t.str());
    }
  }
  if (first == nullptr) return;
  device_ = first->device();
  // The same chunks on both devices: the CPU loop does not need them, but then both walk one layout.
  std::vector<bool> by_value(tensors.size(), false);
  if (scalars_by_value_) {
    for (size_t i : scalar_positions(tensors)) by_value[i] = true;
    bind_scalars(tensors);
  }
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    if (!t.defined()) continue;
    const int64_t n = t.numel();
    const size_t element = dtype_size(t.dtype());
    numel_ += n;
    if (by_value[i]) continue;
    for (int64_t begin = 0; begin < n; begin += kNonFiniteChunkElements) {
      host_chunks_.push_back({static_cast<const char*>(t.raw_data()) + size_t(begin) * element,
                              std::min(kNonFiniteChunkElements, n - begin), int32_t(i), t.dtype()});
    }
  }
  if (device_.is_cuda() && !host_chunks_.empty()) {
    // Uploaded once, from pinned memory so the copy stays asynchronous.
    static_assert(sizeof(NonFiniteChunk) % sizeof(int64_t) == 0, "NonFiniteChunk is stored as int64 words");
    const int64_t words = int64_t(host_chunks_.size() * sizeof(NonFiniteChunk) / sizeof(int64_t));
    Tensor staging = Tensor::empty_pinned({words}, DType::Int64);
    std::memset(staging.raw_data(), 0, staging.nbytes());  // the chunks' padding bytes too
    std::memcpy(staging.raw_data(), host_chunks_.data(), host_chunks_.size() * sizeof(NonFiniteChunk));
    device_chunks_ = Tensor::empty({words}, DType::Int64, device_);
    copy_async(device_chunks_, staging);
  }
}

bool NonFiniteCheckPlan::matches(const std::vector<Tensor>& tensors) const {
  return key_of(tensors, scalars_by_value_) == key_;
}

void NonFiniteCheckPlan::bind_scalars(const std::vector<Tensor>& tensors) {
  scalars_.count = 0;
  if (!scalars_by_value_) return;
  for (size_t i : scalar_positions(tensors)) {
    const Tensor& t = tensors[i];
    FFR_CHECK(t.device() == device_, "first_nonfinite: scalar ", i, " is ", t.str(),
              ", the plan is on ", device_.str());
    scalars_.chunks[scalars_.count++] = {t.raw_data(), 1, int32_t(i), t.dtype()};
  }
}

void record_first_nonfinite(const NonFiniteCheckPlan& plan, Tensor& status, int64_t step) {
  FFR_CHECK(status.defined() && status.dtype() == DType::Int64 && status.numel() == 1,
            "first_nonfinite: the status is a one-element int64 tensor, got ", status.str());
  FFR_CHECK(step >= 0 && step <= kMaxNonFiniteStep, "first_nonfinite: step ", step, " is outside [0, ",
            kMaxNonFiniteStep, "]");
  if (plan.num_chunks() == 0 && plan.scalars().count == 0) return;
  FFR_CHECK(status.device() == plan.device(), "first_nonfinite: the status is on ", status.device().str(),
            ", the tensors on ", plan.device().str());
  NvtxRange range("first_nonfinite");
#ifdef FFR_WITH_CUDA
  if (plan.device().is_cuda()) {
    OpScope scope("first_nonfinite(" + std::to_string(plan.num_tensors()) + " tensors, " +
                  std::to_string(plan.numel()) + " elements, " + plan.device().str() + ")");
    first_nonfinite_cuda(plan.num_chunks() > 0 ? plan.device_chunks().raw_data() : nullptr, plan.num_chunks(),
                         plan.scalars(), step, status.data<int64_t>());
    return;
  }
#endif
  // Each call keeps the smaller key, so chunks and scalars may go in either order.
  first_nonfinite_cpu(plan.host_chunks().data(), plan.num_chunks(), step, status.data<int64_t>());
  first_nonfinite_cpu(plan.scalars().chunks, plan.scalars().count, step, status.data<int64_t>());
}

}  // namespace ffr
