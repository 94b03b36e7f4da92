#include "data/image_check.h"

#include "data/image.h"
#include "engine/error.h"

#include <algorithm>
#include <atomic>
#include <thread>

namespace ffr::data {

std::vector<ImageProblem> check_manifest_images(const Manifest& manifest, int threads) {
  FFR_CHECK(threads >= 1, "check_manifest_images: threads must be >= 1, got ", threads);
  const size_t n = manifest.samples.size();
  std::vector<std::string> messages(n);  // one slot per sample: no locking, manifest order kept
  std::atomic<size_t> next{0};
  auto work = [&] {
    for (size_t i = next++; i < n; i = next++) {
      try {
        read_image_header(manifest.image_path(i), manifest.where(i));
      } catch (const InputError& e) {
        messages[i] = e.what();
      }
    }
  };
  std::vector<std::thread> pool;
  for (int t = 1; t < std::min<int>(threads, int(std::max<size_t>(n, 1))); ++t) pool.emplace_back(work);
  work();
  for (std::thread& t : pool) t.join();
  std::vector<ImageProblem> problems;
  for (size_t i = 0; i < n; ++i) {
    if (!messages[i].empty()) problems.push_back({i, messages[i]});
  }
  return problems;
}

}  // namespace ffr::data
