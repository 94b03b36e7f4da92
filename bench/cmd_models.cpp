// `ffr-bench models`: each named model's parameter count and forward cost at an image size.
#include "bench/command.h"
#include "bench/flag_checks.h"
#include "engine/autograd.h"
#include "engine/flop_counter.h"
#include "engine/rng.h"
#include "layers/model_zoo.h"

#include <cstdio>
#include <memory>

namespace ffr::bench {
namespace {

struct ModelsOptions {
  int64_t classes = 1000;
  int64_t image_size = 0;
  std::vector<std::string> only;
};

void run_models(const ModelsOptions& o) {
  std::printf("%-16s %14s %12s %12s  %s\n", "model", "parameters", "image px", "fwd GMACs", "description");
  for (const ModelInfo& info : available_models()) {
    if (!o.only.empty() && std::find(o.only.begin(), o.only.end(), info.name) == o.only.end()) continue;
    Rng rng(0);
    const int64_t size = o.image_size > 0 ? o.image_size : info.default_image_size;
    std::unique_ptr<Classifier> model = make_model(info.name, o.classes, rng, size);
    model->eval();
    // One image through the model on the CPU, counting the multiply-adds of every GEMM and
    // convolution (torchvision's "GFLOPS" column counts these, e.g. 4.09 for resnet50).
    FlopCounter counter;
    {
      NoGradGuard no_grad;
      model->forward(Tensor::uniform({1, 3, size, size}, -1.0, 1.0, rng));
    }
    std::printf("%-16s %14lld %12lld %12.3f  %s\n", info.name.c_str(), (long long)model->parameter_count(),
                (long long)size, double(counter.multiply_adds()) / 1e9, info.description.c_str());
  }
  std::printf("(parameters at %lld classes; GMACs: multiply-adds of one forward pass of one image; "
              "GFLOPs = 2 x GMACs)\n", (long long)o.classes);
}

void setup_models(CLI::App& sub) {
  auto o = std::make_shared<ModelsOptions>();
  sub.add_option("--classes", o->classes, "number of classes of the head")->check(CLI::PositiveNumber);
  sub.add_option("--image-size", o->image_size, "input size in pixels (default: each model's own)")
      ->check(CLI::PositiveNumber);
  sub.add_option("--model", o->only, "only these models (repeatable)")->check(CLI::IsMember(model_names()));
  sub.callback([o] { run_models(*o); });
}

const bool registered = register_command({"models", "List the models: parameters and forward cost", setup_models});

}  // namespace
}  // namespace ffr::bench
