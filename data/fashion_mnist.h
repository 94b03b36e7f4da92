// Fashion-MNIST from Debian's dataset-fashion-mnist (gzip'd IDX files), the real images behind
// the built-in Spurious Fashion-MNIST benchmark.
#pragma once

#include <array>
#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace ffr::data {

inline constexpr const char* kFashionMnistDir = "/usr/share/datasets/fashion-mnist";
inline constexpr int kFashionMnistSide = 28;

// The ten class names, in label order.
const std::array<const char*, 10>& fashion_mnist_class_names();

// Label of a class given by name ("Sneaker", case-insensitive) or number ("7").
// Throws ffr::InputError listing the names.
int fashion_mnist_class(const std::string& name_or_label);

struct FashionMnistSplit {
  int count = 0;
  std::vector<uint8_t> pixels;  // count x 28 x 28, grey, garment bright on black
  std::vector<uint8_t> labels;  // count
  const uint8_t* image(int i) const { return pixels.data() + size_t(i) * kFashionMnistSide * kFashionMnistSide; }
};

// Reads "<dir>/train-*" (train = true, 60k images) or "<dir>/t10k-*" (10k). Throws
// ffr::InputError naming the file when it is missing, truncated or not IDX.
FashionMnistSplit read_fashion_mnist(const std::filesystem::path& dir, bool train);

}  // namespace ffr::data
