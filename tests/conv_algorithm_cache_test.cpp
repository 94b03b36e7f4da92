// The cuDNN algorithm choice: the cache key, the picking rule and the cache (CPU, no cuDNN), and
// on a GPU the timed search and channels-last convolutions against the NCHW path.
#include "kernels/conv_algorithm_cache.h"

#include "engine/error.h"
#include "kernels/permute.h"
#include "tests/testing.h"

#include <atomic>
#include <thread>

namespace ffr {
namespace {

using testing::random_tensor;

Conv2dGeometry resnet_3x3() {
  return conv2d_geometry({8, 64, 56, 56}, {64, 64, 3, 3}, {{1, 1}, {1, 1}, {1, 1}, 1});
}

ConvAlgorithmKey base_key(const Conv2dGeometry& g) {
  return conv_algorithm_key(ConvPass::Forward, 0, DType::Float32, ConvLayout::NCHW, g, Settings{}, true);
}

TEST(ConvAlgorithmKey, EveryInputThatChangesTheChoiceChangesTheKey) {
  const Conv2dGeometry g = resnet_3x3();
  const ConvAlgorithmKey base = base_key(g);
  EXPECT_EQ(base, base_key(g));
  Settings tf32;
  tf32.allow_tf32 = true;
  Settings deterministic;
  deterministic.deterministic = true;
  std::vector<ConvAlgorithmKey> others = {
      conv_algorithm_key(ConvPass::BackwardData, 0, DType::Float32, ConvLayout::NCHW, g, Settings{}, true),
      conv_algorithm_key(ConvPass::BackwardFilter, 0, DType::Float32, ConvLayout::NCHW, g, Settings{}, true),
      conv_algorithm_key(ConvPass::Forward, 1, DType::Float32, ConvLayout::NCHW, g, Settings{}, true),
      conv_algorithm_key(ConvPass::Forward, 0, DType::BFloat16, ConvLayout::NCHW, g, Settings{}, true),
      conv_algorithm_key(ConvPass::Forward, 0, DType::Float32, ConvLayout::NHWC, g, Settings{}, true),
      conv_algorithm_key(ConvPass::Forward, 0, DType::Float32, ConvLayout::NCHW, g, tf32, true),
      conv_algorithm_key(ConvPass::Forward, 0, DType::Float32, ConvLayout::NCHW, g, deterministic, true),
      conv_algorithm_key(ConvPass::Forward, 0, DType::Float32, ConvLayout::NCHW, g, Settings{}, false),
  };
  // Every size and parameter of the geometry, one at a time.
  int64_t Conv2dGeometry::*fields[] = {
      &Conv2dGeometry::batch,         &Conv2dGeometry::in_channels,     &Conv2dGeometry::in_height,
      &Conv2dGeometry::in_width,      &Conv2dGeometry::out_channels,    &Conv2dGeometry::kernel_height,
      &Conv2dGeometry::kernel_width,  &Conv2dGeometry::out_height,      &Conv2dGeometry::out_width,
      &Conv2dGeometry::stride_height, &Conv2dGeometry::stride_width,    &Conv2dGeometry::pad_height,
      &Conv2dGeometry::pad_width,     &Conv2dGeometry::dilation_height, &Conv2dGeometry::dilation_width,
      &Conv2dGeometry::groups};
  for (auto field : fields) {
    Conv2dGeometry changed = g;
    changed.*field += 1;
    others.push_back(base_key(changed));
  }
  for (size_t i = 0; i < others.size(); ++i) {
    EXPECT_FALSE(others[i] == base) << "variant " << i << ": " << others[i].str();
    for (size_t j = 0; j < i; ++j) EXPECT_FALSE(others[i] == others[j]) << i << " vs " << j;
  }
}

TEST(ConvAlgorithmKey, DescribesTheProblem) {
  const std::string s = base_key(resnet_3x3()).str();
  EXPECT_NE(s.find("forward"), std::string::npos) << s;
  EXPECT_NE(s.find("float32"), std::string::npos) << s;
  EXPECT_NE(s.find("NCHW"), std::string::npos) << s;
  EXPECT_NE(s.find("x [8, 64, 56, 56]"), std::string::npos) << s;
  EXPECT_NE(s.find("w [64, 64, 3, 3]"), std::string::npos) << s;
  EXPECT_NE(s.find("timed search"), std::string::npos) << s;
}

ConvCandidate candidate(int algorithm, float ms, bool deterministic = true, size_t workspace = 0, bool ok = true) {
  ConvCandidate c;
  c.algorithm = algorithm;
  c.math = algorithm * 10;
  c.ok = ok;
  c.deterministic = deterministic;
  c.workspace_bytes = workspace;
  c.milliseconds = ms;
  return c;
}

TEST(PickConvAlgorithm, TimedSearchTakesTheFastestUsable) {
  const ConvAlgorithmKey key = base_key(resnet_3x3());
  // Not in time order on purpose; the fastest (algorithm 4) failed, 3 is over the workspace cap.
  const std::vector<ConvCandidate> timed = {candidate(1, 2.0f), candidate(2, 0.9f, false), candidate(3, 0.5f, true, 100),
                                            candidate(4, 0.1f, true, 0, false), candidate(5, 1.5f)};
  const ConvAlgorithmChoice any = pick_conv_algorithm(timed, false, 50, key);
  EXPECT_EQ(any.algorithm, 2);
  EXPECT_EQ(any.math, 20);
  EXPECT_FLOAT_EQ(any.milliseconds, 0.9f);
  // Deterministic: 2 is out, 5 is the fastest left.
  EXPECT_EQ(pick_conv_algorithm(timed, true, 50, key).algorithm, 5);
  // A larger cap lets 3 in, with its workspace.
  const ConvAlgorithmChoice roomy = pick_conv_algorithm(timed, true, 100, key);
  EXPECT_EQ(roomy.algorithm, 3);
  EXPECT_EQ(roomy.workspace_bytes, 100u);
}

TEST(PickConvAlgorithm, HeuristicsTakeTheFirstUsableInRankOrder) {
  const ConvAlgorithmKey key = base_key(resnet_3x3());
  const std::vector<ConvCandidate> ranked = {candidate(7, -1.0f, true, 0, false), candidate(6, -1.0f, false),
                                             candidate(2, -1.0f), candidate(1, -1.0f)};
  EXPECT_EQ(pick_conv_algorithm(ranked, false, 0, key).algorithm, 6);
  EXPECT_EQ(pick_conv_algorithm(ranked, true, 0, key).algorithm, 2);
  EXPECT_LT(pick_conv_algorithm(ranked, true, 0, key).milliseconds, 0.0f);
}

TEST(PickConvAlgorithm, NoUsableCandidateNamesTheProblem) {
  const ConvAlgorithmKey key = base_key(resnet_3x3());
  const std::vector<ConvCandidate> none = {candidate(1, 1.0f, false), candidate(2, 1.0f, true, 0, false)};
  try {
    pick_conv_algorithm(none, true, 0, key);
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("no usable algorithm"), std::string::npos) << what;
    EXPECT_NE(what.find("deterministic"), std::string::npos) << what;
    EXPECT_NE(what.find("x [8, 64, 56, 56]"), std::string::npos) << what;
  }
  EXPECT_THROW(pick_conv_algorithm({}, false, 0, key), Error);
}

TEST(ConvAlgorithmCache, ChoosesOncePerKey) {
  ConvAlgorithmCache cache;
  const Conv2dGeometry g = resnet_3x3();
  const ConvAlgorithmKey a = base_key(g);
  const ConvAlgorithmKey b = conv_algorithm_key(ConvPass::BackwardData, 0, DType::Float32, ConvLayout::NCHW, g,
                                                Settings{}, true);
  int searches = 0;
  auto search = [&](int algorithm) {
    return [&searches, algorithm] {
      ++searches;
      ConvAlgorithmChoice c;
      c.algorithm = algorithm;
      return c;
    };
  };
  EXPECT_FALSE(cache.find(a).has_value());
  EXPECT_EQ(cache.get_or_choose(a, search(3)).algorithm, 3);
  EXPECT_EQ(cache.get_or_choose(a, search(9)).algorithm, 3);  // cached: no second search
  EXPECT_EQ(searches, 1);
  EXPECT_EQ(cache.get_or_choose(b, search(5)).algorithm, 5);
  EXPECT_EQ(searches, 2);
  EXPECT_EQ(cache.size(), 2u);
  ASSERT_TRUE(cache.find(a).has_value());
  EXPECT_EQ(cache.find(a)->algorithm, 3);
  cache.clear();
  EXPECT_EQ(cache.size(), 0u);
}

TEST(ConvAlgorithmCache, ConcurrentSearchesAgreeOnOneChoice) {
  ConvAlgorithmCache cache;
  const ConvAlgorithmKey key = base_key(resnet_3x3());
  std::atomic<int> next{0};
  std::vector<int> seen(8, -1);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      seen[size_t(t)] = cache
                            .get_or_choose(key,
                                           [&] {
                                             ConvAlgorithmChoice c;
                                             c.algorithm = next.fetch_add(1);
                                             return c;
                                           })
                            .algorithm;
    });
  }
  for (auto& thread : threads) thread.join();
  for (int v : seen) EXPECT_EQ(v, seen[0]);  // whoever searched, everyone uses the stored one
  EXPECT_EQ(cache.size(), 1u);
}

