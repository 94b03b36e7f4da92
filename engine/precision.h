// The numeric precision of a run's matrix products and convolutions, as users choose it
// (`--precision`, ExperimentConfig::precision, InferenceOptions::precision):
//   fp32  float32 throughout (CUDA: no tensor cores).
//   tf32  float32 data; CUDA GEMMs and convolutions may use TF32 tensor cores (10-bit mantissa
//         products, float32 accumulation, ~1e-3 relative): PyTorch's default for convolutions,
//         and the default on CUDA. On the CPU there are no TF32 units: it computes as fp32.
//   bf16  mixed precision: float32 weights, gradients and optimizer state; matmul and conv2d
//         round their inputs to bfloat16, accumulate in float32 and round their result to
//         bfloat16 (stored back as float32), as tensor cores with autocast do. Batch/layer norm
//         statistics, softmax, the loss and the fused attention kernel (kernels/attention.h: its
//         products are small, T = 50 tokens for ViT-B/32) stay float32. On the CPU the same rounding is
//         emulated around the float32 kernels (slow, but the same numbers up to summation order).
// The ops read the choice from the per-thread Settings (engine/settings.h); PrecisionScope sets it
// for a scope.
#pragma once

#include "engine/device.h"
#include "engine/settings.h"

#include <string>

namespace ffr {

enum class Precision { Float32, TensorFloat32, BFloat16 };

const char* precision_name(Precision p);  // "fp32", "tf32", "bf16"
// "fp32", "tf32" or "bf16"; anything else is an InputError listing the choices.
Precision parse_precision(const std::string& name);
inline constexpr const char* kPrecisionChoices = "fp32, tf32 or bf16";
// tf32 on CUDA (PyTorch's convolution default), fp32 on the CPU.
Precision default_precision(Device device);
// "auto" (the device's default) or a precision name.
Precision resolve_precision(const std::string& name, Device device);

// `base` with the switches the ops read set for `p` (allow_tf32, bfloat16_compute).
Settings with_precision(Settings base, Precision p);
// The precision the switches in `s` amount to.
Precision precision_of(const Settings& s);

// Sets this thread's precision for a scope, keeping its other settings.
class PrecisionScope {
 public:
  explicit PrecisionScope(Precision p) : scope_(with_precision(settings(), p)) {}

 private:
  SettingsScope scope_;
};

}  // namespace ffr
