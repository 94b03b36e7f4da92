#include "layers/init.h"

#include <cmath>

namespace ffr::init {

Tensor default_uniform(const Shape& shape, int64_t fan_in, Rng& rng) {
  const double bound = fan_in > 0 ? 1.0 / std::sqrt(double(fan_in)) : 0.0;
  return Tensor::uniform(shape, -bound, bound, rng);
}

Tensor kaiming_normal_fan_out(const Shape& shape, int64_t fan_out, Rng& rng) {
  return Tensor::normal(shape, 0.0, std::sqrt(2.0 / double(fan_out)), rng);
}

Tensor trunc_normal(const Shape& shape, double stddev, Rng& rng) {
  // A bulk normal fill, then the ~4.6% of draws beyond 2 std are drawn again one by one.
  Tensor t = Tensor::normal(shape, 0.0, 1.0, rng);
  float* p = t.data<float>();
  for (int64_t i = 0; i < t.numel(); ++i) {
    double v = p[i];
    while (std::abs(v) > 2.0) v = rng.normal();
    p[i] = float(v * stddev);
  }
  return t;
}

}  // namespace ffr::init
