// tools/convert_weights.py's files load with --init: torchvision's resnet50 and timm's
// vit_base_patch32_224 state dicts, converted, give no missing, unexpected or mismatched name.
// Needs PyTorch, so tests/convert_weights.sh makes the files and runs this suite with
// FFR_CONVERTED_WEIGHTS pointing at them; otherwise it skips, saying why.
#include "engine/safetensors.h"
#include "ffr/checkpoint.h"
#include "ffr/init_weights.h"
#include "layers/model_zoo.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <map>

namespace ffr {
namespace {

std::string converted(const std::string& name) {
  const char* dir = std::getenv("FFR_CONVERTED_WEIGHTS");
  return dir ? (std::filesystem::path(dir) / name).string() : "";
}

// `full`: also a 4-class model (fresh head) and the checkpoint reader, once per model is enough.
void expect_loads(const std::string& model_name, const std::string& file, bool full) {
  ASSERT_TRUE(std::filesystem::exists(file)) << file;
  const SafetensorsFile loaded = load_safetensors(file);
  std::map<std::string, Tensor> in_file;
  for (const auto& [name, t] : loaded.tensors) in_file[name] = t;
  // The ImageNet head kept (1000 classes): every tensor of the model is the file's.
  Rng rng(3);
  auto imagenet = make_model(model_name, 1000, rng);
  EXPECT_NO_THROW(load_init_weights(*imagenet, file, /*keep_head=*/true));
  size_t compared = 0;
  for (const auto& [name, t] : imagenet->state_dict()) {
    const Tensor& f = in_file.at(name);
    ASSERT_EQ(t.shape(), f.shape()) << name;
    EXPECT_EQ(std::memcmp(t.raw_data(), f.raw_data(), size_t(t.numel()) * dtype_size(t.dtype())), 0) << name;
    ++compared;
  }
  EXPECT_EQ(compared, in_file.size()) << "the file holds tensors the model does not";
  if (!full) return;
  // A 4-class data set: the body from the file, a fresh head.
  auto four = make_model(model_name, 4, rng);
  EXPECT_NO_THROW(load_init_weights(*four, file, /*keep_head=*/false));
  // The metadata makes it a checkpoint `ffr-bench eval` and the inference API can open too.
  const LoadedCheckpoint checkpoint = load_checkpoint(file);
  EXPECT_EQ(checkpoint.info.architecture, model_name);
  EXPECT_EQ(checkpoint.info.num_classes, 1000);
}

TEST(ConvertWeights, TorchvisionResnet50AndTimmVitB32LoadWithInit) {
  if (converted("").empty()) {
    GTEST_SKIP() << "FFR_CONVERTED_WEIGHTS is not set: run by tests/convert_weights.sh, which needs PyTorch "
                    "(torch, torchvision, timm, safetensors) in .venv/ or FFR_PYTHON";
  }
  for (const char* source : {"random", "checkpoint"}) {
    SCOPED_TRACE(source);
    const bool full = std::string(source) == "random";
    expect_loads("resnet50", converted(std::string("resnet50-") + source + ".safetensors"), full);
    expect_loads("vit_b32", converted(std::string("vit_b32-") + source + ".safetensors"), full);
  }
}

}  // namespace
}  // namespace ffr