TEST(SearchWorkspace, HalvesUntilItFitsAndGivesItBack) {
  Allocator& allocator = cpu_allocator();
  const size_t before = allocator.stats().allocated_bytes;
  allocator.set_limit(before + 5000);
  {
    SearchWorkspace w(allocator, 16384);  // 16384 and 8192 are refused, 4096 fits
    EXPECT_EQ(w.bytes(), 4096u);
    ASSERT_NE(w.data(), nullptr);
    EXPECT_GE(allocator.stats().allocated_bytes, before + 4096);
  }
  EXPECT_EQ(allocator.stats().allocated_bytes, before);
  {
    SearchWorkspace none(allocator, 0);
    EXPECT_EQ(none.bytes(), 0u);
    EXPECT_EQ(none.data(), nullptr);
  }
  allocator.set_limit(0);
}

TEST(CudnnBenchmark, EnvironmentValues) {
  EXPECT_TRUE(parse_cudnn_benchmark(nullptr, true));
  EXPECT_FALSE(parse_cudnn_benchmark("", false));
  EXPECT_TRUE(parse_cudnn_benchmark("1", false));
  EXPECT_FALSE(parse_cudnn_benchmark("0", true));
  try {
    parse_cudnn_benchmark("yes", true);
    FAIL() << "expected an error";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("FFR_CUDNN_BENCHMARK"), std::string::npos) << e.what();
  }
}

