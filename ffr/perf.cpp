#include "ffr/perf.h"

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/parallel.h"
#include "engine/rng.h"
#include "ffr/checkpoint.h"
#include "ffr/trainer.h"
#include "kernels/cross_entropy.h"
#include "layers/inference.h"
#include "layers/inference_plan.h"
#include "layers/model_zoo.h"
#include "optim/adam.h"

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <functional>

#ifdef FFR_WITH_CUDA
#include "engine/cuda/check.h"
#include "engine/cuda/context.h"
#endif

namespace ffr {

namespace {

void check_config(const PerfConfig& c) {
  auto fail = [](const std::string& what) { throw InputError("perf: " + what); };
  if (c.batch_size < 1) fail(detail::concat("batch size must be >= 1, got ", c.batch_size));
  if (c.image_size < 0) fail(detail::concat("image size must be >= 0 (0: the model's default), got ", c.image_size));
  if (c.num_classes < 1) fail(detail::concat("num classes must be >= 1, got ", c.num_classes));
  if (c.steps < 1) fail(detail::concat("steps must be >= 1, got ", c.steps));
  if (c.warmup < 0) fail(detail::concat("warmup must be >= 0, got ", c.warmup));
  if (c.threads < 0) fail(detail::concat("threads must be >= 0 (0: the machine's cores), got ", c.threads));
  if (c.api && !c.inference) fail("--api times the inference API: it needs --inference");
}

InferencePrecision inference_precision(Precision p) {
  switch (p) {
    case Precision::Float32: return InferencePrecision::Float32;
    case Precision::TensorFloat32: return InferencePrecision::TensorFloat32;
    case Precision::BFloat16: return InferencePrecision::BFloat16;
  }
  return InferencePrecision::Auto;
}

// A checkpoint of `model` in a fresh temporary folder, removed when this goes.
struct TemporaryCheckpoint {
  std::filesystem::path folder;
  std::string path;
  TemporaryCheckpoint(const Classifier& model, const std::string& architecture, int64_t classes, int64_t side) {
    folder = std::filesystem::temp_directory_path() /
             ("ffr-perf-" + std::to_string(::getpid()) + "-" + std::to_string(uint64_t(&model) & 0xffffff));
    std::filesystem::create_directories(folder);
    path = (folder / "model.safetensors").string();
    save_checkpoint(path, model.state_dict(), {architecture, classes, side, {}});
  }
  ~TemporaryCheckpoint() {
    std::error_code ignored;
    std::filesystem::remove_all(folder, ignored);
  }
};

rusage self_usage() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage;
}

size_t max_rss_bytes() { return size_t(self_usage().ru_maxrss) * 1024; }  // kilobytes on Linux

double seconds(const timeval& t) { return double(t.tv_sec) + 1e-6 * double(t.tv_usec); }

// Milliseconds of each of `steps` calls of `step`.
std::vector<double> time_steps(Device device, int64_t steps, const std::function<void()>& step) {
  std::vector<double> ms(size_t(steps), 0.0);
#ifdef FFR_WITH_CUDA
  if (device.is_cuda()) {
    // events[i] marks the start of step i, events[steps] the end of the last.
    struct Events {
      std::vector<cudaEvent_t> e;
      ~Events() {
        for (cudaEvent_t x : e) cudaEventDestroy(x);  // a destructor: nothing to report to
      }
    } events;
    events.e.resize(size_t(steps) + 1, nullptr);
    for (cudaEvent_t& e : events.e) FFR_CUDA_CHECK(cudaEventCreate(&e));
    const cudaStream_t stream = cuda::stream();
    FFR_CUDA_CHECK(cudaEventRecord(events.e[0], stream));
    for (int64_t i = 0; i < steps; ++i) {
      step();
      FFR_CUDA_CHECK(cudaEventRecord(events.e[size_t(i) + 1], stream));
    }
    FFR_CUDA_CHECK(cudaEventSynchronize(events.e.back()));  // the window's only wait
    for (int64_t i = 0; i < steps; ++i) {
      float elapsed = 0.0f;
      FFR_CUDA_CHECK(cudaEventElapsedTime(&elapsed, events.e[size_t(i)], events.e[size_t(i) + 1]));
      ms[size_t(i)] = double(elapsed);
    }
    return ms;
  }
#endif
  for (int64_t i = 0; i < steps; ++i) {
    const auto start = std::chrono::steady_clock::now();
    step();
    ms[size_t(i)] = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
  }
  return ms;
}

}  // namespace

