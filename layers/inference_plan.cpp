#include "layers/inference_plan.h"

#include "engine/error.h"
#include "layers/resnet.h"
#include "layers/resnet_inference_plan.h"

#include <cstdlib>
#include <cstring>

namespace ffr {

namespace {

bool plans_enabled() {
  static const bool enabled = [] {
    const char* v = std::getenv("FFR_INFERENCE_PLAN");
    if (v == nullptr || *v == '\0' || std::strcmp(v, "on") == 0) return true;
    FFR_CHECK(std::strcmp(v, "off") == 0, "FFR_INFERENCE_PLAN must be on or off, got '", v, "'");
    return false;
  }();
  return enabled;
}

}  // namespace

std::unique_ptr<InferencePlan> make_inference_plan(const Classifier& model) {
  if (!plans_enabled()) return nullptr;
  if (const auto* resnet = dynamic_cast<const ResNet*>(&model)) return make_resnet_inference_plan(*resnet);
  return nullptr;
}

}  // namespace ffr
