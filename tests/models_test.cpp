// Models against PyTorch: torchvision/timm names and parameter counts, and small configs'
// logits, loss, gradients and BatchNorm running statistics against fixtures that PyTorch made
// (tests/fixtures/make_fixtures.py), plus an end-to-end finite-difference gradient check.
#include "engine/allocator.h"
#include "engine/error.h"
#include "engine/safetensors.h"
#include "kernels/cross_entropy.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "layers/conv_bn.h"
#include "layers/model_zoo.h"
#include "tests/testing.h"

#include <nlohmann/json.hpp>

#include <fstream>
#include <map>

namespace ffr {
namespace {

std::string fixture(const std::string& name) { return testing::source_dir() + "/tests/fixtures/" + name; }

std::map<std::string, Tensor> by_name(const NamedTensors& tensors) {
  std::map<std::string, Tensor> out;
  for (const auto& [name, t] : tensors) out[name] = t;
  return out;
}

void expect_names_match_reference(const std::string& model_name) {
  std::ifstream in(fixture("reference_state_names.json"));
  ASSERT_TRUE(in) << "missing fixture reference_state_names.json";
  const nlohmann::json reference = nlohmann::json::parse(in)[model_name];
  Rng rng(0);
  auto model = make_model(model_name, 1000, rng);
  const NamedTensors state = model->state_dict();
  std::map<std::string, Shape> ours;
  for (const auto& [name, t] : state) ours[name] = t.shape();
  ASSERT_EQ(ours.size(), reference.size()) << model_name << ": state dict sizes differ";
  for (const auto& entry : reference) {
    const std::string name = entry[0];
    auto it = ours.find(name);
    ASSERT_NE(it, ours.end()) << model_name << " lacks " << name;
    EXPECT_EQ(it->second, entry[1].get<Shape>()) << name;
  }
}

TEST(Models, ResNet50MatchesTorchvisionNamesAndCount) {
  Rng rng(0);
  EXPECT_EQ(make_model("resnet50", 1000, rng)->parameter_count(), 25557032);
  expect_names_match_reference("resnet50");
}

TEST(Models, ViTB32MatchesTimmNamesAndCount) {
  Rng rng(0);
  EXPECT_EQ(make_model("vit_b32", 1000, rng)->parameter_count(), 88224232);
  expect_names_match_reference("vit_b32");
}

TEST(Models, UnknownModelAndBadStateAreClearErrors) {
  Rng rng(0);
  EXPECT_THROW(make_model("resnet51", 10, rng), InputError);
  auto model = make_model("resnet_tiny", 5, rng);
  NamedTensors state = model->state_dict();
  state.pop_back();
  state.emplace_back("fc.extra", Tensor::zeros({2}));
  state[0].second = Tensor::zeros({1, 2, 3});
  try {
    model->load_state_dict(state, "test.safetensors");
    FAIL() << "expected InputError";
  } catch (const InputError& e) {
    const std::string what = e.what();
    EXPECT_NE(what.find("missing"), std::string::npos) << what;
    EXPECT_NE(what.find("unexpected: fc.extra"), std::string::npos) << what;
    EXPECT_NE(what.find("shape mismatch: conv1.weight"), std::string::npos) << what;
  }
}

TEST(Models, HeadResetChangesTheClassCount) {
  Rng rng(0);
  auto model = make_model("vit_tiny", 5, rng);
  model->reset_head(3, rng);
  EXPECT_EQ(model->num_classes(), 3);
  NoGradGuard no_grad;
  EXPECT_EQ(model->forward(Tensor::uniform({2, 3, 8, 8}, -1, 1, rng)).shape(), (Shape{2, 3}));
  EXPECT_EQ(model->features(Tensor::uniform({2, 3, 8, 8}, -1, 1, rng)).shape(), (Shape{2, 16}));
}

// Loads a fixture, runs our model in `mode` on PyTorch's input, compares with PyTorch.
void compare_with_pytorch(const std::string& model_name, const std::string& mode, Device device, double rtol,
                          double atol) {
  const SafetensorsFile file = load_safetensors(fixture(model_name + ".safetensors"));
  std::map<std::string, Tensor> t = by_name(file.tensors);
  Rng rng(0);
  auto model = make_model(model_name, 5, rng);
  NamedTensors weights;
  for (const auto& [name, tensor] : file.tensors)
    if (name.rfind("weights.", 0) == 0) weights.emplace_back(name.substr(8), tensor);
  model->load_state_dict(weights, model_name + ".safetensors");
  model->to(device);
  model->train(mode == "train");
  Tensor logits = model->forward(t.at("input").to(device));
  Tensor loss = cross_entropy(logits, t.at("labels").to(device));
  loss.backward();
  testing::expect_close(logits.cpu(), t.at(mode + ".logits"), rtol, atol, model_name + " " + mode + " logits");
  testing::expect_close(loss.reshape({1}).cpu(), t.at(mode + ".loss"), rtol, atol, "loss");
  for (const auto& [name, p] : model->named_parameters()) {
    ASSERT_TRUE(p.grad().defined()) << name;
    testing::expect_close(p.grad().cpu(), t.at(mode + ".grad." + name), rtol, atol, "grad of " + name);
  }
  if (mode == "train") {
    for (const auto& [name, b] : model->named_buffers())
      if (name.find("running") != std::string::npos)
        testing::expect_close(b.cpu(), t.at("train.after." + name), rtol, atol, "updated " + name);
  }
}

TEST(Models, ResNetTinyMatchesPyTorch) {
  compare_with_pytorch("resnet_tiny", "eval", Device::cpu(), 1e-4, 1e-5);
  compare_with_pytorch("resnet_tiny", "train", Device::cpu(), 1e-4, 1e-5);
}

TEST(Models, ViTTinyMatchesPyTorch) {
  compare_with_pytorch("vit_tiny", "eval", Device::cpu(), 1e-4, 1e-5);
  compare_with_pytorch("vit_tiny", "train", Device::cpu(), 1e-4, 1e-5);
}

TEST(ModelsCuda, SmallModelsMatchPyTorch) {
  FFR_REQUIRE_CUDA();
  // TF32 is off by default, so cuDNN/cuBLAS run true float32: tolerances as on the CPU, a bit
  // looser for the different summation orders.
  compare_with_pytorch("resnet_tiny", "eval", Device::cuda(0), 1e-3, 1e-5);
  compare_with_pytorch("resnet_tiny", "train", Device::cuda(0), 1e-3, 1e-5);
  compare_with_pytorch("vit_tiny", "eval", Device::cuda(0), 1e-3, 1e-5);
  compare_with_pytorch("vit_tiny", "train", Device::cuda(0), 1e-3, 1e-5);
}

// Whole-model gradient check in float64: every parameter tensor gets a few elements perturbed.
void model_gradient_check(const std::string& model_name, int64_t image_size, bool training) {
  Rng rng(21);
  auto model = make_model(model_name, 3, rng, image_size);
  model->cast(DType::Float64);
  // Untrained BatchNorm (mean 0, var 1, bias 0) maps the exact zeros that ReLU makes to exact
  // zeros, which sit on the next ReLU's kink, where finite differences see half a slope. Random
  // statistics and shifts move every activation off the kink.
  for (BatchNorm2d* bn : batch_norm_layers(*model)) {
    bn->bias.copy_(Tensor::uniform(bn->bias.shape(), -0.3, 0.3, rng, DType::Float64));
    bn->running_mean.copy_(Tensor::uniform(bn->running_mean.shape(), -0.2, 0.2, rng, DType::Float64));
    bn->running_var.copy_(Tensor::uniform(bn->running_var.shape(), 0.5, 1.5, rng, DType::Float64));
  }
  model->train(training);
  Tensor images = Tensor::uniform({3, 3, image_size, image_size}, -1, 1, rng, DType::Float64);
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{0, 2, 1}, {3});
  auto loss_value = [&] {
    NoGradGuard no_grad;
    return cross_entropy(model->forward(images), labels).item();
  };
  cross_entropy(model->forward(images), labels).backward();
  const double eps = 1e-6;
  Rng pick(5);
  for (auto& [name, p] : model->named_parameters()) {
    const std::vector<double> analytic = p.grad().to_vector<double>();
    double* values = p.data<double>();
    for (int k = 0; k < 3; ++k) {
      const int64_t i = int64_t(pick.below(uint64_t(p.numel())));
      const double saved = values[i];
      values[i] = saved + eps;
      const double plus = loss_value();
      values[i] = saved - eps;
      const double minus = loss_value();
      values[i] = saved;
      const double numeric = (plus - minus) / (2 * eps);
      EXPECT_NEAR(analytic[size_t(i)], numeric, 1e-6 + 1e-4 * std::abs(numeric)) << name << "[" << i << "]";
    }
  }
}

TEST(Models, ResNetTinyGradientCheckEndToEnd) {
  model_gradient_check("resnet_tiny", 8, /*training=*/true);
  model_gradient_check("resnet_tiny", 8, /*training=*/false);
}

TEST(Models, ViTTinyGradientCheckEndToEnd) { model_gradient_check("vit_tiny", 8, true); }

TEST(Models, FrozenBatchNormKeepsStatisticsAndAffine) {
  Rng rng(3);
  auto model = make_model("resnet_tiny", 3, rng);
  for (BatchNorm2d* bn : batch_norm_layers(*model)) bn->set_frozen(true, /*freeze_affine=*/true);
  model->train(true);
  const std::vector<float> before = model->named_buffers()[0].second.to_vector<float>();
  cross_entropy(model->forward(Tensor::uniform({2, 3, 16, 16}, -1, 1, rng)),
                Tensor::from_vector(std::vector<int64_t>{0, 1}, {2}))
      .backward();
  EXPECT_EQ(model->named_buffers()[0].second.to_vector<float>(), before) << "running stats moved while frozen";
  for (BatchNorm2d* bn : batch_norm_layers(*model)) {
    EXPECT_FALSE(bn->weight.grad().defined());
    EXPECT_FALSE(bn->weight.requires_grad());
  }
}

}  // namespace
}  // namespace ffr

namespace ffr {
namespace {

// The precondition for capturing a training step in a CUDA graph: once warm, a whole step
// (forward, backward, optimizer-free gradient accumulation) takes every block from the cache.
TEST(ModelsCuda, SteadyStateStepAsksTheDriverForNoMemory) {
  FFR_REQUIRE_CUDA();
  Rng rng(1);
  auto model = make_model("resnet_tiny", 3, rng);
  model->to(Device::cuda(0));
  model->train(true);
  Tensor images = Tensor::uniform({8, 3, 16, 16}, -1, 1, rng, DType::Float32, Device::cuda(0));
  Tensor labels = Tensor::from_vector(std::vector<int64_t>{0, 1, 2, 0, 1, 2, 0, 1}, {8}, DType::Int64, Device::cuda(0));
  auto step = [&] {
    model->zero_grad();
    cross_entropy(model->forward(images), labels).backward();
  };
  for (int i = 0; i < 3; ++i) step();
  const uint64_t before = cuda_allocator(0).stats().os_allocations;
  for (int i = 0; i < 5; ++i) step();
  EXPECT_EQ(cuda_allocator(0).stats().os_allocations, before);
}

}  // namespace
}  // namespace ffr