TEST(CudnnBenchmark, OverrideWinsAndResets) {
  const bool initial = cudnn_benchmark();
  set_cudnn_benchmark(false);
  EXPECT_FALSE(cudnn_benchmark());
  set_cudnn_benchmark(true);
  EXPECT_TRUE(cudnn_benchmark());
  set_cudnn_benchmark(std::nullopt);
  EXPECT_EQ(cudnn_benchmark(), initial);
}

// ---- on a GPU ----

// Restores the benchmark override on every path.
struct BenchmarkScope {
  explicit BenchmarkScope(bool on) { set_cudnn_benchmark(on); }
  ~BenchmarkScope() { set_cudnn_benchmark(std::nullopt); }
};

// Timed search and heuristics both give the CPU's result, and the timed one is cached under its key.
TEST(ConvAlgorithmCacheCuda, TimedSearchAndHeuristicsMatchCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(31);
  Tensor x = random_tensor({4, 16, 12, 12}, rng, DType::Float32);
  Tensor w = random_tensor({32, 16, 3, 3}, rng, DType::Float32, -0.2, 0.2);
  const Conv2dParams p{{1, 1}, {1, 1}, {1, 1}, 1};
  const Conv2dGeometry g = conv2d_geometry(x.shape(), w.shape(), p);
  for (bool timed : {true, false}) {
    SCOPED_TRACE(timed ? "timed search" : "heuristics");
    BenchmarkScope scope(timed);
    testing::expect_cuda_matches_cpu([p](const auto& in) { return conv2d(in[0], in[1], Tensor(), p); }, {x, w},
                                     {1e-4, 1e-4, true});
    for (ConvPass pass : {ConvPass::Forward, ConvPass::BackwardData, ConvPass::BackwardFilter}) {
      const ConvAlgorithmKey key = conv_algorithm_key(pass, 0, DType::Float32, ConvLayout::NCHW, g, settings(), timed);
      const std::optional<ConvAlgorithmChoice> choice = conv_algorithm_cache().find(key);
      ASSERT_TRUE(choice.has_value()) << key.str();
      EXPECT_EQ(choice->milliseconds >= 0.0f, timed) << key.str();
    }
  }
}

