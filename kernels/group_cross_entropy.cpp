#include "kernels/group_cross_entropy.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/nvtx.h"
#include "kernels/dispatch.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

namespace ffr {

// ---- CPU reference: sequential, accumulated in double ----

namespace {

template <typename T>
void forward_cpu_typed(const GroupCrossEntropyForwardArgs& a) {
  const T* logits = static_cast<const T*>(a.logits);
  T* per_sample = static_cast<T*>(a.per_sample_loss);
  T* lse_out = static_cast<T*>(a.log_sum_exp);
  std::vector<double> sums(size_t(a.num_groups), 0.0);
  std::vector<int64_t> counts(size_t(a.num_groups), 0);
  int64_t invalid = 0;
  for (int64_t i = 0; i < a.rows; ++i) {
    const T* row = logits + i * a.classes;
    // Max-shifted logsumexp: NaN if any logit is NaN, +-inf when the largest logit is.
    double max = -std::numeric_limits<double>::infinity();
    bool nan = false;
    for (int64_t j = 0; j < a.classes; ++j) {
      nan = nan || std::isnan(double(row[j]));
      max = std::max(max, double(row[j]));
    }
    double sum = 0.0;
    for (int64_t j = 0; j < a.classes; ++j) sum += std::exp(double(row[j]) - max);
    const double lse = nan ? std::numeric_limits<double>::quiet_NaN() : std::isinf(max) ? max : max + std::log(sum);
    const int64_t y = a.labels[i];
    const int64_t g = a.groups != nullptr ? a.groups[i] : 0;
    const bool valid = y >= 0 && y < a.classes && g >= 0 && g < a.num_groups;
    const double loss = valid ? lse - double(row[y]) : std::numeric_limits<double>::quiet_NaN();
    per_sample[i] = T(loss);
    lse_out[i] = T(lse);
    if (valid) {
      sums[size_t(g)] += loss;
      counts[size_t(g)] += 1;
    } else {
      invalid += 1;
    }
  }
  T* group_sum = static_cast<T*>(a.group_loss_sum);
  for (int64_t k = 0; k < a.num_groups; ++k) {
    group_sum[k] = T(sums[size_t(k)]);
    a.group_count[k] = counts[size_t(k)];
  }
  finalize_group_loss<T>(a.mode, a.rows, a.num_groups, invalid, group_sum, a.group_count, T(a.step_size),
                         T(a.adjustment), static_cast<const T*>(a.group_sizes), static_cast<T*>(a.group_weights),
                         static_cast<T*>(a.loss), static_cast<T*>(a.sample_weight));
}

template <typename T>
void backward_cpu_typed(const GroupCrossEntropyBackwardArgs& a) {
  const T* logits = static_cast<const T*>(a.logits);
  const T* lse = static_cast<const T*>(a.log_sum_exp);
  const T* weight = static_cast<const T*>(a.sample_weight);
  T* dlogits = static_cast<T*>(a.dlogits);
  const double upstream = a.upstream != nullptr ? double(*static_cast<const T*>(a.upstream)) : 1.0;
  for (int64_t i = 0; i < a.rows; ++i) {
    const int64_t y = a.labels[i];
    const int64_t g = a.groups != nullptr ? a.groups[i] : 0;
    const bool valid = y >= 0 && y < a.classes && g >= 0 && g < a.num_groups;
    const double w = valid ? double(weight[g]) * upstream * a.scale : std::numeric_limits<double>::quiet_NaN();
    for (int64_t j = 0; j < a.classes; ++j) {
      const double p = std::exp(double(logits[i * a.classes + j]) - double(lse[i]));
      dlogits[i * a.classes + j] = T(w * (p - (j == y ? 1.0 : 0.0)));
    }
  }
}

}  // namespace

void group_cross_entropy_forward_cpu(const GroupCrossEntropyForwardArgs& args) {
  dispatch_cpu_floating(args.dtype, "group_cross_entropy", [&](auto tag) {
    forward_cpu_typed<typename decltype(tag)::type>(args);
  });
}

void group_cross_entropy_backward_cpu(const GroupCrossEntropyBackwardArgs& args) {
  dispatch_cpu_floating(args.dtype, "group_cross_entropy backward", [&](auto tag) {
    backward_cpu_typed<typename decltype(tag)::type>(args);
  });
}

// ---- dispatch + autograd ----

namespace {

const char* mode_name(GroupLoss mode) {
  switch (mode) {
    case GroupLoss::Mean: return "mean";
    case GroupLoss::Weighted: return "weighted";
    case GroupLoss::GroupDRO: return "group_dro";
  }
  return "?";
}

// What the forward leaves for the gradient and the caller.
struct Forward {
  Tensor loss, per_sample_loss, log_sum_exp, group_loss_sum, group_count, sample_weight;
  int64_t num_groups = 1;
};

int64_t resolve_num_groups(const Tensor& groups, const Tensor& q, const GroupCrossEntropyConfig& config) {
  int64_t g = config.num_groups;
  if (q.defined()) {
    FFR_CHECK(q.ndim() == 1, "group weights must be [G], got ", q.str());
    FFR_CHECK(g == 0 || g == q.numel(), "num_groups ", g, " but group weights ", q.str());
    g = q.numel();
  }
  if (g == 0) {
    FFR_CHECK(!groups.defined(), "with group ids and no group weights, set num_groups");
    g = 1;
  }
  FFR_CHECK(g >= 1, "num_groups must be >= 1, got ", g);
  return g;
}

Forward run_forward(const Tensor& logits, const Tensor& labels, const Tensor& groups, const Tensor& q,
                    const GroupCrossEntropyConfig& config) {
  FFR_CHECK(logits.ndim() == 2, "logits must be [N, C], got ", logits.str());
  const int64_t n = logits.size(0), c = logits.size(1);
  FFR_CHECK(c >= 1, "logits need at least one class, got ", logits.str());
  const Device device = logits.device();
  if (device.is_cuda()) {
    FFR_CHECK(logits.dtype() == DType::Float32 || logits.dtype() == DType::BFloat16,
              "logits on CUDA must be float32 or bfloat16, got ", logits.str());
  } else {
    FFR_CHECK(logits.dtype() == DType::Float32 || logits.dtype() == DType::Float64,
              "logits on the CPU must be float32 or float64, got ", logits.str());
  }
  const DType acc = logits.dtype() == DType::Float64 ? DType::Float64 : DType::Float32;
  FFR_CHECK(labels.defined() && labels.dtype() == DType::Int64 && labels.shape() == Shape{n} &&
                labels.device() == device,
            "labels must be int64 [", n, "] on ", device.str(), ", got ", labels.str());
  if (groups.defined()) {
    FFR_CHECK(groups.dtype() == DType::Int64 && groups.shape() == Shape{n} && groups.device() == device,
              "group ids must be int64 [", n, "] on ", device.str(), ", got ", groups.str());
  }
  const bool weighted = config.mode != GroupLoss::Mean;
  FFR_CHECK(!weighted || (groups.defined() && q.defined()), mode_name(config.mode),
            " mode needs group ids and group weights");
  const Tensor weights = weighted ? q : Tensor();
  Forward f;
  f.num_groups = resolve_num_groups(groups, weights, config);
  if (weighted) {
    FFR_CHECK(q.dtype() == acc && q.device() == device, "group weights must be ", dtype_name(acc), " on ",
              device.str(), ", got ", q.str());
  }
  Tensor sizes;
  if (config.mode == GroupLoss::GroupDRO && config.adjustment != 0.0) {
    const Tensor& s = config.group_sizes;
    FFR_CHECK(s.defined() && s.shape() == Shape{f.num_groups} && s.device() == device,
              "the GroupDRO adjustment needs group_sizes [", f.num_groups, "] on ", device.str(), ", got ", s.str());
    sizes = s.dtype() == acc ? s : s.detach().to(acc);
  }

  f.loss = Tensor::empty({}, acc, device);
  f.per_sample_loss = Tensor::empty({n}, acc, device);
  f.log_sum_exp = Tensor::empty({n}, acc, device);
  f.group_loss_sum = Tensor::empty({f.num_groups}, acc, device);
  f.group_count = Tensor::empty({f.num_groups}, DType::Int64, device);
  f.sample_weight = Tensor::empty({f.num_groups}, acc, device);

  GroupCrossEntropyForwardArgs a;
  a.logits = logits.raw_data();
  a.dtype = logits.dtype();
  a.labels = labels.data<int64_t>();
  a.groups = groups.defined() ? groups.data<int64_t>() : nullptr;
  a.rows = n;
  a.classes = c;
  a.num_groups = f.num_groups;
  a.mode = config.mode;
  a.step_size = config.step_size;
  a.adjustment = config.adjustment;
  a.group_weights = weighted ? q.raw_data() : nullptr;
  a.group_sizes = sizes.defined() ? sizes.raw_data() : nullptr;
  a.per_sample_loss = f.per_sample_loss.raw_data();
  a.log_sum_exp = f.log_sum_exp.raw_data();
  a.group_loss_sum = f.group_loss_sum.raw_data();
  a.group_count = f.group_count.data<int64_t>();
  a.loss = f.loss.raw_data();
  a.sample_weight = f.sample_weight.raw_data();
#ifdef FFR_WITH_CUDA
  if (device.is_cuda()) {
    group_cross_entropy_forward_cuda(a);
    return f;
  }
#endif
  group_cross_entropy_forward_cpu(a);
  return f;
}

// dlogits = upstream * scale * w_{g_i} (softmax(x_i) - onehot(y_i)); `upstream` may be undefined (1).
Tensor run_backward(const Tensor& logits, const Tensor& labels, const Tensor& groups, const Tensor& log_sum_exp,
                    const Tensor& sample_weight, const Tensor& upstream, double scale) {
  Tensor dlogits = Tensor::empty(logits.shape(), logits.dtype(), logits.device());
  GroupCrossEntropyBackwardArgs a;
  a.logits = logits.raw_data();
  a.dtype = logits.dtype();
  a.labels = labels.data<int64_t>();
  a.groups = groups.defined() ? groups.data<int64_t>() : nullptr;
  a.rows = logits.size(0);
  a.classes = logits.size(1);
  a.num_groups = sample_weight.numel();
  a.log_sum_exp = log_sum_exp.raw_data();
  a.sample_weight = sample_weight.raw_data();
  a.upstream = upstream.defined() ? upstream.raw_data() : nullptr;
  a.scale = scale;
  a.dlogits = dlogits.raw_data();
#ifdef FFR_WITH_CUDA
  if (logits.is_cuda()) {
    group_cross_entropy_backward_cuda(a);
    return dlogits;
  }
#endif
  group_cross_entropy_backward_cpu(a);
  return dlogits;
}

std::string describe(const Tensor& logits, const Tensor& groups, const Tensor& q, const GroupCrossEntropyConfig& c) {
  return std::string("group_cross_entropy(") + mode_name(c.mode) + ", logits " + logits.str() + ", groups " +
         groups.str() + ", weights " + q.str() + ")";
}

}  // namespace

GroupCrossEntropyResult group_cross_entropy(const Tensor& logits, const Tensor& labels, const Tensor& groups,
                                            const Tensor& group_weights, const GroupCrossEntropyConfig& config) {
  OpScope scope(describe(logits, groups, group_weights, config));
  NvtxRange range("group_cross_entropy");
  Forward f = run_forward(logits, labels, groups, group_weights, config);
  GroupCrossEntropyResult r;
  r.dlogits = run_backward(logits, labels, groups, f.log_sum_exp, f.sample_weight, Tensor(), config.grad_scale);
  r.loss = f.loss;
  r.per_sample_loss = f.per_sample_loss;
  r.group_loss_sum = f.group_loss_sum;
  r.group_count = f.group_count;
  return r;
}

Tensor group_weighted_cross_entropy(const Tensor& logits, const Tensor& labels, const Tensor& groups,
                                    const Tensor& group_weights, const GroupCrossEntropyConfig& config) {
  OpScope scope(describe(logits, groups, group_weights, config));
  NvtxRange range("group_weighted_cross_entropy");
  FFR_CHECK(config.grad_scale == 1.0, "group_weighted_cross_entropy takes its scale from the upstream gradient; "
                                      "config.grad_scale must be 1, got ", config.grad_scale);
  Forward f = run_forward(logits, labels, groups, group_weights, config);
  Tensor loss = f.loss;
  record_op("group_weighted_cross_entropy", loss, {logits},
            [x = logits.detach(), labels, groups, lse = f.log_sum_exp, w = f.sample_weight](const Tensor& gy) {
              FFR_CHECK(gy.dtype() == lse.dtype() && gy.device() == x.device(), "upstream gradient ", gy.str(),
                        " for a loss of ", lse.dtype() == DType::Float64 ? "float64" : "float32", " on ",
                        x.device().str());
              return std::vector<Tensor>{run_backward(x, labels, groups, lse, w, gy, 1.0)};
            });
  return loss;
}

}  // namespace ffr