PerfResult measure_steps(const PerfConfig& config) {
  check_config(config);
  const Device device = config.device;
  set_compute_threads(config.threads);  // 0: the machine's cores
  PrecisionScope precision(config.precision);
  Rng rng(config.seed);
  std::unique_ptr<Classifier> model = make_model(config.model, config.num_classes, rng, config.image_size);
  PerfResult result;
  result.image_size = config.image_size > 0 ? config.image_size : [&] {
    for (const ModelInfo& m : available_models())
      if (m.name == config.model) return m.default_image_size;
    return int64_t(0);
  }();
  model->to(device);
  const int64_t n = config.batch_size, side = result.image_size;
  const Tensor images = Tensor::normal({n, 3, side, side}, 0.0, 1.0, rng, DType::Float32, device);
  std::vector<int64_t> label_values(static_cast<size_t>(n));
  for (int64_t& y : label_values) y = int64_t(rng.below(uint64_t(config.num_classes)));
  const Tensor labels = Tensor::from_vector(label_values, {n}, DType::Int64, device);

  std::function<void()> step;
  std::unique_ptr<Adam> optimizer;
  std::unique_ptr<TemporaryCheckpoint> checkpoint;
  std::unique_ptr<InferencePlan> plan;
  std::unique_ptr<InferenceModel> api_model;
  std::vector<uint8_t> pixels;
  std::vector<ImageView> views;
  if (config.api) {
    checkpoint = std::make_unique<TemporaryCheckpoint>(*model, config.model, config.num_classes, side);
    model.reset();  // only the API's copy of the weights stays
    InferenceOptions options;
    options.device = device.is_cuda() ? InferenceDevice::Cuda : InferenceDevice::Cpu;
    options.max_batch = int(n);
    options.precision = inference_precision(config.precision);
    api_model = std::make_unique<InferenceModel>(checkpoint->path, options);
    const size_t image_bytes = size_t(3) * size_t(side) * size_t(side);
    pixels.resize(image_bytes * size_t(n));
    for (uint8_t& p : pixels) p = uint8_t(rng.below(256));
    for (int64_t i = 0; i < n; ++i) views.push_back({pixels.data() + size_t(i) * image_bytes, int(side), int(side)});
    step = [&] { api_model->classify_batch(views); };
  } else if (config.inference) {
    model->eval();
    // As InferenceModel runs it: through a prepared plan where one exists (layers/inference_plan.h).
    if (device.is_cpu() && config.precision != Precision::BFloat16) plan = make_inference_plan(*model);
    step = [&] {
      NoGradGuard no_grad;
      if (plan) {
        model->head().forward(plan->features(images));
      } else {
        model->forward(images);
      }
    };
  } else {
    model->train();
    optimizer = make_optimizer(*model, config.learning_rate, config.weight_decay);
    step = [&] {  // the trainer's step (ffr/trainer.cpp) without the loader and the NaN/Inf guard
      optimizer->zero_grad();
      const Tensor loss = cross_entropy(model->forward(images), labels);
      loss.backward();
      optimizer->step();
    };
  }

  Allocator& host = cpu_allocator();
  host.reset_peak();
  if (device.is_cuda()) allocator_for(device).reset_peak();
  for (int64_t i = 0; i < config.warmup; ++i) step();
  const rusage before = self_usage();
  if (config.op_profile) start_op_profile();
  result.step_ms = time_steps(device, config.steps, step);
  synchronize();
  if (config.op_profile) result.op_profile = stop_op_profile();
  const rusage after = self_usage();
  result.cpu_user_s = seconds(after.ru_utime) - seconds(before.ru_utime);
  result.cpu_system_s = seconds(after.ru_stime) - seconds(before.ru_stime);
  result.minor_page_faults = int64_t(after.ru_minflt - before.ru_minflt);
  result.major_page_faults = int64_t(after.ru_majflt - before.ru_majflt);

  std::vector<double> sorted = result.step_ms;
  std::sort(sorted.begin(), sorted.end());
  const size_t k = sorted.size();
  result.ms_per_step_median = k % 2 ? sorted[k / 2] : 0.5 * (sorted[k / 2 - 1] + sorted[k / 2]);
  result.ms_per_step_min = sorted.front();
  result.ms_per_step_max = sorted.back();
  double total_ms = 0.0;
  for (double ms : sorted) total_ms += ms;
  result.images_per_s = total_ms > 0.0 ? double(n * config.steps) / (total_ms / 1000.0) : 0.0;
  result.peak_host_bytes = host.stats().peak_allocated_bytes;
  result.max_rss_bytes = max_rss_bytes();
  if (device.is_cuda()) result.peak_device_bytes = allocator_for(device).stats().peak_allocated_bytes;
  result.threads = compute_threads();
  if (plan) result.inference_plan = plan->describe();
  return result;
}

}  // namespace ffr
