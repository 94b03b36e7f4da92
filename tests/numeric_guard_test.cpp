#include "ffr/numeric_guard.h"
#include "engine/error.h"
#include "optim/adam.h"
#include "tests/testing.h"

#include <cstring>
#include <limits>

namespace ffr {
namespace {

using testing::random_tensor;

const float kNaN = std::numeric_limits<float>::quiet_NaN();
const float kInf = std::numeric_limits<float>::infinity();

struct Grads {
  Tensor loss;
  std::vector<Tensor> grads;
  std::vector<Tensor> all() const {
    std::vector<Tensor> out = {loss};
    out.insert(out.end(), grads.begin(), grads.end());
    return out;
  }
};

Grads random_grads(Rng& rng, Device device = Device::cpu()) {
  Grads g;
  g.loss = random_tensor({}, rng, DType::Float32, 0.5, 2.0).to(device);
  for (const Shape& s : std::vector<Shape>{{8, 3}, {3}, {70000}, {10}})
    g.grads.push_back(random_tensor(s, rng, DType::Float32, -2.0, 2.0).to(device));
  return g;
}

const std::vector<std::string> kNames = {"loss", "fc1.weight.grad", "fc1.bias.grad", "fc2.weight.grad",
                                         "fc2.bias.grad"};

TEST(NumericGuard, CleanRunReportsNothing) {
  Rng rng(41);
  NumericGuard guard(kNames, Device::cpu());
  EXPECT_FALSE(guard.poll().has_value());  // before any check
  EXPECT_FALSE(guard.wait().has_value());
  Grads g = random_grads(rng);
  for (int64_t step = 0; step < 5; ++step) {
    guard.check(g.all(), step);
    EXPECT_FALSE(guard.poll().has_value());
  }
  EXPECT_FALSE(guard.wait().has_value());
  EXPECT_EQ(guard.status().data<int64_t>()[0], kNoNonFinite);
}

TEST(NumericGuard, NamesTheFirstStepAndTheFirstTensor) {
  Rng rng(42);
  NumericGuard guard(kNames, Device::cpu());
  Grads g = random_grads(rng);
  for (int64_t step = 10; step < 20; ++step) {
    if (step == 13) {
      g.grads[2].data<float>()[65537] = kInf;  // fc2.weight.grad, in its second chunk
      g.grads[3].data<float>()[9] = kNaN;      // fc2.bias.grad: later in the list, not reported
    }
    if (step == 15) g.loss.data<float>()[0] = kNaN;  // a later step: the first one stays
    guard.check(g.all(), step);
    const std::optional<NonFiniteFinding> f = guard.poll();
    ASSERT_EQ(f.has_value(), step >= 13) << "step " << step;
    if (!f) continue;
    EXPECT_EQ(f->step, 13);
    EXPECT_EQ(f->tensor_index, 3);
    EXPECT_EQ(f->tensor_name, "fc2.weight.grad");
  }
  const std::optional<NonFiniteFinding> f = guard.wait();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(to_string(*f), "NaN or Inf in \"fc2.weight.grad\" (tensor 3) at step 13");
  guard.reset();
  EXPECT_FALSE(guard.poll().has_value());
}

TEST(NumericGuard, FollowsBuffersThatChangeBetweenSteps) {
  // A new loss tensor every step (as autograd makes one), an undefined grad some steps.
  Rng rng(43);
  NumericGuard guard(kNames, Device::cpu());
  Grads g = random_grads(rng);
  for (int64_t step = 0; step < 12; ++step) {
    g.loss = random_tensor({}, rng, DType::Float32, 0.5, 2.0);
    std::vector<Tensor> tensors = g.all();
    if (step % 3 == 1) tensors[2] = Tensor();
    if (step == 9) g.loss.data<float>()[0] = -kInf;
    guard.check(tensors, step);
    EXPECT_EQ(guard.poll().has_value(), step >= 9) << "step " << step;
  }
  ASSERT_TRUE(guard.wait().has_value());
  EXPECT_EQ(guard.wait()->step, 9);
  EXPECT_EQ(guard.wait()->tensor_name, "loss");
}

// The loss is a new tensor every step; with the old losses still alive (as the caching
// allocator may keep them), it never comes back at the same address. The guard must still build
// one plan for the whole run, and check each step's own loss.
TEST(NumericGuard, OnePlanForAWholeRunWhileTheLossMoves) {
  Rng rng(47);
  NumericGuard guard(kNames, Device::cpu());
  Grads g = random_grads(rng);
  std::vector<Tensor> old_losses;
  for (int64_t step = 0; step < 20; ++step) {
    old_losses.push_back(g.loss);
    g.loss = random_tensor({}, rng, DType::Float32, 0.5, 2.0);
    if (step == 17) g.loss.data<float>()[0] = kNaN;
    guard.check(g.all(), step);
    EXPECT_EQ(guard.plans_built(), 1) << "step " << step;
    EXPECT_EQ(guard.poll().has_value(), step >= 17) << "step " << step;
  }
  ASSERT_TRUE(guard.wait().has_value());
  EXPECT_EQ(guard.wait()->step, 17);
  EXPECT_EQ(guard.wait()->tensor_name, "loss");
  // New gradient buffers are a new plan (their addresses are in it).
  g.grads[0] = g.grads[0].clone();
  guard.check(g.all(), 20);
  EXPECT_EQ(guard.plans_built(), 2);
}

TEST(NumericGuard, RejectsAWrongNumberOfTensors) {
  Rng rng(44);
  NumericGuard guard(kNames, Device::cpu());
  Grads g = random_grads(rng);
  EXPECT_THROW(guard.check(g.grads, 0), Error);
  EXPECT_THROW(guard.check(g.all(), -1), Error);
}

// The guard and Adam together: the poisoned step and every one after it leave the model as it was.
TEST(NumericGuard, AdamSkipsEveryStepOnceTheGuardTrips) {
  Rng rng(45);
  std::vector<Tensor> params = {random_tensor({8, 3}, rng, DType::Float32), random_tensor({3}, rng, DType::Float32)};
  for (Tensor& p : params) p.set_requires_grad(true);
  Adam adam(params);
  NumericGuard guard({"loss", "w.grad", "b.grad"}, Device::cpu());
  adam.set_skip_guard(guard.status());
  std::vector<std::vector<float>> frozen;
  for (int64_t step = 1; step <= 6; ++step) {
    for (Tensor& p : params) p.set_grad(random_tensor(p.shape(), rng, DType::Float32));
    if (step == 4) params[1].grad().data<float>()[2] = kNaN;
    const Tensor loss = random_tensor({}, rng, DType::Float32, 0.5, 2.0);
    guard.check({loss, params[0].grad(), params[1].grad()}, step);
    if (step == 4) {
      for (const Tensor& p : params) frozen.push_back(p.to_vector<float>());
    }
    adam.step();
  }
  for (size_t k = 0; k < params.size(); ++k) {
    const std::vector<float> now = params[k].to_vector<float>();
    EXPECT_EQ(std::memcmp(now.data(), frozen[k].data(), now.size() * sizeof(float)), 0) << "parameter " << k;
  }
  EXPECT_EQ(adam.parameter_step(0), 6);  // host counts keep counting (documented)
  ASSERT_TRUE(guard.poll().has_value());
  EXPECT_EQ(guard.poll()->step, 4);
  EXPECT_EQ(guard.poll()->tensor_name, "b.grad");
}

TEST(NumericGuardCuda, PollAndWaitSeeTheFirstFinding) {
  FFR_REQUIRE_CUDA();
  Rng rng(46);
  const Device gpu = Device::cuda(0);
  NumericGuard guard(kNames, gpu);
  EXPECT_FALSE(guard.poll().has_value());
  Grads g = random_grads(rng, gpu);
  for (int64_t step = 0; step < 40; ++step) {
    if (step == 25) {
      Tensor bad = Tensor::full({1}, kInf, DType::Float32);
      Tensor view = Tensor::from_blob(g.grads[1].data<float>() + 2, {1}, DType::Float32, gpu);
      view.copy_(bad);  // fc1.bias.grad[2]
    }
    guard.check(g.all(), step);
    const std::optional<NonFiniteFinding> f = guard.poll();  // never blocks; may lag behind the GPU
    if (f) {
      EXPECT_GE(step, 25);
      EXPECT_EQ(f->step, 25);
    }
  }
  const std::optional<NonFiniteFinding> f = guard.wait();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->step, 25);
  EXPECT_EQ(f->tensor_index, 2);
  EXPECT_EQ(f->tensor_name, "fc1.bias.grad");
  synchronize();
  ASSERT_TRUE(guard.poll().has_value());  // every copy has landed now
  EXPECT_EQ(guard.poll()->step, 25);
  guard.reset();
  EXPECT_FALSE(guard.poll().has_value());
  guard.check(random_grads(rng, gpu).all(), 50);
  EXPECT_FALSE(guard.wait().has_value());
}

// On the GPU: a new loss every step, one plan, and the loss's NaN is found through the by-value
// scalar path of the kernel.
TEST(NumericGuardCuda, OnePlanWhileTheLossMoves) {
  FFR_REQUIRE_CUDA();
  Rng rng(48);
  const Device gpu = Device::cuda(0);
  NumericGuard guard(kNames, gpu);
  Grads g = random_grads(rng, gpu);
  std::vector<Tensor> old_losses;
  for (int64_t step = 0; step < 12; ++step) {
    old_losses.push_back(g.loss);
    Tensor loss = Tensor::full({}, step == 9 ? double(kNaN) : 1.5, DType::Float32);
    g.loss = loss.to(gpu);
    guard.check(g.all(), step);
  }
  EXPECT_EQ(guard.plans_built(), 1);
  const std::optional<NonFiniteFinding> f = guard.wait();
  ASSERT_TRUE(f.has_value());
  EXPECT_EQ(f->step, 9);
  EXPECT_EQ(f->tensor_name, "loss");
}

}  // namespace
}  // namespace ffr
