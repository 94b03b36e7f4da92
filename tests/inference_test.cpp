// The inference API (layers/inference.h): checkpoint metadata, agreement with the model called
// directly, files vs buffers vs batches, errors, memory, threads. The installed-package side
// (examples/classify built against `cmake --install`) is tests/install_test.sh.
#include "layers/inference.h"

#include "data/image.h"
#include "data/preprocess.h"
#include "data_test_support.h"
#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/precision.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "kernels/softmax.h"
#include "layers/model_zoo.h"
#include "testing.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <map>
#include <thread>

namespace ffr {
namespace {

using data::testing::expect_input_error;
using data::testing::TempDir;
using Metadata = std::map<std::string, std::string>;

Metadata metadata_for(const std::string& architecture, int64_t classes, int64_t image_size) {
  return {{"architecture", architecture},
          {"num_classes", std::to_string(classes)},
          {"image_size", std::to_string(image_size)}};
}

// Saves a freshly initialised zoo model (seeded) as an inference checkpoint; returns the model.
std::unique_ptr<Classifier> save_model(const std::string& path, const std::string& architecture, int64_t classes,
                                       int64_t image_size, Metadata extra = {}) {
  Rng rng(7);
  auto model = make_model(architecture, classes, rng, image_size);
  Metadata metadata = metadata_for(architecture, classes, image_size);
  metadata.insert(extra.begin(), extra.end());
  save_safetensors(path, model->state_dict(), metadata);
  model->eval();
  return model;
}

data::RgbImage random_image(int width, int height, uint64_t seed) {
  Rng rng(seed);
  const std::vector<float> values = Tensor::uniform({int64_t(width) * height * 3}, 0.0, 256.0, rng).to_vector<float>();
  data::RgbImage image(width, height);
  for (size_t i = 0; i < values.size(); ++i) image.pixels[i] = uint8_t(std::min(values[i], 255.0f));
  return image;
}

ImageView view_of(const data::RgbImage& image) { return {image.pixels.data(), image.width, image.height}; }

void expect_near_vectors(const std::vector<float>& actual, const std::vector<float>& expected, float tolerance,
                         const std::string& what) {
  ASSERT_EQ(actual.size(), expected.size()) << what;
  for (size_t i = 0; i < actual.size(); ++i) {
    EXPECT_NEAR(actual[i], expected[i], tolerance * (1.0f + std::abs(expected[i]))) << what << " [" << i << "]";
  }
}

void expect_same_prediction(const Prediction& a, const Prediction& b, float tolerance, const std::string& what) {
  EXPECT_EQ(a.class_index, b.class_index) << what;
  expect_near_vectors(a.probabilities, b.probabilities, tolerance, what + " probabilities");
  expect_near_vectors(a.features, b.features, tolerance, what + " features");
}

TEST(Inference, ReadsWhatTheCheckpointSays) {
  TempDir dir;
  const std::string path = (dir / "named.safetensors").string();
  save_model(path, "resnet_tiny", 3, 16, {{"class_names", R"(["cat", "dog", "bird"])"}});
  InferenceModel model(path, {InferenceDevice::Cpu});
  EXPECT_EQ(model.checkpoint_path(), path);
  EXPECT_EQ(model.architecture(), "resnet_tiny");
  EXPECT_EQ(model.num_classes(), 3);
  EXPECT_EQ(model.image_size(), 16);
  EXPECT_GT(model.feature_dim(), 0);
  EXPECT_EQ(model.device(), "cpu");
  EXPECT_TRUE(model.has_class_names());
  EXPECT_EQ(model.class_name(2), "bird");
  expect_input_error([&] { model.class_name(3); }, {"class index 3", "3 classes"});

  const std::string unnamed = (dir / "unnamed.safetensors").string();
  save_model(unnamed, "resnet_tiny", 3, 16);
  InferenceModel plain(unnamed, {InferenceDevice::Cpu});
  EXPECT_FALSE(plain.has_class_names());
  EXPECT_EQ(plain.class_name(1), "1");
}

// The "library called directly" reference: preprocess, forward, softmax, by hand.
TEST(Inference, MatchesTheModelCalledDirectly) {
  for (const auto& [architecture, size] : std::vector<std::pair<std::string, int>>{{"resnet_tiny", 16}, {"vit_tiny", 8}}) {
    TempDir dir;
    const std::string path = (dir / "model.safetensors").string();
    std::unique_ptr<Classifier> reference = save_model(path, architecture, 5, size);
    const data::RgbImage image = random_image(23, 17, 3);

    Tensor input = Tensor::empty({1, 3, size, size});
    data::preprocess_into(image, size, data::Normalization::imagenet(), input.data<float>());
    NoGradGuard no_grad;
    const std::vector<float> features = reference->features(input).to_vector<float>();
    const std::vector<float> probabilities = softmax(reference->forward(input), -1).to_vector<float>();

    InferenceModel model(path, {InferenceDevice::Cpu});
    const Prediction p = model.classify(view_of(image), Features::Include);
    expect_near_vectors(p.probabilities, probabilities, 1e-6f, architecture + " probabilities");
    expect_near_vectors(p.features, features, 1e-6f, architecture + " features");
    const auto best = std::max_element(probabilities.begin(), probabilities.end());
    EXPECT_EQ(p.class_index, best - probabilities.begin()) << architecture;
    EXPECT_EQ(p.probability, p.probabilities[size_t(p.class_index)]);
    EXPECT_EQ(model.feature_dim(), int64_t(features.size()));
  }
}

// The precision option: fp32 by default on the CPU, tf32 computes as fp32 there, and bf16 (mixed
// precision matmul/conv) stays within its 1e-2 tolerance of fp32 while actually differing.
TEST(Inference, PrecisionOption) {
  TempDir dir;
  const std::string path = (dir / "model.safetensors").string();
  save_model(path, "resnet_tiny", 5, 16);
  const data::RgbImage image = random_image(20, 20, 4);
  InferenceModel fp32(path, {InferenceDevice::Cpu});
  EXPECT_EQ(fp32.precision(), "fp32");
  InferenceOptions tf32_options{InferenceDevice::Cpu};
  tf32_options.precision = InferencePrecision::TensorFloat32;
  InferenceModel tf32(path, tf32_options);
  EXPECT_EQ(tf32.precision(), "tf32");
  InferenceOptions bf16_options{InferenceDevice::Cpu};
  bf16_options.precision = InferencePrecision::BFloat16;
  InferenceModel bf16(path, bf16_options);
  EXPECT_EQ(bf16.precision(), "bf16");

  const Prediction p32 = fp32.classify(view_of(image), Features::Include);
  const Prediction pt = tf32.classify(view_of(image), Features::Include);
  const Prediction p16 = bf16.classify(view_of(image), Features::Include);
  EXPECT_EQ(pt.probabilities, p32.probabilities) << "tf32 on the CPU computes as fp32";
  EXPECT_NE(p16.features, p32.features) << "bf16 computed as fp32";
  expect_near_vectors(p16.probabilities, p32.probabilities, 2e-2f, "bf16 probabilities");
  EXPECT_EQ(precision_of(settings()), Precision::Float32) << "the caller's thread settings leaked";
}

TEST(Inference, FilesBuffersStridesAndBatchesAgree) {
  TempDir dir;
  const std::string path = (dir / "model.safetensors").string();
  save_model(path, "resnet_tiny", 4, 16);
  InferenceModel model(path, {InferenceDevice::Cpu, /*max_batch=*/2});  // 5 images: batches of 2, 2, 1

  std::vector<data::RgbImage> images;
  std::vector<std::string> files;
  const int sizes[][2] = {{16, 16}, {40, 23}, {9, 31}, {64, 64}, {3, 5}};
  for (int i = 0; i < 5; ++i) {
    images.push_back(random_image(sizes[i][0], sizes[i][1], 100 + i));
    files.push_back((dir / ("image" + std::to_string(i) + ".png")).string());
    data::write_png(files.back(), images.back());
  }
  std::vector<ImageView> views;
  for (const auto& image : images) views.push_back(view_of(image));

  const std::vector<Prediction> batch = model.classify_batch(views, Features::Include);
  const std::vector<Prediction> from_files = model.classify_files(files, Features::Include);
  ASSERT_EQ(batch.size(), 5u);
  ASSERT_EQ(from_files.size(), 5u);
  for (size_t i = 0; i < 5; ++i) {
    const std::string which = "image " + std::to_string(i);
    const Prediction single = model.classify(views[i], Features::Include);
    expect_same_prediction(batch[i], single, 1e-5f, which + " batch vs single");
    expect_same_prediction(from_files[i], batch[i], 0.0f, which + " file vs buffer");  // PNG is lossless
    EXPECT_EQ(model.classify_file(files[i]).probabilities, single.probabilities) << which;
    EXPECT_TRUE(model.classify(views[i]).features.empty()) << which << ": features only on request";
  }

  // The same pixels inside wider rows (a padded frame buffer).
  const data::RgbImage& image = images[1];
  const size_t stride = size_t(image.width) * 3 + 13;
  std::vector<uint8_t> padded(stride * size_t(image.height), 0xAB);
  for (int y = 0; y < image.height; ++y) std::copy(image.at(0, y), image.at(0, y) + image.width * 3, &padded[y * stride]);
  const Prediction strided = model.classify({padded.data(), image.width, image.height, stride});
  EXPECT_EQ(strided.probabilities, model.classify(views[1]).probabilities);

  // Image 0 is at the model's size: packed, it is normalised straight from the caller's pixels;
  // padded, it goes through a copy. Both must give the same bits.
  const data::RgbImage& sized = images[0];
  const size_t sized_stride = size_t(sized.width) * 3 + 5;
  std::vector<uint8_t> sized_padded(sized_stride * size_t(sized.height), 0x5A);
  for (int y = 0; y < sized.height; ++y) {
    std::copy(sized.at(0, y), sized.at(0, y) + sized.width * 3, &sized_padded[y * sized_stride]);
  }
  EXPECT_EQ(model.classify({sized_padded.data(), sized.width, sized.height, sized_stride}).probabilities,
            model.classify(views[0]).probabilities);

  EXPECT_TRUE(model.classify_batch({}).empty());
}

TEST(Inference, BadCheckpointsAreInputErrorsNamingTheFile) {
  TempDir dir;
  Rng rng(1);
  auto model = make_model("resnet_tiny", 3, rng, 16);
  auto save = [&](const std::string& name, const Metadata& metadata) {
    const std::string path = (dir / name).string();
    save_safetensors(path, model->state_dict(), metadata);
    return path;
  };
  const std::string bare = save("bare.safetensors", {});
  expect_input_error([&] { InferenceModel m(bare); }, {bare, "'architecture'", "metadata"});

  Metadata no_size = metadata_for("resnet_tiny", 3, 16);
  no_size.erase("image_size");
  const std::string sizeless = save("sizeless.safetensors", no_size);
  expect_input_error([&] { InferenceModel m(sizeless); }, {sizeless, "'image_size'"});

  Metadata bad_count = metadata_for("resnet_tiny", 3, 16);
  bad_count["num_classes"] = "three";
  const std::string count = save("count.safetensors", bad_count);
  expect_input_error([&] { InferenceModel m(count); }, {count, "'num_classes'", "three"});

  const std::string unknown = save("unknown.safetensors", metadata_for("resnet_huge", 3, 16));
  expect_input_error([&] { InferenceModel m(unknown); }, {unknown, "resnet_huge"});

  const std::string mismatch = save("mismatch.safetensors", metadata_for("resnet_tiny", 5, 16));
  expect_input_error([&] { InferenceModel m(mismatch); }, {mismatch, "fc.weight"});

  Metadata names = metadata_for("resnet_tiny", 3, 16);
  names["class_names"] = R"(["a", "b"])";
  const std::string short_names = save("names.safetensors", names);
  expect_input_error([&] { InferenceModel m(short_names); }, {short_names, "'class_names'", "3 strings"});
  names["class_names"] = "a, b, c";
  const std::string not_json = save("not_json.safetensors", names);
  expect_input_error([&] { InferenceModel m(not_json); }, {not_json, "'class_names'"});

  const std::string missing = (dir / "missing.safetensors").string();
  expect_input_error([&] { InferenceModel m(missing); }, {missing});
  expect_input_error([&] { InferenceModel m(bare, {InferenceDevice::Cpu, 0}); }, {"max_batch"});
}

TEST(Inference, BadImagesAreInputErrors) {
  TempDir dir;
  const std::string path = (dir / "model.safetensors").string();
  save_model(path, "resnet_tiny", 2, 16);
  InferenceModel model(path, {InferenceDevice::Cpu});
  const data::RgbImage image = random_image(4, 4, 1);
  expect_input_error([&] { model.classify({nullptr, 4, 4}); }, {"image 0", "null"});
  expect_input_error([&] { model.classify({image.pixels.data(), 0, 4}); }, {"image 0", "0x4"});
  expect_input_error([&] { model.classify_batch({view_of(image), {image.pixels.data(), 4, 4, 5}}); },
                     {"image 1", "row_stride 5"});
  const std::string absent = (dir / "absent.png").string();
  expect_input_error([&] { model.classify_file(absent); }, {absent});
  data::testing::write_file(dir / "text.png", "not an image");
  expect_input_error([&] { model.classify_file((dir / "text.png").string()); }, {"text.png"});
}

TEST(Inference, CudaWithoutAGpuSaysWhy) {
  if (cuda_available()) GTEST_SKIP() << "a GPU is present";
  TempDir dir;
  const std::string path = (dir / "model.safetensors").string();
  save_model(path, "resnet_tiny", 2, 16);
  expect_input_error([&] { InferenceModel m(path, {InferenceDevice::Cuda}); }, {"CUDA", cuda_unavailable_reason()});
  EXPECT_EQ(InferenceModel(path).device(), "cpu");  // Auto falls back
}

// No autograd graph: activations die as the forward proceeds, so the peak over the weights stays
// well under what a graph-recording forward of the same batch holds, and nothing stays behind.
TEST(Inference, KeepsOnlyTheForwardWorkingSet) {
  TempDir dir;
  const std::string path = (dir / "model.safetensors").string();
  std::unique_ptr<Classifier> reference = save_model(path, "resnet26_small", 4, 64);
  InferenceModel model(path, {InferenceDevice::Cpu});
  std::vector<data::RgbImage> images;
  std::vector<ImageView> views;
  for (int i = 0; i < 4; ++i) images.push_back(random_image(64, 64, 50 + i));
  for (const auto& image : images) views.push_back(view_of(image));

  Allocator& allocator = cpu_allocator();
  const size_t before = allocator.stats().allocated_bytes;
  allocator.reset_peak();
  model.classify_batch(views);
  const size_t inference_peak = allocator.stats().peak_allocated_bytes - before;
  EXPECT_EQ(allocator.stats().allocated_bytes, before) << "classify left memory allocated";
  EXPECT_TRUE(grad_enabled()) << "classify must restore the grad mode";

  // The same batch through a graph-recording forward (parameters require grad).
  Tensor input = Tensor::empty({4, 3, 64, 64});
  for (int i = 0; i < 4; ++i)
    data::preprocess_into(images[size_t(i)], 64, data::Normalization::imagenet(), input.data<float>() + i * 3 * 64 * 64);
  const size_t reference_before = allocator.stats().allocated_bytes;
  allocator.reset_peak();
  {
    Tensor logits = reference->forward(input);
    ASSERT_TRUE(logits.requires_grad());
  }
  const size_t graph_peak = allocator.stats().peak_allocated_bytes - reference_before;
  std::printf("resnet26_small, 4 x 64 px on the CPU: peak %.2f MiB over the weights without a graph, %.2f MiB with one\n",
              double(inference_peak) / (1 << 20), double(graph_peak) / (1 << 20));
  EXPECT_LT(inference_peak * 2, graph_peak);
}

TEST(Inference, OneModelSharedBetweenThreads) {
  TempDir dir;
  const std::string path = (dir / "model.safetensors").string();
  save_model(path, "resnet_tiny", 3, 16);
  InferenceModel model(path, {InferenceDevice::Cpu});
  std::vector<data::RgbImage> images;
  for (int i = 0; i < 4; ++i) images.push_back(random_image(20 + i, 18, 200 + i));
  std::vector<std::vector<float>> expected;
  for (const auto& image : images) expected.push_back(model.classify(view_of(image)).probabilities);

  std::vector<std::vector<std::vector<float>>> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int round = 0; round < 5; ++round) got[size_t(t)].push_back(model.classify(view_of(images[size_t(t)])).probabilities);
    });
  }
  for (auto& thread : threads) thread.join();
  for (size_t t = 0; t < 4; ++t) {
    for (const auto& probabilities : got[t]) EXPECT_EQ(probabilities, expected[t]) << "thread " << t;
  }
}

