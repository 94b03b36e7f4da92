#include "engine/precision.h"

#include "engine/error.h"

namespace ffr {

const char* precision_name(Precision p) {
  switch (p) {
    case Precision::Float32: return "fp32";
    case Precision::TensorFloat32: return "tf32";
    case Precision::BFloat16: return "bf16";
  }
  return "?";
}

Precision parse_precision(const std::string& name) {
  if (name == "fp32") return Precision::Float32;
  if (name == "tf32") return Precision::TensorFloat32;
  if (name == "bf16") return Precision::BFloat16;
  throw InputError("precision must be " + std::string(kPrecisionChoices) + ", got '" + name + "'");
}

Precision default_precision(Device device) {
  return device.is_cuda() ? Precision::TensorFloat32 : Precision::Float32;
}

Precision resolve_precision(const std::string& name, Device device) {
  if (name == "auto") return default_precision(device);
  if (name == "fp32" || name == "tf32" || name == "bf16") return parse_precision(name);
  throw InputError("precision must be auto, " + std::string(kPrecisionChoices) + ", got '" + name + "'");
}

Settings with_precision(Settings base, Precision p) {
  base.allow_tf32 = p == Precision::TensorFloat32;
  base.bfloat16_compute = p == Precision::BFloat16;
  return base;
}

Precision precision_of(const Settings& s) {
  if (s.bfloat16_compute) return Precision::BFloat16;
  return s.allow_tf32 ? Precision::TensorFloat32 : Precision::Float32;
}

}  // namespace ffr
