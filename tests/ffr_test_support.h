// Shared by the Ffr* suites: a tiny Spurious Fashion-MNIST (16 px, 40 real images per class) built
// once per test process in a temp folder, and a configuration that trains on it in well under a
// second (resnet_tiny, one epoch per stage).
#pragma once

#include "data/sfmnist_build.h"
#include "data_test_support.h"
#include "ffr/experiment.h"
#include "ffr/experiment_json.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include <unistd.h>

#include <filesystem>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

namespace ffr::testing {

class TinyDataSet {
 public:
  // The manifest path, building the data set on first use. Needs Fashion-MNIST: tests start with
  // FFR_REQUIRE_FASHION_MNIST().
  static const std::string& manifest() {
    static TinyDataSet instance;
    return instance.manifest_;
  }

 private:
  TinyDataSet()
      : dir_(std::filesystem::temp_directory_path() / ("ffr-tiny-sfm-" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(dir_);
    data::SpuriousFashionMnistConfig c;
    c.out = dir_ / "sfm";
    c.seed = 5;
    c.image_size = 16;
    c.real_per_class = 40;
    c.synthetic_source_per_class = 20;
    c.heldout_source_per_class = 4;
    c.synthetic_eval_per_group = 2;
    c.eval_per_class = 40;
    c.threads = 2;
    manifest_ = data::build_spurious_fashion_mnist(c).manifest.string();
  }
  ~TinyDataSet() {
    std::error_code ec;
    std::filesystem::remove_all(dir_, ec);
  }
  // Its own folder, not a TempDir: those are named after the running test and removed with it.
  std::filesystem::path dir_;
  std::string manifest_;
};

inline ExperimentConfig tiny_config(data::Augmentation augmentation, TrainingMethod method) {
  ExperimentConfig c;
  c.manifest = TinyDataSet::manifest();
  c.bias_ratio = 0.9;
  c.augmentation = augmentation;
  c.method = method;
  c.model = "resnet_tiny";
  c.learning_rate = 1e-3;
  c.stage1_learning_rate = 1e-3;
  c.epochs = 1;
  c.stage1_epochs = 1;
  c.batch_size = 64;
  c.device = "cpu";
  c.loader_workers = 1;
  return c;
}

inline std::vector<std::string> lines_of(const std::filesystem::path& file) {
  std::istringstream in(data::testing::read_file(file));
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// The numbers of a result (not its timing), for comparing runs.
inline std::string numbers_of(ExperimentResult r) {
  r.seconds = 0;
  r.device.clear();
  return result_to_json(r);
}

// metrics.jsonl without the timing fields.
inline std::vector<nlohmann::json> metrics_numbers(const std::filesystem::path& file) {
  std::vector<nlohmann::json> out;
  for (const std::string& line : lines_of(file)) {
    nlohmann::json j = nlohmann::json::parse(line);
    j.erase("seconds");
    j.erase("images_per_second");
    out.push_back(j);
  }
  return out;
}

#define FFR_REQUIRE_FASHION_MNIST()                                                          \
  do {                                                                                       \
    if (!::ffr::data::testing::have_fashion_mnist())                                         \
      GTEST_SKIP() << "dataset-fashion-mnist is not installed (apt-get install dataset-fashion-mnist)"; \
  } while (0)

}  // namespace ffr::testing
