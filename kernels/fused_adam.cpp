#include "kernels/fused_adam.h"

#include "engine/error.h"
#include "engine/nvtx.h"
#include "engine/parallel.h"
#include "kernels/dispatch.h"

#include <algorithm>
#include <cstdint>
#include <cstring>

namespace ffr {

AdamStepCoefficients<double> adam_step_coefficients(const AdamHyperParameters& h, int64_t step) {
  FFR_CHECK(step >= 1, "Adam step count starts at 1, got ", step);
  FFR_CHECK(h.beta1 >= 0 && h.beta1 < 1 && h.beta2 >= 0 && h.beta2 < 1, "Adam betas must be in [0, 1), got (",
            h.beta1, ", ", h.beta2, ")");
  AdamStepCoefficients<double> c;
  c.beta1 = h.beta1;
  c.beta2 = h.beta2;
  c.one_minus_beta1 = 1.0 - h.beta1;
  c.one_minus_beta2 = 1.0 - h.beta2;
  c.eps = h.eps;
  c.weight_decay = h.decoupled_weight_decay ? 0.0 : h.weight_decay;
  c.decay_factor = h.decoupled_weight_decay ? 1.0 - h.lr * h.weight_decay : 1.0;
  c.step_size = h.lr / (1.0 - std::pow(h.beta1, double(step)));
  c.bias_correction2_sqrt = std::sqrt(1.0 - std::pow(h.beta2, double(step)));
  return c;
}

// ---- CPU reference ----

void fused_adam_cpu(const AdamChunk* chunks, int64_t num_chunks, DType dtype,
                    const AdamStepCoefficients<double>& coefficients, const int64_t* skip_if_set) {
  if (skip_if_set != nullptr && *skip_if_set != kNoNonFinite) return;
  dispatch_cpu_floating(dtype, "fused_adam", [&](auto tag) {
    using T = typename decltype(tag)::type;
    const AdamStepCoefficients<T> c = cast_coefficients<T>(coefficients);
    // Chunks are at most kAdamChunkElements long and touch disjoint elements: threads take whole chunks.
    parallel_for(0, num_chunks, 1, [&](int64_t k_begin, int64_t k_end) {
      for (int64_t k = k_begin; k < k_end; ++k) {
        const AdamChunk& chunk = chunks[k];
        T* p = static_cast<T*>(chunk.param);
        const T* g = static_cast<const T*>(chunk.grad);
        T* m = static_cast<T*>(chunk.exp_avg);
        T* v = static_cast<T*>(chunk.exp_avg_sq);
        for (int64_t i = 0; i < chunk.numel; ++i) adam_update_element<T>(p[i], g[i], m[i], v[i], c);
      }
    });
  });
}

// ---- the plan ----

namespace {

void check_tensors(const std::vector<AdamTensors>& tensors) {
  const Tensor& first = tensors.front().param;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const AdamTensors& t = tensors[i];
    FFR_CHECK(t.param.defined() && t.grad.defined() && t.exp_avg.defined() && t.exp_avg_sq.defined(),
              "fused_adam: tensor ", i, " has an undefined param, grad or state");
    for (const Tensor* x : {&t.grad, &t.exp_avg, &t.exp_avg_sq}) {
      FFR_CHECK(x->shape() == t.param.shape() && x->dtype() == t.param.dtype() && x->device() == t.param.device(),
                "fused_adam: tensor ", i, ": ", x->str(), " does not match its parameter ", t.param.str());
    }
    FFR_CHECK(t.param.device() == first.device() && t.param.dtype() == first.dtype(), "fused_adam: parameter ", i,
              " is ", t.param.str(), ", parameter 0 is ", first.str(), " (one device and dtype per plan)");
  }
  if (first.is_cuda()) {
    FFR_CHECK(first.dtype() == DType::Float32, "fused_adam on CUDA updates float32 parameters, got ", first.str());
  } else {
    FFR_CHECK(first.dtype() == DType::Float32 || first.dtype() == DType::Float64,
              "fused_adam on CPU updates float32 or float64 parameters, got ", first.str());
  }
}

// The buffers' addresses and sizes: a plan built for them stays valid as long as they match.
std::vector<uintptr_t> key_of(const std::vector<AdamTensors>& tensors) {
  std::vector<uintptr_t> key;
  key.reserve(tensors.size() * 5);
  for (const AdamTensors& t : tensors) {
    for (const Tensor* x : {&t.param, &t.grad, &t.exp_avg, &t.exp_avg_sq})
      key.push_back(x->defined() ? reinterpret_cast<uintptr_t>(x->raw_data()) : 0);
    key.push_back(t.param.defined() ? uintptr_t(t.param.numel()) : 0);
  }
  return key;
}

}  // namespace

