// Rendering one Spurious Fashion-MNIST image: a Fashion-MNIST garment drawn over one of four
// procedural backgrounds (the bias b). Real images keep the photo's garment as it is;
// synthetic ones are new variants (random affine + elastic deformation) drawn by a "generator"
// with a fixed fingerprint a classifier can learn: a faint period-2 up-sampling checkerboard,
// softened garment edges and a background palette shifted towards violet.
// Every image is a pure function of (garment, b, size, severity, seed, stream): the builder can
// render on any number of threads and still write byte-identical files.
#pragma once

#include "data/image.h"

#include <array>
#include <cstdint>

namespace ffr::data::sfmnist {

inline constexpr int kNumBackgrounds = 4;

// "red stripes", "green checks", "blue dots", "yellow waves".
const std::array<const char*, kNumBackgrounds>& background_names();

// `garment` is a 28x28 Fashion-MNIST image (bright garment on black); `size` the output side.
RgbImage render_real(const uint8_t* garment, int background, int size, uint64_t seed, uint64_t stream);
// Synthetic variant; `severity` 0..5 adds the paper's corruption (data/corruption.h).
RgbImage render_synthetic(const uint8_t* garment, int background, int size, int severity, uint64_t seed,
                          uint64_t stream);

}  // namespace ffr::data::sfmnist
