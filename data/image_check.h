// Checks every image of a manifest before a long run meets a bad one: each file is read and its
// header checked (data/image.h, read_image_header: stb's info call and the decoder's own size and
// structure checks, no pixel decode). Every problem is collected, not just the first.
#pragma once

#include "data/manifest.h"

#include <string>
#include <vector>

namespace ffr::data {

struct ImageProblem {
  size_t sample = 0;     // index into manifest.samples
  std::string message;   // names the file and the manifest line
};

// The problems (missing, unreadable, undecodable files), in manifest order. `threads` >= 1.
std::vector<ImageProblem> check_manifest_images(const Manifest& manifest, int threads = 4);

}  // namespace ffr::data
