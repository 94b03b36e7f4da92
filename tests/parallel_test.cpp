// engine/parallel.h: coverage and chunking of parallel_for, reductions bit-identical on any
// thread count, and every parallelised CPU kernel bit-identical between 1 and several threads
// (outputs and gradients, float32 and float64, shapes big enough to take the parallel paths).
#include "engine/parallel.h"

#include "engine/autograd.h"
#include "engine/rng.h"
#include "kernels/activation.h"
#include "kernels/attention.h"
#include "kernels/batch_norm.h"
#include "kernels/bias.h"
#include "kernels/conv2d.h"
#include "kernels/cross_entropy.h"
#include "kernels/elementwise.h"
#include "kernels/fused_adam.h"
#include "kernels/layer_norm.h"
#include "kernels/permute.h"
#include "kernels/pooling.h"
#include "kernels/reduce.h"
#include "kernels/softmax.h"
#include "tests/testing.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <functional>
#include <mutex>
#include <set>
#include <utility>
#include <vector>

namespace ffr {
namespace {

// Restores the thread count a test changed.
class ThreadsScope {
 public:
  explicit ThreadsScope(int threads) : saved_(compute_threads()) { set_compute_threads(threads); }
  ~ThreadsScope() { set_compute_threads(saved_); }

 private:
  int saved_;
};

TEST(Parallel, DefaultIsTheMachinesCores) {
  EXPECT_GE(machine_cores(), 1);
  ThreadsScope scope(3);
  EXPECT_EQ(compute_threads(), 3);
  set_compute_threads(0);
  EXPECT_EQ(compute_threads(), machine_cores());
}

TEST(Parallel, ForCoversEveryIndexOnceInRangesOfAtLeastTheGrain) {
  for (int threads : {1, 2, 4, 7}) {
    ThreadsScope scope(threads);
    for (int64_t n : {0, 1, 5, 99, 100, 1000, 4097}) {
      for (int64_t grain : {1, 10, 64, 5000}) {
        std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
        std::mutex mutex;
        std::vector<std::pair<int64_t, int64_t>> ranges;
        parallel_for(3, 3 + n, grain, [&](int64_t b, int64_t e) {
          for (int64_t i = b; i < e; ++i) hits[size_t(i - 3)]++;
          std::lock_guard<std::mutex> lock(mutex);
          ranges.emplace_back(b, e);
        });
        for (int64_t i = 0; i < n; ++i) ASSERT_EQ(hits[size_t(i)].load(), 1) << "n " << n << " grain " << grain;
        if (n == 0) EXPECT_TRUE(ranges.empty());
        for (auto [b, e] : ranges) {
          EXPECT_LT(b, e);
          if (ranges.size() > 1) EXPECT_GE(e - b, grain) << "n " << n << " grain " << grain << " threads " << threads;
        }
        if (n < 2 * grain) EXPECT_LE(ranges.size(), 1u) << "a small range runs serially";
      }
    }
  }
}

TEST(Parallel, NestedLoopsRunTheInnerOneOnTheCallingThread) {
  ThreadsScope scope(4);
  std::atomic<int64_t> total{0};
  parallel_for(0, 8, 1, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i)
      parallel_for(0, 1000, 1, [&](int64_t ib, int64_t ie) { total += ie - ib; });
  });
  EXPECT_EQ(total.load(), 8000);
}

TEST(Parallel, SumIsBitIdenticalOnAnyThreadCount) {
  Rng rng(3);
  std::vector<double> values(1000003);
  for (double& v : values) v = rng.uniform() * 1e6 - 5e5 + 1e-7 * rng.uniform();
  auto chunk_sum = [&](int64_t b, int64_t e) {
    double s = 0.0;
    for (int64_t i = b; i < e; ++i) s += values[size_t(i)];
    return s;
  };
  std::vector<double> sums;
  for (int threads : {1, 2, 4, 3}) {
    ThreadsScope scope(threads);
    sums.push_back(parallel_sum<double>(0, int64_t(values.size()), 4096, chunk_sum));
  }
  for (double s : sums) EXPECT_EQ(std::memcmp(&s, &sums[0], sizeof s), 0) << s << " vs " << sums[0];
  // The chunks: 4096 each, added in order.
  double expected = 0.0;
  for (int64_t b = 0; b < int64_t(values.size()); b += 4096)
    expected += chunk_sum(b, std::min<int64_t>(b + 4096, int64_t(values.size())));
  EXPECT_EQ(sums[0], expected);
  // Other combines, and an empty range.
  ThreadsScope scope(4);
  const double max = parallel_reduce<double>(0, int64_t(values.size()), 1000, -INFINITY,
      [&](int64_t b, int64_t e) { double m = -INFINITY; for (int64_t i = b; i < e; ++i) m = std::max(m, values[size_t(i)]); return m; },
      [](double a, double b) { return std::max(a, b); });
  EXPECT_EQ(max, *std::max_element(values.begin(), values.end()));
  EXPECT_EQ(parallel_sum<double>(5, 5, 10, chunk_sum), 0.0);
}

