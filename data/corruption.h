// The paper's synthetic-image quality knob (its Table 4): pixelate + defocus blur + gaussian
// noise at severity 1..5, with ImageNet-C's constants (Hendrycks & Dietterich, 2019). Those
// constants are for 224-pixel images; lengths (blur radius) scale with the image side so a
// severity means the same relative damage at any size.
#pragma once

#include "data/image.h"
#include "engine/rng.h"

namespace ffr::data {

inline constexpr int kMaxSeverity = 5;

// Applies pixelate, then defocus blur, then gaussian noise, in place. Severity 0 is a no-op.
// Throws ffr::InputError for a severity outside 0..5.
void corrupt(RgbImage& image, int severity, Rng& rng);

}  // namespace ffr::data
