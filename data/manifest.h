// The manifest: how every data set enters the engine (DESIGN.md, "Data: the manifest").
// A CSV (path,split,y,b,source [,orig_id,generator,prompt,prompt_kind]) plus a JSON sidecar beside it
// (class_names, bias_names, groups, image_size). The built-in Spurious Fashion-MNIST is
// written in the same format, so user data and ours go through one path.
#pragma once

#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace ffr::data {

enum class Split { Train, Val, Test };
enum class Source { Real, Synthetic };  // the paper's g
// How a synthetic image was prompted: "aware" names class and bias ("a photo of {bias} {class}",
// the paper's main data), "agnostic" the class only ("a photo of {class}", the paper's Table 5),
// with whatever bias the generator's own prior gave it (b records it where known). Optional
// column `prompt_kind`; absent or empty: aware (older manifests). Real images are always aware.
enum class PromptKind { Aware, Agnostic };

const char* split_name(Split split);    // "train", "val", "test"
const char* source_name(Source source); // "real", "synthetic"
const char* prompt_kind_name(PromptKind kind);  // "aware", "agnostic"

struct Sample {
  std::string path;  // as written in the CSV (relative to the manifest's root unless absolute)
  Split split = Split::Train;
  int y = 0;         // target class
  int b = 0;         // bias attribute
  Source source = Source::Real;
  std::string orig_id, generator, prompt;  // optional columns, "" when absent
  int line = 0;      // CSV line the sample came from (0 for samples built in memory)
  // Optional column, synthetic images only (after `line`, so brace-initialised samples keep working).
  PromptKind prompt_kind = PromptKind::Aware;
};

// The JSON sidecar.
struct DatasetInfo {
  std::vector<std::string> class_names;
  std::vector<std::string> bias_names;
  std::vector<std::pair<int, int>> groups;  // the (y, b) pairs that exist, in declared order
  int image_size = 0;                       // native side length of the images (square)
  // Optional: the majority bias value of each class. When absent, the protocol takes the most
  // frequent b of each class in the train split.
  std::vector<int> majority_bias;

  int num_classes() const { return int(class_names.size()); }
  int num_biases() const { return int(bias_names.size()); }
  bool has_group(int y, int b) const;
};

struct Manifest {
  std::filesystem::path csv_path;   // where it was read from / will be written to
  std::filesystem::path root;       // image paths are relative to this folder
  DatasetInfo info;
  std::vector<Sample> samples;

  // The image file of sample i (root / path, or path when absolute).
  std::filesystem::path image_path(size_t i) const;
  // "file.csv:LINE" for error messages about sample i.
  std::string where(size_t i) const;
};

// The sidecar of a manifest: same folder and stem, ".json".
std::filesystem::path sidecar_path(const std::filesystem::path& csv_path);

// Reads and validates a manifest and its sidecar. `root` overrides the image folder (default:
// the CSV's folder). Every problem throws one ffr::InputError naming the file and line.
Manifest read_manifest(const std::filesystem::path& csv_path,
                       const std::optional<std::filesystem::path>& root = std::nullopt);

// The same from the two files' text already in memory (read_manifest runs this code on what it
// reads; fuzz/manifest_fuzz.cpp calls it directly). `csv_path` names the CSV in errors and sets
// the manifest's csv_path and default root; sidecar errors name sidecar_path(csv_path).
Manifest parse_manifest_text(const std::string& csv_text, const std::string& json_text,
                             const std::filesystem::path& csv_path,
                             const std::optional<std::filesystem::path>& root = std::nullopt);

// Parses the sidecar alone (exposed for tests and tools).
DatasetInfo read_dataset_info(const std::filesystem::path& json_path);
// The same from JSON text; `name` labels errors ("<name>:<line>: ...").
DatasetInfo parse_dataset_info(const std::string& json_text, const std::string& name);

// Checks that every sample's labels and group fit `info`; throws naming manifest.where(i).
void validate_manifest(const Manifest& manifest);

// Writes manifest.csv_path and its sidecar, each atomically. Samples are written in order;
// optional columns are written only when some sample uses them.
void write_manifest(const Manifest& manifest);

}  // namespace ffr::data