TEST(Inference, CudaMatchesCpu) {
  FFR_REQUIRE_CUDA();
  TempDir dir;
  const std::string path = (dir / "model.safetensors").string();
  save_model(path, "resnet_tiny", 4, 16);
  InferenceModel cpu(path, {InferenceDevice::Cpu});
  InferenceOptions exact{InferenceDevice::Cuda};
  exact.precision = InferencePrecision::Float32;  // the GPU's default is TF32
  InferenceModel gpu(path, exact);
  EXPECT_EQ(gpu.device(), "cuda:0");
  const data::RgbImage image = random_image(30, 20, 9);
  const Prediction reference = cpu.classify(view_of(image), Features::Include);
  expect_same_prediction(gpu.classify(view_of(image), Features::Include), reference, 1e-4f, "cuda vs cpu");
  InferenceModel tf32(path, {InferenceDevice::Cuda});
  EXPECT_EQ(tf32.precision(), "tf32");
  expect_same_prediction(tf32.classify(view_of(image), Features::Include), reference, 1e-2f, "cuda tf32 vs cpu");
}

// The README's number: peak CPU memory of resnet50, batch 1 at 224 px. Slow (a 100 MB checkpoint):
//   ffr_tests --gtest_also_run_disabled_tests --gtest_filter='Inference.DISABLED_ResNet50*'
TEST(Inference, DISABLED_ResNet50Batch1Memory) {
  TempDir dir;
  const std::string path = (dir / "resnet50.safetensors").string();
  {
    Rng rng(0);
    auto model = make_model("resnet50", 1000, rng, 224);
    save_safetensors(path, model->state_dict(), metadata_for("resnet50", 1000, 224));
  }
  Allocator& allocator = cpu_allocator();
  const size_t baseline = allocator.stats().allocated_bytes;
  allocator.reset_peak();
  InferenceModel model(path, {InferenceDevice::Cpu});
  const MemoryStats loaded = allocator.stats();
  allocator.reset_peak();
  const data::RgbImage image = random_image(500, 375, 1);
  const auto start = std::chrono::steady_clock::now();
  model.classify(view_of(image));
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  const MemoryStats run = allocator.stats();
  const double mib = 1 << 20;
  std::printf("resnet50, 1000 classes, CPU: weights %.1f MiB; peak while loading %.1f MiB; "
              "peak while classifying one 224 px image %.1f MiB (%.1f MiB over the weights); %.2f s\n",
              double(loaded.allocated_bytes - baseline) / mib, double(loaded.peak_allocated_bytes - baseline) / mib,
              double(run.peak_allocated_bytes - baseline) / mib,
              double(run.peak_allocated_bytes - loaded.allocated_bytes) / mib, seconds);
}

}  // namespace
}  // namespace ffr
