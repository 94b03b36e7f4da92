// Shared by the data_import_* suites: tiny fake archives, laid out and named as the real ones,
// with real (4x4 PNG) images, and what an imported manifest holds per (split, y, b).
#pragma once

#include "data/image.h"
#include "data/import/imported_manifest.h"
#include "data/manifest.h"
#include "data_test_support.h"

#include <filesystem>
#include <map>
#include <string>
#include <tuple>

namespace ffr::data::testing {

// A 4x4 PNG at `path`, its folders made. (Real archives hold JPEGs; the importers do not read
// the pixels, and the loader reads PNG and JPEG alike.)
inline void write_image(const std::filesystem::path& path, uint8_t shade = 128) {
  std::filesystem::create_directories(path.parent_path());
  write_png(path, solid_image(4, 4, shade, uint8_t(255 - shade), 40));
}

// Sample counts keyed by (split, y, b).
using GroupCountsBySplit = std::map<std::tuple<std::string, int, int>, int>;

inline GroupCountsBySplit counts_of(const Manifest& m) {
  GroupCountsBySplit out;
  for (const Sample& s : m.samples) ++out[{split_name(s.split), s.y, s.b}];
  return out;
}

// Imports to `out`, writes, and reads the written files back through the ordinary reader (so
// every test also checks that the manifest is valid and its paths resolve from its own folder).
template <typename Import>
Manifest import_and_read_back(Import&& import, const std::filesystem::path& out) {
  ImportResult r = import();
  write_imported_manifest(r.manifest);
  Manifest m = read_manifest(out);
  for (size_t i = 0; i < m.samples.size(); ++i) {
    EXPECT_TRUE(std::filesystem::exists(m.image_path(i))) << m.where(i) << ": " << m.image_path(i);
    EXPECT_FALSE(std::filesystem::path(m.samples[i].path).is_absolute()) << m.samples[i].path;
  }
  return m;
}

}  // namespace ffr::data::testing
