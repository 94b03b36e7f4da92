// Writes what tests/install_test.sh needs to check an outside build of examples/classify:
//   DIR/model.safetensors  a small zoo model (deterministic init) with the inference metadata
//   DIR/images/*.png       a few images of different sizes
//   DIR/images.txt         their paths, one a line, in the order to classify them
//   DIR/expected.txt       the library's own predictions for them, one line per image, in the
//                          format ffr_classify prints: "PATH<TAB>CLASS NAME<TAB>PROBABILITY"
#include "data/image.h"
#include "engine/rng.h"
#include "engine/safetensors.h"
#include "layers/inference.h"
#include "layers/model_zoo.h"

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s OUT_DIR\n", argv[0]);
    return 2;
  }
  try {
    namespace fs = std::filesystem;
    const fs::path dir = fs::absolute(argv[1]);
    fs::create_directories(dir / "images");

    ffr::Rng rng(20240611);
    std::unique_ptr<ffr::Classifier> model = ffr::make_model("resnet_tiny", 4, rng, 16);
    // Gradients, stripes and blocks at sizes above, below and at the model's input side.
    const int sizes[][2] = {{16, 16}, {40, 23}, {9, 31}, {64, 64}, {3, 5}};
    std::vector<std::string> paths;
    for (int i = 0; i < int(std::size(sizes)); ++i) {
      ffr::data::RgbImage image(sizes[i][0], sizes[i][1]);
      for (int y = 0; y < image.height; ++y) {
        for (int x = 0; x < image.width; ++x) {
          uint8_t* p = image.at(x, y);
          p[0] = uint8_t((x * 255) / image.width);
          p[1] = uint8_t(((x / (i + 1) + y) % 2) * 200 + 20 * i);
          p[2] = uint8_t((y * 255) / image.height ^ (i * 37));
        }
      }
      paths.push_back((dir / "images" / ("image" + std::to_string(i) + ".png")).string());
      ffr::data::write_png(paths.back(), image);
    }

    // A freshly initialised head gives every image the same class. Make it a nearest-centroid
    // head instead, with images 0-3 as the centroids (logit_c = -|f - p_c|^2 / 2 up to a shared
    // term: weight p_c, bias -|p_c|^2 / 2), so each class is predicted for some image.
    const std::string checkpoint = (dir / "model.safetensors").string();
    const std::map<std::string, std::string> metadata = {
        {"architecture", "resnet_tiny"},
        {"num_classes", "4"},
        {"image_size", "16"},
        {"class_names", R"(["T-shirt/top", "Pullover", "Sneaker", "Bag"])"}};
    ffr::NamedTensors state = model->state_dict();
    ffr::save_safetensors(checkpoint, state, metadata);
    const std::vector<std::string> prototypes(paths.begin(), paths.begin() + 4);
    const std::vector<ffr::Prediction> with_features =
        ffr::InferenceModel(checkpoint, {ffr::InferenceDevice::Cpu}).classify_files(prototypes, ffr::Features::Include);
    const float sharpness = 2.0f;  // probabilities well inside (0, 1), so the printed digits compare values
    std::vector<float> weight, bias;
    for (const ffr::Prediction& p : with_features) {
      float square = 0.0f;
      for (float f : p.features) {
        weight.push_back(sharpness * f);
        square += f * f;
      }
      bias.push_back(-0.5f * sharpness * square);
    }
    for (auto& [name, tensor] : state) {
      if (name == "fc.weight") tensor = ffr::Tensor::from_vector(weight, tensor.shape());
      if (name == "fc.bias") tensor = ffr::Tensor::from_vector(bias, tensor.shape());
    }
    ffr::save_safetensors(checkpoint, state, metadata);

    ffr::InferenceModel classifier(checkpoint, {ffr::InferenceDevice::Cpu});
    const std::vector<ffr::Prediction> predictions = classifier.classify_files(paths);
    std::ofstream list(dir / "images.txt"), expected(dir / "expected.txt");
    for (size_t i = 0; i < paths.size(); ++i) {
      char probability[32];
      std::snprintf(probability, sizeof probability, "%.6f", double(predictions[i].probability));
      list << paths[i] << "\n";
      expected << paths[i] << "\t" << classifier.class_name(predictions[i].class_index) << "\t" << probability << "\n";
    }
    return 0;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "ffr_embed_fixture: %s\n", e.what());
    return 1;
  }
}