// ---- every parallelised kernel: the same bits on 1 and on several threads ----

using Op = std::function<Tensor(const std::vector<Tensor>&)>;

// The output and the floating inputs' gradients of sum(op(inputs) * w), as bytes.
std::vector<std::vector<char>> run_with_threads(const Op& op, const std::vector<Tensor>& inputs, int threads) {
  ThreadsScope scope(threads);
  std::vector<Tensor> leaves;
  for (const Tensor& t : inputs) {
    Tensor leaf = t.clone();
    if (is_floating(t.dtype())) leaf.set_requires_grad(true);
    leaves.push_back(leaf);
  }
  Tensor out = op(leaves);
  Rng rng(99);
  const Tensor w = testing::random_tensor(out.shape(), rng, out.dtype());
  std::vector<std::vector<char>> bytes;
  auto keep = [&](const Tensor& t) {
    const char* p = static_cast<const char*>(t.raw_data());
    bytes.emplace_back(p, p + t.nbytes());
  };
  keep(out);
  if (out.requires_grad()) {
    sum(mul(out, w)).backward();
    for (const Tensor& leaf : leaves)
      if (leaf.requires_grad()) keep(leaf.grad());
  }
  return bytes;
}

void expect_same_bits_on_any_thread_count(const char* what, const Op& op, const std::vector<Shape>& shapes,
                                          const std::vector<Tensor>& extra = {},
                                          std::vector<DType> dtypes = {DType::Float32, DType::Float64}) {
  for (DType dtype : dtypes) {
    Rng rng(7);
    std::vector<Tensor> inputs;
    for (const Shape& s : shapes) inputs.push_back(testing::random_tensor(s, rng, dtype));
    for (const Tensor& t : extra) inputs.push_back(t);
    const auto one = run_with_threads(op, inputs, 1);
    for (int threads : {2, 4}) {
      const auto many = run_with_threads(op, inputs, threads);
      ASSERT_EQ(one.size(), many.size());
      for (size_t i = 0; i < one.size(); ++i)
        EXPECT_TRUE(one[i] == many[i]) << what << " (" << dtype_name(dtype) << "): tensor " << i
                                       << " (0: output, then gradients) differs between 1 and " << threads << " threads";
    }
  }
}

TEST(ParallelKernels, ElementwiseAndBroadcast) {
  expect_same_bits_on_any_thread_count("add", [](auto& in) { return add(in[0], in[1]); }, {{300, 400}, {300, 400}});
  expect_same_bits_on_any_thread_count("mul broadcast", [](auto& in) { return mul(in[0], in[1]); },
                                       {{8, 64, 20, 20}, {64, 1, 1}});
  expect_same_bits_on_any_thread_count("div broadcast rows", [](auto& in) { return div(in[0], add_scalar(in[1], 3.0)); },
                                       {{500, 300}, {500, 1}});
  expect_same_bits_on_any_thread_count("exp", [](auto& in) { return exp(in[0]); }, {{100000}});
}

TEST(ParallelKernels, Activations) {
  expect_same_bits_on_any_thread_count("relu", [](auto& in) { return relu(in[0]); }, {{8, 64, 30, 30}});
  expect_same_bits_on_any_thread_count("gelu", [](auto& in) { return gelu(in[0]); }, {{200, 768}});
}

TEST(ParallelKernels, BatchNorm) {
  for (bool training : {true, false}) {
    expect_same_bits_on_any_thread_count(
        "batch_norm",
        [training](auto& in) {
          Tensor rm = Tensor::zeros({64}, in[0].dtype()), rv = Tensor::ones({64}, in[0].dtype());
          return batch_norm(in[0], in[1], in[2], rm, rv, training, 0.1, 1e-5);
        },
        {{6, 64, 24, 24}, {64}, {64}});
  }
}

TEST(ParallelKernels, Pooling) {
  expect_same_bits_on_any_thread_count("max_pool2d", [](auto& in) { return max_pool2d(in[0], {3, 3}, {2, 2}, {1, 1}); },
                                       {{4, 64, 28, 28}});
  expect_same_bits_on_any_thread_count("avg_pool2d", [](auto& in) { return avg_pool2d(in[0], {3, 3}, {2, 2}, {1, 1}); },
                                       {{4, 64, 28, 28}});
  expect_same_bits_on_any_thread_count("global_avg_pool2d", [](auto& in) { return global_avg_pool2d(in[0]); },
                                       {{16, 256, 7, 7}});
}

