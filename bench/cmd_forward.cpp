// `ffr-bench forward`: runs a model on inputs from a safetensors file and writes the logits (and,
// with --backward, the cross-entropy loss and every parameter's gradient under PyTorch's names),
// so anyone can check the engine against PyTorch with the same weights and inputs.
#include "bench/command.h"
#include "bench/flag_checks.h"
#include "engine/device.h"
#include "engine/error.h"
#include "engine/parallel.h"
#include "engine/precision.h"
#include "engine/safetensors.h"
#include "kernels/cross_entropy.h"
#include "layers/model_zoo.h"

#include <cstdio>
#include <memory>

namespace ffr::bench {
namespace {

struct ForwardOptions {
  std::string model, weights, input, labels, out, device = "auto", precision = "auto";
  int64_t classes = 0;
  int threads = 0;
  bool backward = false;
  bool train_mode = false;
};

Device parse_device(const std::string& name) {
  if (name == "auto") return default_device();
  if (name == "cpu") return Device::cpu();
  if (name == "cuda") return Device::cuda(0);
  throw InputError("--device: expected auto, cpu or cuda, got '" + name + "'");
}

// The only tensor in a file, or the one named `preferred`.
Tensor single_tensor(const std::string& path, const std::string& preferred) {
  SafetensorsFile file = load_safetensors(path);
  if (file.tensors.size() == 1) return file.tensors[0].second;
  for (auto& [name, t] : file.tensors)
    if (name == preferred) return t;
  throw InputError(path + ": expected one tensor or one named '" + preferred + "', found " +
                   std::to_string(file.tensors.size()));
}

void run_forward(const ForwardOptions& o) {
  const Device device = parse_device(o.device);
  set_compute_threads(o.threads);
  const Precision precision = resolve_precision(o.precision, device);
  PrecisionScope precision_scope(precision);
  SafetensorsFile weights = load_safetensors(o.weights);
  int64_t classes = o.classes;
  for (auto& [name, t] : weights.tensors)
    if (classes == 0 && (name == "fc.weight" || name == "head.weight")) classes = t.size(0);
  if (classes == 0) throw InputError(o.weights + ": no fc.weight or head.weight; pass --classes");
  Rng rng(0);
  Tensor input = single_tensor(o.input, "input");
  if (input.ndim() != 4) throw InputError(o.input + ": expected [N, 3, H, W] images, got " + input.str());
  std::unique_ptr<Classifier> model = make_model(o.model, classes, rng, input.size(2));
  model->load_state_dict(weights.tensors, o.weights);
  model->to(device);
  model->train(o.train_mode);

  NamedTensors out;
  Tensor logits = model->forward(input.to(DType::Float32).to(device));
  out.emplace_back("logits", logits);
  if (o.backward) {
    if (o.labels.empty()) throw InputError("--backward needs --labels");
    Tensor labels = single_tensor(o.labels, "labels").to(DType::Int64);
    Tensor loss = cross_entropy(logits, labels.to(device));
    loss.backward();
    out.emplace_back("loss", loss.reshape({1}));
    for (auto& [name, p] : model->named_parameters())
      if (p.grad().defined()) out.emplace_back("grad." + name, p.grad());
  }
  save_safetensors(o.out, out, {{"model", o.model}, {"mode", o.train_mode ? "train" : "eval"},
                                    {"precision", precision_name(precision)}});
  std::printf("wrote %s: logits %s%s on %s (%s)\n", o.out.c_str(), shape_str(logits.shape()).c_str(),
              o.backward ? ", loss and gradients" : "", device.str().c_str(), precision_name(precision));
}

void setup_forward(CLI::App& sub) {
  auto o = std::make_shared<ForwardOptions>();
  sub.add_option("--model", o->model, "model name (ffr-bench models)")->required()->check(CLI::IsMember(model_names()));
  sub.add_option("--weights", o->weights, "safetensors with PyTorch-named parameters and buffers")
      ->required()->check(CLI::ExistingFile);
  sub.add_option("--input", o->input, "safetensors with the images [N,3,H,W]")->required()->check(CLI::ExistingFile);
  sub.add_option("--labels", o->labels, "safetensors with int labels [N] (for --backward)")->check(CLI::ExistingFile);
  sub.add_option("--out", o->out, "output safetensors")->required();
  sub.add_option("--classes", o->classes, "class count (default: from fc/head weight)");
  sub.add_option("--device", o->device, "where to run")->check(CLI::IsMember({"auto", "cpu", "cuda"}))
      ->capture_default_str();
  sub.add_option("--precision", o->precision,
                 "matmul/conv precision: fp32, tf32 (fp32 on the CPU) or bf16; auto: tf32 on CUDA, fp32 on the CPU")
      ->check(CLI::IsMember({"auto", "fp32", "tf32", "bf16"}))->capture_default_str();
  sub.add_flag("--backward", o->backward, "also write the loss and parameter gradients");
  sub.add_flag("--train-mode", o->train_mode, "BatchNorm batch statistics, as model.train()");
  sub.add_option("--threads", o->threads, "CPU compute threads (0: the machine's cores)")->check(non_negative())
      ->capture_default_str();
  sub.callback([o] { run_forward(*o); });
}

const bool registered = register_command({"forward", "Run a model on given weights and inputs (PyTorch parity)",
                                          setup_forward});

}  // namespace
}  // namespace ffr::bench
