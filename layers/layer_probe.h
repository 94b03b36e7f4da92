// A look at every layer's output as the forward pass runs: how a diverging run names the first
// layer whose output went NaN or Inf, and how a test injects a NaN at a named layer
// (engine/fault_injection.h). The leaf layers (Conv2d, BatchNorm2d, Linear, LayerNorm, the
// attention core, the patch embedding) pass their output through probe_output(); with no probe
// installed on the thread, as in every normal step, that is one thread-local load and a branch.
#pragma once

#include "engine/tensor.h"

namespace ffr {

class Module;

class LayerProbe {
 public:
  virtual ~LayerProbe() = default;
  // `output` may be replaced (fault injection); `input` is the layer's first input.
  virtual void on_output(const Module& layer, const Tensor& input, Tensor& output) = 0;
};

// Installs `probe` on this thread for the scope's lifetime (the previous one comes back after).
class LayerProbeScope {
 public:
  explicit LayerProbeScope(LayerProbe* probe);
  ~LayerProbeScope();
  LayerProbeScope(const LayerProbeScope&) = delete;
  LayerProbeScope& operator=(const LayerProbeScope&) = delete;

 private:
  LayerProbe* previous_;
};

// What a leaf layer returns: its output, after the installed probe (if any) has seen it.
Tensor probe_output(const Module& layer, const Tensor& input, Tensor output);

// Whether a probe is installed on this thread: fused layers (a BatchNorm2d that also adds and
// applies ReLU) then run unfused, so the probe sees each leaf layer's own output.
bool layer_probe_installed();

}  // namespace ffr
