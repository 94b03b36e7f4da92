// Helpers shared by the data tests: a fresh temp folder per test, small files, and a way to
// assert that an InputError names what it should.
#pragma once

#include "data/image.h"
#include "engine/error.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <vector>

namespace ffr::data::testing {

// A unique folder under the system temp dir, deleted with everything in it when the test ends.
class TempDir {
 public:
  TempDir() {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    std::string name = std::string("ffr-") + (info ? info->test_suite_name() : "data") + "-" +
                       (info ? info->name() : "x") + "-" + std::to_string(::getpid());
    for (char& c : name) {
      if (c == '/') c = '_';
    }
    path_ = std::filesystem::temp_directory_path() / name;
    std::filesystem::remove_all(path_);
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  const std::filesystem::path& path() const { return path_; }
  std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

 private:
  std::filesystem::path path_;
};

inline void write_file(const std::filesystem::path& path, const std::string& contents) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << contents;
}

inline std::string read_file(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Every file under `root` (relative path -> bytes), for byte-identity checks.
inline std::vector<std::pair<std::string, std::string>> folder_contents(const std::filesystem::path& root) {
  std::vector<std::pair<std::string, std::string>> files;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(root)) {
    if (entry.is_regular_file()) {
      files.emplace_back(std::filesystem::relative(entry.path(), root).string(), read_file(entry.path()));
    }
  }
  std::sort(files.begin(), files.end());
  return files;
}

// Runs `body`, expects an ffr::InputError whose message holds every one of `parts`.
inline void expect_input_error(const std::function<void()>& body, const std::vector<std::string>& parts) {
  try {
    body();
    ADD_FAILURE() << "expected ffr::InputError mentioning " << (parts.empty() ? "" : parts.front());
  } catch (const InputError& e) {
    for (const std::string& part : parts) {
      EXPECT_NE(std::string(e.what()).find(part), std::string::npos)
          << "error \"" << e.what() << "\" does not mention \"" << part << "\"";
    }
  }
}

// The sidecar of a 2-class x 2-bias data set with all four groups.
inline std::string two_by_two_json(const std::string& groups = "[[0,0],[0,1],[1,0],[1,1]]") {
  return R"({"class_names": ["cat", "dog"], "bias_names": ["indoor", "outdoor"], "groups": )" + groups +
         R"(, "image_size": 4})";
}

// A solid-colour image, and a PNG of it written to `path`.
inline RgbImage solid_image(int w, int h, uint8_t r, uint8_t g, uint8_t b) {
  RgbImage image(w, h);
  for (size_t i = 0; i < image.pixels.size(); i += 3) {
    image.pixels[i] = r;
    image.pixels[i + 1] = g;
    image.pixels[i + 2] = b;
  }
  return image;
}

inline bool have_fashion_mnist() {
  return std::filesystem::exists("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
}

}  // namespace ffr::data::testing
