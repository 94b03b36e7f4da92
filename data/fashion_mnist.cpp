#include "data/fashion_mnist.h"

#include "engine/error.h"

#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace ffr::data {

const std::array<const char*, 10>& fashion_mnist_class_names() {
  static const std::array<const char*, 10> names = {"T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
                                                    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};
  return names;
}

int fashion_mnist_class(const std::string& name_or_label) {
  int label = -1;
  const char* end = name_or_label.data() + name_or_label.size();
  if (auto [p, ec] = std::from_chars(name_or_label.data(), end, label); ec == std::errc() && p == end) {
    if (label >= 0 && label < 10) return label;
  }
  auto lower = [](std::string s) {
    std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    return s;
  };
  const auto& names = fashion_mnist_class_names();
  for (int i = 0; i < 10; ++i) {
    if (lower(names[size_t(i)]) == lower(name_or_label)) return i;
  }
  std::string known;
  for (int i = 0; i < 10; ++i) known += detail::concat(i ? ", " : "", i, "=", names[size_t(i)]);
  throw InputError(detail::concat("unknown Fashion-MNIST class '", name_or_label, "' (known: ", known, ")"));
}

namespace {

std::string gunzip(const std::filesystem::path& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (!file) {
    throw InputError(detail::concat(path.string(), ": cannot open (is dataset-fashion-mnist installed? "
                                    "apt-get install dataset-fashion-mnist)"));
  }
  std::string out;
  char buffer[1 << 16];
  int n;
  while ((n = gzread(file, buffer, sizeof buffer)) > 0) out.append(buffer, size_t(n));
  int err = Z_OK;
  const char* message = gzerror(file, &err);
  gzclose(file);
  if (n < 0 || (err != Z_OK && err != Z_STREAM_END)) {
    throw InputError(detail::concat(path.string(), ": corrupt gzip data: ", message));
  }
  return out;
}

uint32_t big_endian_u32(const std::string& bytes, size_t at) {
  return uint32_t(uint8_t(bytes[at])) << 24 | uint32_t(uint8_t(bytes[at + 1])) << 16 |
         uint32_t(uint8_t(bytes[at + 2])) << 8 | uint32_t(uint8_t(bytes[at + 3]));
}

// IDX: magic (0x0000 08 <ndim>), ndim big-endian u32 sizes, then unsigned bytes.
std::vector<uint8_t> read_idx(const std::filesystem::path& path, int ndim, std::vector<uint32_t>& dims) {
  const std::string bytes = gunzip(path);
  const size_t header = 4 + 4 * size_t(ndim);
  if (bytes.size() < header || big_endian_u32(bytes, 0) != uint32_t(0x0800 + ndim)) {
    throw InputError(detail::concat(path.string(), ": not an IDX file of ", ndim, "-D unsigned bytes"));
  }
  size_t count = 1;
  dims.clear();
  for (int d = 0; d < ndim; ++d) {
    dims.push_back(big_endian_u32(bytes, 4 + 4 * size_t(d)));
    count *= dims.back();
  }
  if (bytes.size() != header + count) {
    throw InputError(detail::concat(path.string(), ": truncated (", bytes.size() - header, " of ", count,
                                    " data bytes)"));
  }
  return std::vector<uint8_t>(bytes.begin() + std::ptrdiff_t(header), bytes.end());
}

}  // namespace

FashionMnistSplit read_fashion_mnist(const std::filesystem::path& dir, bool train) {
  const std::string prefix = train ? "train" : "t10k";
  const auto image_path = dir / (prefix + "-images-idx3-ubyte.gz");
  const auto label_path = dir / (prefix + "-labels-idx1-ubyte.gz");
  std::vector<uint32_t> image_dims, label_dims;
  FashionMnistSplit split;
  split.pixels = read_idx(image_path, 3, image_dims);
  split.labels = read_idx(label_path, 1, label_dims);
  if (image_dims[1] != kFashionMnistSide || image_dims[2] != kFashionMnistSide) {
    throw InputError(detail::concat(image_path.string(), ": images are ", image_dims[1], "x", image_dims[2],
                                    ", expected 28x28"));
  }
  if (image_dims[0] != label_dims[0]) {
    throw InputError(detail::concat(label_path.string(), ": ", label_dims[0], " labels for ", image_dims[0],
                                    " images"));
  }
  for (uint8_t label : split.labels) {
    if (label > 9) throw InputError(detail::concat(label_path.string(), ": label ", int(label), " outside 0..9"));
  }
  split.count = int(image_dims[0]);
  return split;
}

}  // namespace ffr::data
