#include "layers/inference.h"

#include "data/image.h"
#include "data/preprocess.h"
#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/precision.h"
#include "layers/inference_plan.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "kernels/normalize_images.h"
#include "kernels/softmax.h"
#include "layers/model_zoo.h"

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <functional>
#include <map>
#include <mutex>
#include <utility>

namespace ffr {

struct InferenceModel::State {
  std::string path;
  std::string architecture;
  int64_t num_classes = 0;
  int64_t image_size = 0;
  std::vector<std::string> class_names;  // empty when the checkpoint has none
  Device device;
  Precision precision = Precision::Float32;
  int max_batch = 0;
  std::unique_ptr<Classifier> model;
  // The loaded weights prepared for fast forward passes where a plan exists for them
  // (layers/inference_plan.h; on the CPU in fp32, or tf32, which computes as fp32 there); the
  // model's own forward otherwise. The weights never change here, so the snapshot stays current.
  std::unique_ptr<InferencePlan> plan;
  std::mutex mutex;  // one call at a time (see the header)

  // Runs `count` images through the model, max_batch at a time. `write_input(i, chw)` writes image
  // i, preprocessed, into the batch's input at `chw` (3 * image_size^2 floats); it is called only
  // when its batch is prepared, so a long file list is never decoded all at once.
  std::vector<Prediction> run_batches(size_t count, const std::function<void(size_t, float*)>& write_input,
                                      Features features);
};

namespace {

using Metadata = std::map<std::string, std::string>;

const std::string& required_entry(const Metadata& metadata, const std::string& key, const std::string& path) {
  auto it = metadata.find(key);
  if (it == metadata.end()) {
    throw InputError(path + ": no '" + key +
                     "' in the safetensors metadata; an inference checkpoint needs architecture, num_classes and "
                     "image_size (as ffr-bench run writes them)");
  }
  return it->second;
}

int64_t positive_integer_entry(const Metadata& metadata, const std::string& key, const std::string& path) {
  const std::string& text = required_entry(metadata, key, path);
  char* end = nullptr;
  errno = 0;
  const long long value = std::strtoll(text.c_str(), &end, 10);
  if (errno != 0 || end == text.c_str() || *end != '\0' || value <= 0) {
    throw InputError(path + ": metadata '" + key + "' is not a positive integer: '" + text + "'");
  }
  return value;
}

std::vector<std::string> class_names_entry(const Metadata& metadata, int64_t num_classes, const std::string& path) {
  auto it = metadata.find("class_names");
  if (it == metadata.end()) return {};
  const std::string problem = path + ": metadata 'class_names' must be a JSON array of " +
                              std::to_string(num_classes) + " strings (num_classes)";
  const nlohmann::json names = nlohmann::json::parse(it->second, nullptr, /*allow_exceptions=*/false);
  if (!names.is_array() || int64_t(names.size()) != num_classes) throw InputError(problem + ", got '" + it->second + "'");
  std::vector<std::string> out;
  for (const auto& name : names) {
    if (!name.is_string()) throw InputError(problem + ", got '" + it->second + "'");
    out.push_back(name.get<std::string>());
  }
  return out;
}

Device choose_device(InferenceDevice choice) {
  switch (choice) {
    case InferenceDevice::Cpu:
      return Device::cpu();
    case InferenceDevice::Cuda:
      if (!cuda_available()) throw InputError("inference on CUDA was asked for, but " + cuda_unavailable_reason());
      return Device::cuda(0);
    case InferenceDevice::Auto:
      break;
  }
  return default_device();
}

data::RgbImage copy_image(const ImageView& view, size_t index) {
  const std::string which = "image " + std::to_string(index);
  if (view.pixels == nullptr) throw InputError(which + ": no pixels (null pointer)");
  if (view.width <= 0 || view.height <= 0) {
    throw InputError(which + ": bad size " + std::to_string(view.width) + "x" + std::to_string(view.height));
  }
  const size_t row_bytes = size_t(view.width) * 3;
  const size_t stride = view.row_stride == 0 ? row_bytes : view.row_stride;
  if (stride < row_bytes) {
    throw InputError(which + ": row_stride " + std::to_string(stride) + " is less than width * 3 = " +
                     std::to_string(row_bytes));
  }
  data::RgbImage image(view.width, view.height);
  for (int y = 0; y < view.height; ++y) {
    std::copy(view.pixels + size_t(y) * stride, view.pixels + size_t(y) * stride + row_bytes, image.at(0, y));
  }
  return image;
}

// Image i of a batch call, preprocessed into `chw`. A packed view already at the model's size is
// normalised straight from the caller's pixels (the embedding API costs what `perf --inference`
// does); any other view is copied into an image first, which resizing needs anyway.
void write_view(const ImageView& view, size_t index, int side, float* chw) {
  const bool packed = view.row_stride == 0 || view.row_stride == size_t(view.width) * 3;
  if (view.pixels != nullptr && packed && view.width == side && view.height == side) {
    normalize_images_cpu(view.pixels, chw, 1, int64_t(side) * side, data::pixel_affine(data::Normalization::imagenet()));
    return;
  }
  data::preprocess_into(copy_image(view, index), side, data::Normalization::imagenet(), chw);
}

}  // namespace

InferenceModel::InferenceModel(const std::string& checkpoint_path, const InferenceOptions& options)
    : state_(std::make_unique<State>()) {
  State& s = *state_;
  if (options.max_batch <= 0) {
    throw InputError("InferenceOptions::max_batch must be positive, got " + std::to_string(options.max_batch));
  }
  s.path = checkpoint_path;
  s.max_batch = options.max_batch;
  s.device = choose_device(options.device);
  switch (options.precision) {
    case InferencePrecision::Auto: s.precision = default_precision(s.device); break;
    case InferencePrecision::Float32: s.precision = Precision::Float32; break;
    case InferencePrecision::TensorFloat32: s.precision = Precision::TensorFloat32; break;
    case InferencePrecision::BFloat16: s.precision = Precision::BFloat16; break;
    default: throw InputError("InferenceOptions::precision: not an InferencePrecision value");
  }

  SafetensorsFile file = load_safetensors(checkpoint_path);
  s.architecture = required_entry(file.metadata, "architecture", checkpoint_path);
  s.num_classes = positive_integer_entry(file.metadata, "num_classes", checkpoint_path);
  s.image_size = positive_integer_entry(file.metadata, "image_size", checkpoint_path);
  s.class_names = class_names_entry(file.metadata, s.num_classes, checkpoint_path);

  Rng rng(0);  // the initial weights are overwritten at once
  try {
    s.model = make_model(s.architecture, s.num_classes, rng, s.image_size);
  } catch (const InputError& e) {
    throw InputError(checkpoint_path + ": metadata 'architecture': " + e.what());
  }
  s.model->load_state_dict(file.tensors, checkpoint_path);
  file.tensors.clear();  // the model holds its own copy
  s.model->to(s.device);
  s.model->eval();
  if (s.device.is_cpu() && s.precision != Precision::BFloat16) s.plan = make_inference_plan(*s.model);
  // Another thread may run the model next, on its own stream: the weights must be there first.
  if (s.device.is_cuda()) synchronize();
}

InferenceModel::~InferenceModel() = default;
InferenceModel::InferenceModel(InferenceModel&&) noexcept = default;
InferenceModel& InferenceModel::operator=(InferenceModel&&) noexcept = default;

std::vector<Prediction> InferenceModel::State::run_batches(size_t count,
                                                          const std::function<void(size_t, float*)>& write_input,
                                                          Features features) {
  std::lock_guard<std::mutex> lock(mutex);
  NoGradGuard no_grad;
  PrecisionScope precision_scope(precision);  // the calling thread's, for this call only
  const int side = int(image_size);
  const size_t image_floats = size_t(3) * side * side;
  const size_t classes = size_t(num_classes);
  const size_t dim = size_t(model->feature_dim());
  std::vector<Prediction> out;
  out.reserve(count);
  for (size_t begin = 0; begin < count; begin += size_t(max_batch)) {
    const int64_t n = int64_t(std::min(count - begin, size_t(max_batch)));
    Tensor feature_rows;
    {
      // Pinned host memory on a GPU, so the copy up is a plain DMA.
      Tensor input = device.is_cuda() ? Tensor::empty_pinned({n, 3, side, side}) : Tensor::empty({n, 3, side, side});
      for (int64_t k = 0; k < n; ++k) write_input(begin + size_t(k), input.data<float>() + size_t(k) * image_floats);
      feature_rows = plan ? plan->features(input) : model->features(device.is_cuda() ? input.to(device) : input);
    }  // the input is freed before the head runs
    const std::vector<float> probabilities = softmax(model->head().forward(feature_rows), -1).to_vector<float>();
    std::vector<float> feature_values;
    if (features == Features::Include) feature_values = feature_rows.to_vector<float>();
    for (size_t k = 0; k < size_t(n); ++k) {
      Prediction p;
      p.probabilities.assign(probabilities.begin() + k * classes, probabilities.begin() + (k + 1) * classes);
      p.class_index = std::max_element(p.probabilities.begin(), p.probabilities.end()) - p.probabilities.begin();
      p.probability = p.probabilities[size_t(p.class_index)];
      if (features == Features::Include) {
        p.features.assign(feature_values.begin() + k * dim, feature_values.begin() + (k + 1) * dim);
      }
      out.push_back(std::move(p));
    }
  }
  return out;
}

Prediction InferenceModel::classify(const ImageView& image, Features features) {
  return classify_batch({image}, features).front();
}

Prediction InferenceModel::classify_file(const std::string& path, Features features) {
  return classify_files({path}, features).front();
}

std::vector<Prediction> InferenceModel::classify_batch(const std::vector<ImageView>& images, Features features) {
  const int side = int(state_->image_size);
  return state_->run_batches(images.size(), [&](size_t i, float* chw) { write_view(images[i], i, side, chw); },
                             features);
}

std::vector<Prediction> InferenceModel::classify_files(const std::vector<std::string>& paths, Features features) {
  const int side = int(state_->image_size);
  return state_->run_batches(paths.size(), [&](size_t i, float* chw) {
    data::preprocess_into(data::read_image(paths[i]), side, data::Normalization::imagenet(), chw);
  }, features);
}

const std::string& InferenceModel::checkpoint_path() const { return state_->path; }
const std::string& InferenceModel::architecture() const { return state_->architecture; }
int64_t InferenceModel::num_classes() const { return state_->num_classes; }
int64_t InferenceModel::image_size() const { return state_->image_size; }
int64_t InferenceModel::feature_dim() const { return state_->model->feature_dim(); }
bool InferenceModel::has_class_names() const { return !state_->class_names.empty(); }
std::string InferenceModel::device() const { return state_->device.str(); }
std::string InferenceModel::precision() const { return precision_name(state_->precision); }

std::string InferenceModel::class_name(int64_t class_index) const {
  if (class_index < 0 || class_index >= state_->num_classes) {
    throw InputError("class index " + std::to_string(class_index) + " is out of range: the model has " +
                     std::to_string(state_->num_classes) + " classes");
  }
  return has_class_names() ? state_->class_names[size_t(class_index)] : std::to_string(class_index);
}

}  // namespace ffr