// NCHW [a, b, c, d] -> NHWC [a, c, d, b] (activations and, as KRSC, weights) and back.
Tensor to_nhwc(const Tensor& t) { return permute(t, {0, 2, 3, 1}); }
Tensor from_nhwc(const Tensor& t) { return permute(t, {0, 3, 1, 2}); }

// The three passes on channels-last buffers give the NCHW passes' results, float32 and bf16,
// timed search and heuristics.
TEST(ConvAlgorithmCacheCuda, ChannelsLastMatchesNchw) {
  FFR_REQUIRE_CUDA();
#ifndef FFR_WITH_CUDA
  GTEST_SKIP() << "built without CUDA";  // the launchers below exist in CUDA builds only
#else
  Rng rng(32);
  const Conv2dParams p{{2, 2}, {1, 1}, {1, 1}, 1};
  Tensor x = random_tensor({4, 16, 15, 15}, rng, DType::Float32).cuda();
  Tensor w = random_tensor({32, 16, 3, 3}, rng, DType::Float32, -0.2, 0.2).cuda();
  const Conv2dGeometry g = conv2d_geometry(x.shape(), w.shape(), p);
  Tensor dy = random_tensor(g.output_shape(), rng, DType::Float32).cuda();
  for (DType dtype : {DType::Float32, DType::BFloat16}) {
    for (bool timed : {true, false}) {
      SCOPED_TRACE(std::string(dtype_name(dtype)) + (timed ? ", timed search" : ", heuristics"));
      BenchmarkScope scope(timed);
      const Tensor xd = x.to(dtype), wd = w.to(dtype), dyd = dy.to(dtype);
      Tensor y = Tensor::empty(g.output_shape(), dtype, x.device());
      Tensor dx = Tensor::empty(g.input_shape(), dtype, x.device());
      Tensor dw = Tensor::empty(g.weight_shape(), dtype, x.device());
      conv2d_forward_cuda(xd.raw_data(), wd.raw_data(), y.raw_data(), dtype, g);
      conv2d_backward_input_cuda(dyd.raw_data(), wd.raw_data(), dx.raw_data(), dtype, g);
      conv2d_backward_weight_cuda(dyd.raw_data(), xd.raw_data(), dw.raw_data(), dtype, g);

      const Tensor x_cl = to_nhwc(xd), w_cl = to_nhwc(wd), dy_cl = to_nhwc(dyd);
      Tensor y_cl = Tensor::empty(to_nhwc(y).shape(), dtype, x.device());
      Tensor dx_cl = Tensor::empty(x_cl.shape(), dtype, x.device());
      Tensor dw_cl = Tensor::empty(w_cl.shape(), dtype, x.device());
      conv2d_forward_cuda(x_cl.raw_data(), w_cl.raw_data(), y_cl.raw_data(), dtype, g, ConvLayout::NHWC);
      conv2d_backward_input_cuda(dy_cl.raw_data(), w_cl.raw_data(), dx_cl.raw_data(), dtype, g, ConvLayout::NHWC);
      conv2d_backward_weight_cuda(dy_cl.raw_data(), x_cl.raw_data(), dw_cl.raw_data(), dtype, g, ConvLayout::NHWC);

      const double tol = dtype == DType::BFloat16 ? 2e-2 : 1e-4;
      auto f32 = [](const Tensor& t) { return t.to(DType::Float32).cpu(); };
      testing::expect_close(f32(from_nhwc(y_cl)), f32(y), tol, tol, "forward");
      testing::expect_close(f32(from_nhwc(dx_cl)), f32(dx), tol, tol, "backward data");
      testing::expect_close(f32(from_nhwc(dw_cl)), f32(dw), tol, tol * 10, "backward filter");
    }
  }
#endif
}

}  // namespace
}  // namespace ffr
