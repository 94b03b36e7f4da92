#include "layers/layer_probe.h"

namespace ffr {

namespace {
thread_local LayerProbe* t_probe = nullptr;
}  // namespace

LayerProbeScope::LayerProbeScope(LayerProbe* probe) : previous_(t_probe) { t_probe = probe; }

LayerProbeScope::~LayerProbeScope() { t_probe = previous_; }

Tensor probe_output(const Module& layer, const Tensor& input, Tensor output) {
  if (t_probe != nullptr) t_probe->on_output(layer, input, output);
  return output;
}

bool layer_probe_installed() { return t_probe != nullptr; }

}  // namespace ffr
