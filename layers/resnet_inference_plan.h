// ResNet inference on oneDNN with the weights prepared once (layers/inference_plan.h):
//
// - every BatchNorm2d is folded into the convolution before it: w' = w a, b' = beta - mean a,
//   a = gamma / sqrt(var + eps), so a conv + BN + ReLU is one oneDNN convolution with a bias and
//   a ReLU post-op, and a block's last conv also adds the skip path (a sum post-op) in place;
// - the folded weights are reordered once into the blocked layout oneDNN's kernels want, and the
//   activations stay blocked from the stem to the global pool: no per-call weight reorders, no
//   per-layer layout changes, no separate passes for BN, ReLU or the add.
// Why: in the model's own forward (autograd-ready modules) each call reorders the weights
// (training changes them every step), and plain NCHW kernels are what is left at batch 1; the
// prepared network ran ResNet-50's convolutions in ~0.65x the time on the 2-core AVX2 machine
// (bench/RESULTS_cpu.md has the end-to-end numbers).
//
// One program (primitives and activation buffers) is built per input shape and kept; the
// prepared weights are shared between programs where the layouts agree. Memory: the plan holds
// the folded weights (plain, for shapes still to come) and one prepared copy per layout, so about
// twice the convolution weights on top of the model's own (ResNet-50: ~200 MB); activations
// are taken from the caching CPU allocator per call, in a few buffers reused layer to layer.
#pragma once

#include "layers/inference_plan.h"
#include "layers/resnet.h"

namespace ffr {

// Null without oneDNN in the build, or for a model off the CPU or not in float32.
std::unique_ptr<InferencePlan> make_resnet_inference_plan(const ResNet& model);

}  // namespace ffr
