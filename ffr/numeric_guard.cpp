#include "ffr/numeric_guard.h"

#include "engine/error.h"

#include <algorithm>
#include <iterator>

#ifdef FFR_WITH_CUDA
#include "engine/cuda/context.h"
#endif

namespace ffr {

namespace {

// Plans kept for reuse: the gradient buffers stay put (the loss, a new tensor every step, is
// passed by value and is no part of a plan's key); a grad that is undefined on some steps makes a
// second plan.
constexpr size_t kKeptPlans = 4;

}  // namespace

std::string to_string(const NonFiniteFinding& finding) {
  return "NaN or Inf in \"" + finding.tensor_name + "\" (tensor " + std::to_string(finding.tensor_index) +
         ") at step " + std::to_string(finding.step);
}

// Copies of the status in pinned host memory, one slot per check in a ring, each with an event
// recorded behind its copy. The host reads a slot only once its event has completed, and only
// check() (on the same thread) queues a new copy into it, so a read never races a copy. A ring
// rather than one slot: the host runs several steps ahead of the GPU, and the newest copy is
// usually still queued when poll() looks.
struct NumericGuard::HostCopies {
#ifdef FFR_WITH_CUDA
  static constexpr int kSlots = 16;
  Tensor slots = Tensor::empty_pinned({kSlots}, DType::Int64);
  cudaEvent_t events[kSlots] = {};
  bool recorded[kSlots] = {};
  int next = 0;  // the slot the next copy goes to

  HostCopies() {
    for (cudaEvent_t& e : events) FFR_CUDA_CHECK(cudaEventCreateWithFlags(&e, cudaEventDisableTiming));
  }
  ~HostCopies() {
    for (cudaEvent_t e : events) FFR_CUDA_WARN(cudaEventDestroy(e));
  }
  HostCopies(const HostCopies&) = delete;
  HostCopies& operator=(const HostCopies&) = delete;

  void record(const Tensor& status) {
    const cudaStream_t stream = cuda::stream();
    FFR_CUDA_CHECK(cudaMemcpyAsync(slots.data<int64_t>() + next, status.raw_data(), sizeof(int64_t),
                                   cudaMemcpyDeviceToHost, stream));
    FFR_CUDA_CHECK(cudaEventRecord(events[next], stream));
    recorded[next] = true;
    next = (next + 1) % kSlots;
  }

  // The newest copy that has landed, without waiting.
  std::optional<int64_t> newest_ready() {
    for (int age = 1; age <= kSlots; ++age) {
      const int slot = (next - age + kSlots) % kSlots;
      if (!recorded[slot]) break;  // slots are filled in order: older ones are empty too
      const cudaError_t ready = cudaEventQuery(events[slot]);
      if (ready == cudaErrorNotReady) {
        (void)cudaGetLastError();  // "not ready" is no error: do not leave it for the next launch check
        continue;
      }
      FFR_CUDA_CHECK(ready);
      return slots.data<int64_t>()[slot];
    }
    return std::nullopt;
  }

  // The newest copy, waiting for it (for that event only, not for the device).
  std::optional<int64_t> newest() {
    const int slot = (next - 1 + kSlots) % kSlots;
    if (!recorded[slot]) return std::nullopt;
    FFR_CUDA_CHECK(cudaEventSynchronize(events[slot]));
    return slots.data<int64_t>()[slot];
  }

  void forget() { std::fill(std::begin(recorded), std::end(recorded), false); }
#endif
};

NumericGuard::NumericGuard(std::vector<std::string> tensor_names, Device device)
    : names_(std::move(tensor_names)), device_(device), status_(make_nonfinite_status(device)) {
  FFR_CHECK(int64_t(names_.size()) <= kMaxNonFiniteTensors, "NumericGuard checks at most ", kMaxNonFiniteTensors,
            " tensors, got ", names_.size(), " names");
#ifdef FFR_WITH_CUDA
  if (device_.is_cuda()) host_copies_ = std::make_unique<HostCopies>();
#endif
}

NumericGuard::~NumericGuard() = default;

void NumericGuard::check(const std::vector<Tensor>& tensors, int64_t step) {
  FFR_CHECK(tensors.size() == names_.size(), "NumericGuard: ", tensors.size(), " tensors to check, ", names_.size(),
            " names");
  auto it = std::find_if(plans_.begin(), plans_.end(), [&](const NonFiniteCheckPlan& p) { return p.matches(tensors); });
  if (it == plans_.end()) {
    NonFiniteCheckPlan plan(tensors, /*scalars_by_value=*/true);
    ++plans_built_;
    FFR_CHECK(plan.num_chunks() == 0 || plan.device() == device_, "NumericGuard on ", device_.str(),
              " was given tensors on ", plan.device().str());
    plans_.insert(plans_.begin(), std::move(plan));
    if (plans_.size() > kKeptPlans) plans_.pop_back();
  } else {
    std::rotate(plans_.begin(), it, it + 1);  // most recently used first
    plans_.front().bind_scalars(tensors);
  }
  record_first_nonfinite(plans_.front(), status_, step);
#ifdef FFR_WITH_CUDA
  if (host_copies_) host_copies_->record(status_);
#endif
}

std::optional<NonFiniteFinding> NumericGuard::poll() {
#ifdef FFR_WITH_CUDA
  if (host_copies_) {
    const std::optional<int64_t> key = host_copies_->newest_ready();
    return seen(key ? *key : kNoNonFinite);
  }
#endif
  return seen(status_.data<int64_t>()[0]);
}

std::optional<NonFiniteFinding> NumericGuard::wait() {
#ifdef FFR_WITH_CUDA
  if (host_copies_) {
    const std::optional<int64_t> key = host_copies_->newest();
    return seen(key ? *key : kNoNonFinite);
  }
#endif
  return seen(status_.data<int64_t>()[0]);
}

void NumericGuard::reset() {
  reset_nonfinite_status(status_);
#ifdef FFR_WITH_CUDA
  if (host_copies_) host_copies_->forget();  // copies still in flight hold the old status
#endif
  seen_key_ = kNoNonFinite;
}

std::optional<NonFiniteFinding> NumericGuard::seen(int64_t key) {
  seen_key_ = std::min(seen_key_, key);
  if (seen_key_ == kNoNonFinite) return std::nullopt;
  const NonFiniteKey k = decode_nonfinite_key(seen_key_);
  const std::string name = k.tensor_index < int64_t(names_.size()) ? names_[size_t(k.tensor_index)] : "?";
  return NonFiniteFinding{k.step, k.tensor_index, name};
}

}  // namespace ffr
