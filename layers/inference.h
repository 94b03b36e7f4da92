// The inference API: a trained classifier loaded from its checkpoint, images in, class
// probabilities out. This header and engine/error.h are what `cmake --install` publishes; they
// include only the standard library (no CUDA, JSON or image-decoder headers), so a program that
// embeds the engine needs nothing else to compile against it.
//
//   ffr::InferenceModel model("run/best.safetensors");  // architecture, classes, size: from the file
//   ffr::Prediction p = model.classify_file("photo.png");
//   std::printf("%s %.3f\n", model.class_name(p.class_index).c_str(), p.probability);
//
// Checkpoint: a safetensors file (as `ffr-bench run` writes best.safetensors) whose metadata holds
//   architecture  a model zoo name: resnet50, vit_b32, ...      required
//   num_classes   a positive integer                             required
//   image_size    a positive integer: the training input side    required
//   class_names   a JSON array of num_classes strings            optional
// A missing or malformed entry is an ffr::InputError naming the file and the entry.
//
// Images: 8-bit RGB, interleaved (HWC), any size. Each is resized to image_size x image_size
// (bilinear, antialiased when shrinking, aspect ratio not kept) and normalised with the ImageNet
// mean/std: the transform training and `ffr-bench eval` apply. Files may be PNG or JPEG; grey
// and alpha are converted to RGB.
//
// Memory: inference records no autograd graph, and each activation is freed as soon as no later
// layer needs it, so besides the weights a call holds one forward pass's working set for at most
// `max_batch` images (batch calls run in chunks of that size). Loading holds the weights twice for
// a moment (the file's tensors and the model's). Measured for resnet50 on the CPU: see README.md,
// "Embedding the engine".
//
// Threads: an InferenceModel may be shared between threads. Its calls are serialised by a mutex
// inside it, so they are safe but run one at a time. For parallel inference load one model per
// thread (each holds its own weights); separate models need no coordination.
//
// Errors are exceptions: ffr::InputError for bad input (a file, a checkpoint, an image, an
// option), ffr::OutOfMemoryError when the device is out of memory, ffr::Error otherwise.
#pragma once

#include "engine/error.h"

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace ffr {

// Where the model runs. Auto: the first GPU when the library was built with CUDA and one
// answers, else the CPU (device() tells which). Cuda without a usable GPU is an InputError
// saying why.
enum class InferenceDevice { Auto, Cpu, Cuda };

// The precision of the model's matrix products and convolutions (engine/precision.h): Auto is
// TF32 on a GPU and Float32 on the CPU; TensorFloat32 on the CPU computes as Float32; BFloat16
// rounds their inputs and results to bfloat16 (float32 accumulation; about 1e-2 relative).
enum class InferencePrecision { Auto, Float32, TensorFloat32, BFloat16 };

struct InferenceOptions {
  InferenceDevice device = InferenceDevice::Auto;
  // Images per forward pass in batch calls: bounds activation memory.
  int max_batch = 32;
  InferencePrecision precision = InferencePrecision::Auto;
};

// Caller-owned pixels, read during the call only: 8-bit RGB, row-major, interleaved.
struct ImageView {
  const uint8_t* pixels = nullptr;
  int width = 0;
  int height = 0;
  size_t row_stride = 0;  // bytes from one row to the next; 0 means width * 3 (packed)
};

// Whether a call also returns the penultimate features (the input of the linear head).
enum class Features { Skip, Include };

struct Prediction {
  int64_t class_index = 0;          // argmax of the probabilities
  float probability = 0.0f;         // probabilities[class_index]
  std::vector<float> probabilities;  // softmax of the logits, num_classes() entries
  std::vector<float> features;       // feature_dim() entries with Features::Include, else empty
};

class InferenceModel {
 public:
  // Reads the checkpoint, rebuilds the model it names and puts it on the chosen device.
  // A moved-from model may only be assigned to or destroyed.
  explicit InferenceModel(const std::string& checkpoint_path, const InferenceOptions& options = {});
  ~InferenceModel();
  InferenceModel(InferenceModel&&) noexcept;
  InferenceModel& operator=(InferenceModel&&) noexcept;
  InferenceModel(const InferenceModel&) = delete;
  InferenceModel& operator=(const InferenceModel&) = delete;

  // ---- one image ----
  Prediction classify(const ImageView& image, Features features = Features::Skip);
  Prediction classify_file(const std::string& path, Features features = Features::Skip);

  // ---- several images (any mix of sizes), run in batches of max_batch; results in order ----
  std::vector<Prediction> classify_batch(const std::vector<ImageView>& images, Features features = Features::Skip);
  std::vector<Prediction> classify_files(const std::vector<std::string>& paths,
                                         Features features = Features::Skip);

  // ---- what the checkpoint says ----
  const std::string& checkpoint_path() const;
  const std::string& architecture() const;
  int64_t num_classes() const;
  int64_t image_size() const;
  int64_t feature_dim() const;
  bool has_class_names() const;
  // The class's name from the checkpoint, or its index in decimal when it has none.
  std::string class_name(int64_t class_index) const;
  std::string device() const;  // "cpu", "cuda:0"
  std::string precision() const;  // "fp32", "tf32" or "bf16": what the calls run with

 private:
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace ffr