TEST(ParallelKernels, SoftmaxLayerNormCrossEntropy) {
  expect_same_bits_on_any_thread_count("softmax", [](auto& in) { return softmax(in[0], -1); }, {{400, 200}});
  expect_same_bits_on_any_thread_count("log_softmax inner", [](auto& in) { return log_softmax(in[0], 1); },
                                       {{20, 50, 100}});
  expect_same_bits_on_any_thread_count("layer_norm", [](auto& in) { return layer_norm(in[0], in[1], in[2]); },
                                       {{16, 50, 768}, {768}, {768}});
  std::vector<int64_t> labels(700);
  for (size_t i = 0; i < labels.size(); ++i) labels[i] = int64_t(i * 7 % 100);
  expect_same_bits_on_any_thread_count("cross_entropy", [](auto& in) { return cross_entropy(in[0], in[1]); },
                                       {{700, 100}}, {Tensor::from_vector(labels, {700}, DType::Int64)});
}

TEST(ParallelKernels, ReduceBiasPermute) {
  expect_same_bits_on_any_thread_count("sum over rows", [](auto& in) { return sum(in[0], {0}); }, {{3000, 64}});
  expect_same_bits_on_any_thread_count("sum all", [](auto& in) { return sum(in[0]); }, {{200000}});
  expect_same_bits_on_any_thread_count("mean inner", [](auto& in) { return mean(in[0], {1}); }, {{64, 3000}});
  expect_same_bits_on_any_thread_count("add_bias", [](auto& in) { return add_bias(in[0], in[1]); },
                                       {{800, 768}, {768}});
  expect_same_bits_on_any_thread_count("column_sum", [](auto& in) { return column_sum(in[0]); }, {{800, 300}});
  expect_same_bits_on_any_thread_count("permute", [](auto& in) { return permute(in[0], {0, 2, 1, 3}); },
                                       {{8, 50, 12, 64}});
}

TEST(ParallelKernels, AttentionAndConvolution) {
  expect_same_bits_on_any_thread_count(
      "attention", [](auto& in) { return scaled_dot_product_attention(in[0], in[1], in[2]); },
      {{2, 12, 50, 64}, {2, 12, 50, 64}, {2, 12, 50, 64}});
  Conv2dParams p;
  p.stride = {2, 2};
  p.padding = {1, 1};
  // float64 only: OpenBLAS's threaded sgemm does not give the same bits on 1 and 2 threads
  // (dgemm does), so a float32 convolution differs in the last bits; im2col/col2im do not.
  expect_same_bits_on_any_thread_count("conv2d 3x3", [p](auto& in) { return conv2d(in[0], in[1], Tensor(), p); },
                                       {{2, 32, 28, 28}, {48, 32, 3, 3}}, {}, {DType::Float64});
}

TEST(ParallelKernels, FusedAdam) {
  for (DType dtype : {DType::Float32, DType::Float64}) {
    std::vector<std::vector<char>> results;
    for (int threads : {1, 4}) {
      ThreadsScope scope(threads);
      Rng rng(11);
      std::vector<AdamTensors> tensors;
      for (int64_t n : {int64_t(300000), int64_t(17), int64_t(70000)}) {
        AdamTensors t;
        t.param = testing::random_tensor({n}, rng, dtype);
        t.grad = testing::random_tensor({n}, rng, dtype);
        t.exp_avg = testing::random_tensor({n}, rng, dtype, 0.0, 0.1);
        t.exp_avg_sq = testing::random_tensor({n}, rng, dtype, 0.0, 0.1);
        tensors.push_back(t);
      }
      FusedAdamPlan plan(tensors);
      AdamHyperParameters hyper;
      for (int64_t step = 1; step <= 3; ++step) fused_adam_step(plan, hyper, step);
      std::vector<char> bytes;
      for (const AdamTensors& t : tensors)
        for (const Tensor* x : {&t.param, &t.exp_avg, &t.exp_avg_sq}) {
          const char* p = static_cast<const char*>(x->raw_data());
          bytes.insert(bytes.end(), p, p + x->nbytes());
        }
      results.push_back(bytes);
    }
    EXPECT_TRUE(results[0] == results[1]) << "fused_adam " << dtype_name(dtype);
  }
}

}  // namespace
}  // namespace ffr
