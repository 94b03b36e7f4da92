// Numerical switches, per thread (so tests and concurrent users don't see each other's).
#pragma once

namespace ffr {

struct Settings {
  // float32 GEMMs/convolutions may use TF32 tensor cores (~1e-3 relative error).
  bool allow_tf32 = false;
  // Reductions with a fixed order: bit-identical results run to run (slower where atomics win).
  bool deterministic = false;
  // float32 matmul and conv2d compute on bfloat16-rounded inputs with float32 accumulation and a
  // bfloat16-rounded result (mixed precision; engine/precision.h).
  bool bfloat16_compute = false;
};

Settings& settings();

// Sets settings for a scope and restores the previous ones after.
class SettingsScope {
 public:
  explicit SettingsScope(const Settings& s) : saved_(settings()) { settings() = s; }
  ~SettingsScope() { settings() = saved_; }
  SettingsScope(const SettingsScope&) = delete;
  SettingsScope& operator=(const SettingsScope&) = delete;

 private:
  Settings saved_;
};

}  // namespace ffr
