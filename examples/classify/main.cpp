// ffr_classify [--device auto|cpu|cuda] CHECKPOINT IMAGE...
// Prints one line per image: "IMAGE<TAB>CLASS<TAB>PROBABILITY" (the predicted class's name from
// the checkpoint, or its index, and its softmax probability).
#include <ffr_engine/inference.h>

#include <cstdio>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

int main(int argc, char** argv) {
  ffr::InferenceOptions options;
  int first = 1;
  if (argc > 2 && std::strcmp(argv[1], "--device") == 0) {
    const std::string device = argv[2];
    if (device == "cpu") options.device = ffr::InferenceDevice::Cpu;
    else if (device == "cuda") options.device = ffr::InferenceDevice::Cuda;
    else if (device != "auto") {
      std::fprintf(stderr, "ffr_classify: --device must be auto, cpu or cuda, got '%s'\n", device.c_str());
      return 2;
    }
    first = 3;
  }
  if (argc - first < 2) {
    std::fprintf(stderr, "usage: %s [--device auto|cpu|cuda] CHECKPOINT IMAGE...\n", argv[0]);
    return 2;
  }
  try {
    ffr::InferenceModel model(argv[first], options);
    const std::vector<std::string> images(argv + first + 1, argv + argc);
    const std::vector<ffr::Prediction> predictions = model.classify_files(images);
    for (size_t i = 0; i < images.size(); ++i) {
      std::printf("%s\t%s\t%.6f\n", images[i].c_str(), model.class_name(predictions[i].class_index).c_str(),
                  double(predictions[i].probability));
    }
    return 0;
  } catch (const ffr::InputError& e) {  // bad checkpoint, unreadable image, no GPU for --device cuda, ...
    std::fprintf(stderr, "ffr_classify: %s\n", e.what());
    return 1;
  } catch (const std::exception& e) {  // out of memory, a device error
    std::fprintf(stderr, "ffr_classify: error: %s\n", e.what());
    return 1;
  }
}