FusedAdamPlan::FusedAdamPlan(const std::vector<AdamTensors>& tensors) : key_(key_of(tensors)), tensors_(tensors) {
  if (tensors.empty()) return;
  check_tensors(tensors);
  device_ = tensors.front().param.device();
  dtype_ = tensors.front().param.dtype();
  const size_t element = dtype_size(dtype_);
  // On the GPU a chunk is one block's work; on the CPU, the unit the threads share out.
  const int64_t chunk_elements = kAdamChunkElements;
  for (const AdamTensors& t : tensors) {
    const int64_t n = t.param.numel();
    numel_ += n;
    for (int64_t begin = 0; begin < n; begin += chunk_elements) {
      const size_t offset = size_t(begin) * element;
      host_chunks_.push_back({static_cast<char*>(t.param.raw_data()) + offset,
                              static_cast<const char*>(t.grad.raw_data()) + offset,
                              static_cast<char*>(t.exp_avg.raw_data()) + offset,
                              static_cast<char*>(t.exp_avg_sq.raw_data()) + offset,
                              std::min(chunk_elements, n - begin)});
    }
  }
  if (device_.is_cuda() && !host_chunks_.empty()) {
    // Uploaded once, from pinned memory so the copy stays asynchronous.
    static_assert(sizeof(AdamChunk) % sizeof(int64_t) == 0, "AdamChunk is stored as int64 words");
    const int64_t words = int64_t(host_chunks_.size() * sizeof(AdamChunk) / sizeof(int64_t));
    Tensor staging = Tensor::empty_pinned({words}, DType::Int64);
    std::memcpy(staging.raw_data(), host_chunks_.data(), host_chunks_.size() * sizeof(AdamChunk));
    device_chunks_ = Tensor::empty({words}, DType::Int64, device_);
    copy_async(device_chunks_, staging);
  }
}

bool FusedAdamPlan::matches(const std::vector<AdamTensors>& tensors) const { return key_of(tensors) == key_; }

void fused_adam_step(const FusedAdamPlan& plan, const AdamHyperParameters& hyper, int64_t step,
                     const Tensor& skip_if_set) {
  if (plan.num_chunks() == 0) return;
  OpScope scope("fused_adam(" + std::to_string(plan.num_tensors()) + " tensors, " + std::to_string(plan.numel()) +
                " elements, " + plan.device().str() + ")");
  NvtxRange range("fused_adam");
  const AdamStepCoefficients<double> coefficients = adam_step_coefficients(hyper, step);
  const int64_t* skip = nullptr;
  if (skip_if_set.defined()) {
    FFR_CHECK(skip_if_set.dtype() == DType::Int64 && skip_if_set.numel() == 1 &&
                  skip_if_set.device() == plan.device(),
              "fused_adam: the skip guard must be a one-element int64 tensor on ", plan.device().str(), ", got ",
              skip_if_set.str());
    skip = skip_if_set.data<int64_t>();
  }
#ifdef FFR_WITH_CUDA
  if (plan.device().is_cuda()) {
    fused_adam_cuda(plan.device_chunks().raw_data(), plan.num_chunks(), coefficients, skip);
    return;
  }
#endif
  fused_adam_cpu(plan.host_chunks().data(), plan.num_chunks(), plan.dtype(), coefficients, skip);
}

}  // namespace ffr
