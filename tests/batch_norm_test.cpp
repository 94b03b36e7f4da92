#include "kernels/batch_norm.h"
#include "layers/conv_bn.h"

#include "engine/error.h"
#include "tests/testing.h"

#include <cmath>

namespace ffr {
namespace {

using testing::expect_close;
using testing::expect_cuda_matches_cpu;
using testing::expect_gradients_match;
using testing::random_tensor;

// Running stats of C channels on x's device and in the per-channel dtype (float32 on CUDA).
struct RunningStats {
  Tensor mean, var;
  RunningStats(int64_t channels, const Tensor& x, Rng& rng) {
    const DType dtype = x.is_cuda() ? DType::Float32 : x.dtype();
    mean = Tensor::uniform({channels}, -0.5, 0.5, rng, dtype, x.device());
    var = Tensor::uniform({channels}, 0.5, 2.0, rng, dtype, x.device());
  }
};

TEST(BatchNorm, TrainingGradientsMatchFiniteDifferences) {
  Rng rng(31);
  for (const Shape& shape : {Shape{3, 4, 2, 3}, Shape{5, 3}, Shape{2, 2, 5}}) {
    SCOPED_TRACE(shape_str(shape));
    const int64_t C = shape[1];
    Tensor x = random_tensor(shape, rng), w = random_tensor({C}, rng, DType::Float64, 0.5, 1.5);
    Tensor b = random_tensor({C}, rng);
    RunningStats running(C, x, rng);  // updated by every call; the output does not depend on it
    expect_gradients_match(
        [&](const auto& in) { return batch_norm(in[0], in[1], in[2], running.mean, running.var, true); }, {x, w, b});
    // Affine off.
    expect_gradients_match(
        [&](const auto& in) { return batch_norm(in[0], Tensor(), Tensor(), running.mean, running.var, true); }, {x});
    // Frozen affine (FFR stage 2): weight and bias are constants, only x gets a gradient.
    expect_gradients_match(
        [&](const auto& in) { return batch_norm(in[0], w, b, running.mean, running.var, true); }, {x});
  }
}

TEST(BatchNorm, EvalGradientsMatchFiniteDifferences) {
  Rng rng(32);
  Tensor x = random_tensor({3, 4, 2, 3}, rng), w = random_tensor({4}, rng), b = random_tensor({4}, rng);
  RunningStats running(4, x, rng);
  expect_gradients_match(
      [&](const auto& in) { return batch_norm(in[0], in[1], in[2], running.mean, running.var, false); }, {x, w, b});
  expect_gradients_match([&](const auto& in) { return batch_norm(in[0], w, b, running.mean, running.var, false); },
                         {x});
}

TEST(BatchNorm, NoRunningStatsUsesBatchStatistics) {
  Rng rng(33);
  Tensor x = random_tensor({4, 3, 2, 2}, rng), w = random_tensor({3}, rng), b = random_tensor({3}, rng);
  Tensor none_mean, none_var;
  expect_gradients_match([&](const auto& in) { return batch_norm(in[0], in[1], in[2], none_mean, none_var, false); },
                         {x, w, b});
  RunningStats running(3, x, rng);
  expect_close(batch_norm(x, w, b, none_mean, none_var, false), batch_norm(x, w, b, running.mean, running.var, true),
               1e-12, 1e-12, "eval without running stats == training");
}

// x [2, 2, 1, 2]: channel 0 holds {1, 2, 3, 4}, channel 1 holds {0, 4, 8, 0}.
Tensor hand_input() {
  return Tensor::from_vector(std::vector<double>{1, 2, 0, 4, 3, 4, 8, 0}, {2, 2, 1, 2});
}

TEST(BatchNorm, TrainingValuesAndRunningStatsMatchHandComputation) {
  Tensor x = hand_input();
  Tensor w = Tensor::from_vector(std::vector<double>{2, 0.5}, {2});
  Tensor b = Tensor::from_vector(std::vector<double>{1, -1}, {2});
  Tensor running_mean = Tensor::from_vector(std::vector<double>{0, 1}, {2});
  Tensor running_var = Tensor::from_vector(std::vector<double>{1, 2}, {2});
  const double eps = 1e-5;
  Tensor y = batch_norm(x, w, b, running_mean, running_var, true, 0.1, eps);
  // Channel 0: mean 2.5, biased var (2.25 + 0.25 + 0.25 + 2.25) / 4 = 1.25, unbiased 5/3.
  // Channel 1: mean 3, biased var (9 + 1 + 25 + 9) / 4 = 11, unbiased 44/3.
  const double s0 = 2 / std::sqrt(1.25 + eps), s1 = 0.5 / std::sqrt(11 + eps);
  const std::vector<double> expected = {(1 - 2.5) * s0 + 1, (2 - 2.5) * s0 + 1, (0 - 3) * s1 - 1, (4 - 3) * s1 - 1,
                                        (3 - 2.5) * s0 + 1, (4 - 2.5) * s0 + 1, (8 - 3) * s1 - 1, (0 - 3) * s1 - 1};
  expect_close(y, Tensor::from_vector(expected, {2, 2, 1, 2}), 1e-12, 1e-12, "y");
  // running = 0.9 running + 0.1 batch, with the unbiased variance.
  expect_close(running_mean, Tensor::from_vector(std::vector<double>{0.25, 1.2}, {2}), 1e-12, 1e-12, "running_mean");
  expect_close(running_var, Tensor::from_vector(std::vector<double>{0.9 + 0.1 * 5 / 3, 1.8 + 0.1 * 44 / 3}, {2}),
               1e-12, 1e-12, "running_var");
  // A second step compounds: momentum 0.5 moves halfway again.
  batch_norm(x, w, b, running_mean, running_var, true, 0.5, eps);
  expect_close(running_mean, Tensor::from_vector(std::vector<double>{0.5 * 0.25 + 0.5 * 2.5, 0.5 * 1.2 + 0.5 * 3}, {2}),
               1e-12, 1e-12, "running_mean after two steps");
}

TEST(BatchNorm, EvalValuesUseRunningStatsAndLeaveThemAlone) {
  Tensor x = hand_input();
  Tensor running_mean = Tensor::from_vector(std::vector<double>{0.5, -1}, {2});
  Tensor running_var = Tensor::from_vector(std::vector<double>{4, 0.25}, {2});
  Tensor y = batch_norm(x, Tensor(), Tensor(), running_mean, running_var, false, 0.1, 1e-5);
  const double s0 = 1 / std::sqrt(4 + 1e-5), s1 = 1 / std::sqrt(0.25 + 1e-5);
  const std::vector<double> expected = {0.5 * s0, 1.5 * s0, 1 * s1, 5 * s1, 2.5 * s0, 3.5 * s0, 9 * s1, 1 * s1};
  expect_close(y, Tensor::from_vector(expected, {2, 2, 1, 2}), 1e-12, 1e-12, "y");
  EXPECT_EQ(running_mean.to_vector<double>(), (std::vector<double>{0.5, -1}));
  EXPECT_EQ(running_var.to_vector<double>(), (std::vector<double>{4, 0.25}));
}

TEST(BatchNorm, FrozenAffineGivesNoParameterGradient) {
  Rng rng(34);
  Tensor x = random_tensor({4, 3, 2, 2}, rng).set_requires_grad(true);
  Tensor w = random_tensor({3}, rng), b = random_tensor({3}, rng);  // requires_grad false
  Tensor rm, rv;
  batch_norm(x, w, b, rm, rv, true).backward(Tensor::ones({4, 3, 2, 2}, DType::Float64));
  EXPECT_TRUE(x.grad().defined());
  EXPECT_FALSE(w.grad().defined());
  EXPECT_FALSE(b.grad().defined());
}

// num_batches_tracked is counted on the host and written once, when the state is read, instead
// of by a fill launch per layer per training step; saving and loading see the true count.
TEST(BatchNorm, LayerCounterIsWrittenWhenTheStateIsRead) {
  Rng rng(61);
  BatchNorm2d bn(3);
  const Tensor held = bn.num_batches_tracked;  // the buffer, read without going through the state
  Tensor x = random_tensor({4, 3, 2, 2}, rng, DType::Float32);
  for (int i = 0; i < 3; ++i) bn.forward(x);
  EXPECT_EQ(held.item(), 0.0) << "a per-step write of the counter";
  EXPECT_EQ(bn.batches_tracked(), 3);
  const NamedTensors state = bn.state_dict();
  double saved = -1;
  for (const auto& [name, t] : state) {
    if (name == "num_batches_tracked") saved = t.item();
  }
  EXPECT_EQ(saved, 3.0);
  EXPECT_EQ(held.item(), 3.0);
  bn.eval();
  bn.forward(x);  // eval: not counted
  BatchNorm2d resumed(3);
  resumed.load_state_dict(bn.state_dict());
  EXPECT_EQ(resumed.batches_tracked(), 3);
  resumed.forward(x);
  resumed.forward(x);
  EXPECT_EQ(resumed.named_buffers().back().second.item(), 5.0);
}

TEST(BatchNorm, BadInputsThrow) {
  Tensor x = Tensor::zeros({2, 3, 2, 2});
  Tensor rm = Tensor::zeros({3}), rv = Tensor::ones({3}), none;
  EXPECT_THROW(batch_norm(Tensor::zeros({3}), Tensor(), Tensor(), rm, rv, true), Error);          // 1-D x
  EXPECT_THROW(batch_norm(x, Tensor::ones({4}), Tensor(), rm, rv, true), Error);                 // weight size
  EXPECT_THROW(batch_norm(x, Tensor(), Tensor::ones({2}), rm, rv, true), Error);                 // bias size
  EXPECT_THROW(batch_norm(x, Tensor::ones({3}, DType::Float64), Tensor(), rm, rv, true), Error);  // dtype
  EXPECT_THROW(batch_norm(x, Tensor(), Tensor(), rm, none, true), Error);                         // half the stats
  Tensor rm5 = Tensor::zeros({5}), rv5 = Tensor::ones({5});
  EXPECT_THROW(batch_norm(x, Tensor(), Tensor(), rm5, rv5, true), Error);                         // stats size
  // One value per channel has no variance to normalise by (PyTorch refuses it too).
  EXPECT_THROW(batch_norm(Tensor::zeros({1, 3}), Tensor(), Tensor(), rm, rv, true), Error);
  EXPECT_NO_THROW(batch_norm(Tensor::zeros({1, 3}), Tensor(), Tensor(), rm, rv, false));
}

// ---- CUDA against the CPU reference ----

const std::vector<Shape> kCudaShapes = {
    {4, 8, 5, 7},     // small planes: several samples per block stride
    {8, 16, 40, 40},  // a channel split across several blocks
    {16, 64, 7, 7},   // ResNet's last stage: S < block size
    {64, 32},         // BatchNorm1d
    {2, 3, 1, 1},     // two values per channel
};

TEST(BatchNormCuda, TrainingMatchesCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(41);
  for (const Shape& shape : kCudaShapes) {
    SCOPED_TRACE(shape_str(shape));
    const int64_t C = shape[1];
    Tensor x = random_tensor(shape, rng, DType::Float32, -2, 3), w = random_tensor({C}, rng, DType::Float32);
    Tensor b = random_tensor({C}, rng, DType::Float32);
    auto f = [C](const auto& in) {
      Tensor rm = Tensor::zeros({C}, DType::Float32, in[0].device());
      Tensor rv = Tensor::ones({C}, DType::Float32, in[0].device());
      return batch_norm(in[0], in[1], in[2], rm, rv, true);
    };
    expect_cuda_matches_cpu(f, {x, w, b}, {1e-4, 1e-4, true});
  }
}

TEST(BatchNormCuda, RunningStatsMatchCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(42);
  for (const Shape& shape : kCudaShapes) {
    SCOPED_TRACE(shape_str(shape));
    const int64_t C = shape[1];
    Tensor x = random_tensor(shape, rng, DType::Float32, -2, 3);
    RunningStats cpu(C, x, rng);
    Tensor gpu_mean = cpu.mean.cuda(), gpu_var = cpu.var.cuda();
    batch_norm(x, Tensor(), Tensor(), cpu.mean, cpu.var, true, 0.3);
    batch_norm(x.cuda(), Tensor(), Tensor(), gpu_mean, gpu_var, true, 0.3);
    expect_close(gpu_mean.cpu(), cpu.mean, 1e-5, 1e-6, "running_mean");
    expect_close(gpu_var.cpu(), cpu.var, 1e-5, 1e-6, "running_var");
  }
}

TEST(BatchNormCuda, EvalMatchesCpu) {
  FFR_REQUIRE_CUDA();
  Rng rng(43);
  Tensor x = random_tensor({4, 8, 6, 6}, rng, DType::Float32), w = random_tensor({8}, rng, DType::Float32);
  Tensor b = random_tensor({8}, rng, DType::Float32);
  RunningStats running(8, x, rng);
  auto f = [&](const auto& in) {
    Tensor rm = running.mean.to(in[0].device()), rv = running.var.to(in[0].device());
    return batch_norm(in[0], in[1], in[2], rm, rv, false);
  };
  expect_cuda_matches_cpu(f, {x, w, b}, {1e-5, 1e-5, true});
}

TEST(BatchNormCuda, BFloat16InputWithFloat32Statistics) {
  FFR_REQUIRE_CUDA();
  Rng rng(44);
  for (const bool training : {true, false}) {
    SCOPED_TRACE(training ? "training" : "eval");
    Tensor x = random_tensor({8, 16, 9, 9}, rng, DType::Float32).to(DType::BFloat16).to(DType::Float32);
    Tensor w = random_tensor({16}, rng, DType::Float32), b = random_tensor({16}, rng, DType::Float32);
    RunningStats running(16, x, rng);
    auto f = [&](const auto& in) {
      Tensor rm = running.mean.to(in[0].device()), rv = running.var.to(in[0].device());
      Tensor input = in[0].is_cuda() ? in[0].to(DType::BFloat16) : in[0];
      return batch_norm(input, in[1], in[2], rm, rv, training).to(DType::Float32);
    };
    expect_cuda_matches_cpu(f, {x, w, b}, {2e-2, 5e-2, true});
  }
}

TEST(BatchNormCuda, BitIdenticalRunToRun) {
  FFR_REQUIRE_CUDA();
  Rng rng(45);
  Tensor x = random_tensor({32, 8, 32, 32}, rng, DType::Float32).cuda().set_requires_grad(true);
  Tensor w = random_tensor({8}, rng, DType::Float32).cuda().set_requires_grad(true);
  Tensor gy = random_tensor(x.shape(), rng, DType::Float32).cuda();
  Tensor rm, rv;
  std::vector<float> first_y, first_dx, first_dw;
  for (int i = 0; i < 3; ++i) {
    x.zero_grad();
    w.zero_grad();
    Tensor y = batch_norm(x, w, Tensor(), rm, rv, true);
    y.backward(gy);
    if (i == 0) {
      first_y = y.to_vector<float>();
      first_dx = x.grad().to_vector<float>();
      first_dw = w.grad().to_vector<float>();
      continue;
    }
    EXPECT_EQ(y.to_vector<float>(), first_y);
    EXPECT_EQ(x.grad().to_vector<float>(), first_dx);
    EXPECT_EQ(w.grad().to_vector<float>(), first_dw);
  }
}

TEST(BatchNormCuda, StatisticsMustBeFloat32) {
  FFR_REQUIRE_CUDA();
  Tensor x = Tensor::zeros({2, 3, 2, 2}, DType::BFloat16, Device::cuda());
  Tensor rm = Tensor::zeros({3}, DType::BFloat16, Device::cuda());
  Tensor rv = Tensor::ones({3}, DType::BFloat16, Device::cuda());
  EXPECT_THROW(batch_norm(x, Tensor(), Tensor(), rm, rv, true), Error);
}

}  // namespace
}  // namespace ffr
