#include "data/import/imported_manifest.h"

#include "data/image.h"
#include "engine/error.h"
#include "engine/rng.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <map>
#include <set>

namespace ffr::data {

namespace fs = std::filesystem;

void check_split_fractions(const SplitFractions& f) {
  if (!(f.val >= 0.0 && f.val < 1.0))
    throw InputError(detail::concat("--val-fraction: must be in [0, 1), got ", f.val));
  if (!(f.test >= 0.0 && f.test < 1.0))
    throw InputError(detail::concat("--test-fraction: must be in [0, 1), got ", f.test));
  if (!(f.val + f.test < 1.0)) {
    throw InputError(
        detail::concat("--val-fraction ", f.val, " + --test-fraction ", f.test, " leave nothing to train on"));
  }
}

void assign_seeded_split(std::vector<Sample>& samples, const SplitFractions& fractions, uint64_t seed) {
  check_split_fractions(fractions);
  std::map<std::pair<int, int>, std::vector<size_t>> groups;
  for (size_t i = 0; i < samples.size(); ++i) groups[{samples[i].y, samples[i].b}].push_back(i);
  Rng rng(seed, /*stream=*/301);
  for (auto& [group, members] : groups) {
    // Fisher-Yates with the project's counter-based generator: the same split on every platform.
    for (size_t i = members.size(); i > 1; --i) std::swap(members[i - 1], members[size_t(rng.below(i))]);
    const double n = double(members.size());
    const size_t val = size_t(std::llround(n * fractions.val));
    const size_t test = std::min(members.size() - val, size_t(std::llround(n * fractions.test)));
    for (size_t k = 0; k < members.size(); ++k) {
      samples[members[k]].split = k < val ? Split::Val : k < val + test ? Split::Test : Split::Train;
    }
  }
}

std::string path_for_manifest(const fs::path& image, const fs::path& manifest_csv) {
  const fs::path folder = fs::absolute(manifest_csv).parent_path().lexically_normal();
  return fs::absolute(image).lexically_normal().lexically_relative(folder).generic_string();
}

std::vector<fs::path> list_images(const fs::path& folder) {
  if (!fs::is_directory(folder)) throw InputError(folder.string() + ": no such folder");
  std::vector<fs::path> out;
  for (const auto& entry : fs::recursive_directory_iterator(folder, fs::directory_options::follow_directory_symlink)) {
    if (!entry.is_regular_file()) continue;
    std::string ext = entry.path().extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return char(std::tolower(c)); });
    if (ext == ".jpg" || ext == ".jpeg" || ext == ".png") out.push_back(entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void finish_manifest(Manifest& m, const ImportCommon& common) {
  if (common.out.empty()) throw InputError("--out: required");
  m.csv_path = common.out;
  m.root = fs::absolute(common.out).parent_path();
  if (m.samples.empty()) throw InputError("the archive gave no images: nothing to write to " + common.out.string());
  std::set<std::pair<int, int>> present;
  for (const Sample& s : m.samples) present.insert({s.y, s.b});
  m.info.groups.assign(present.begin(), present.end());
  m.info.image_size = common.image_size;
  if (m.info.image_size <= 0) {
    // Normalised: the output folder may not exist yet, and "out/../images" does not resolve through it.
    const ImageHeader first =
        read_image_header(m.image_path(0).lexically_normal(), "the first image, for the sidecar's image_size");
    m.info.image_size = first.width;
  }
  validate_manifest(m);
}

void write_imported_manifest(const Manifest& manifest) {
  const fs::path folder = fs::absolute(manifest.csv_path).parent_path();
  std::error_code ec;
  fs::create_directories(folder, ec);
  if (ec) throw InputError(folder.string() + ": cannot create the output folder (" + ec.message() + ")");
  write_manifest(manifest);
}

}  // namespace ffr::data
