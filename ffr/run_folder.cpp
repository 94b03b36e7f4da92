#include "ffr/run_folder.h"

#include "data/csv.h"
#include "engine/atomic_file.h"
#include "engine/build_info.h"
#include "engine/error.h"
#include "ffr/experiment_json.h"

#include <nlohmann/json.hpp>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>

namespace fs = std::filesystem;

namespace ffr {

namespace {

const char* const kRunFiles[] = {kConfigFile, kMetricsFile, kGroupsFile, kCheckpointFile, kResultFile, kResumeFile};

// write_file_atomically's temp names: ".<name>.tmp.<pid>.<n>".
bool is_temp_of_run_file(const std::string& name) {
  for (const char* file : kRunFiles) {
    const std::string prefix = std::string(".") + file + ".tmp.";
    if (name.compare(0, prefix.size(), prefix) == 0) return true;
  }
  return false;
}

std::string number_text(double v) {
  if (!std::isfinite(v)) return "";
  char buffer[32];
  std::snprintf(buffer, sizeof buffer, "%.6f", v);
  return buffer;
}

}  // namespace

std::string RunFolder::path(const char* file) const { return (fs::path(dir_) / file).string(); }

bool RunFolder::complete() const { return fs::exists(path(kResultFile)); }

void RunFolder::start_fresh() const {
  std::error_code ec;
  fs::create_directories(dir_, ec);
  if (ec) throw InputError(dir_ + ": cannot create the run folder: " + ec.message());
  for (const char* file : kRunFiles) fs::remove(path(file), ec);
  remove_temporary_files();
}

void RunFolder::remove_temporary_files() const {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir_)) {
    if (is_temp_of_run_file(entry.path().filename().string())) fs::remove(entry.path(), ec);
  }
}

// The build that wrote a file, as its "engine" key (engine/build_info.h). Readers ignore the key,
// so it does not take part in matching runs; it is constant within a build.
static std::string with_engine(const std::string& json_text) {
  nlohmann::json doc = nlohmann::json::parse(json_text);
  doc["engine"] = nlohmann::json::parse(build_info_json());
  return doc.dump(2) + "\n";
}

void RunFolder::write_config(const ExperimentConfig& config) const {
  write_text_atomically(path(kConfigFile), with_engine(config_to_json(config)));
}

void RunFolder::append_metrics(const EpochMetrics& m) const {
  const std::string file = path(kMetricsFile);
  std::FILE* f = std::fopen(file.c_str(), "a");
  if (!f) throw Error(file + ": cannot open for appending: " + std::strerror(errno));
  const std::string text = epoch_metrics_to_json(m) + "\n";
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) throw Error(file + ": write failed: " + std::strerror(errno));
}

void RunFolder::write_metrics(const std::vector<EpochMetrics>& metrics) const {
  std::string text;
  for (const EpochMetrics& m : metrics) text += epoch_metrics_to_json(m) + "\n";
  write_text_atomically(path(kMetricsFile), text);
}

std::string groups_csv(const ExperimentResult& result, const data::DatasetInfo& info) {
  std::string text = data::csv_line({"split", "y", "b", "class", "bias", "correct", "total", "accuracy"});
  auto rows = [&](const char* split, const SplitMetrics& m) {
    for (const GroupAccuracy& g : m.groups) {
      const std::string class_name = g.y < info.num_classes() ? info.class_names[size_t(g.y)] : "";
      const std::string bias_name = g.b < info.num_biases() ? info.bias_names[size_t(g.b)] : "";
      text += data::csv_line({split, std::to_string(g.y), std::to_string(g.b), class_name, bias_name,
                              std::to_string(g.correct), std::to_string(g.total),
                              g.total > 0 ? number_text(g.accuracy()) : ""});
    }
  };
  rows("test", result.test);
  rows("val", result.val);
  rows("test_synthetic", result.test_synthetic);
  return text;
}

void RunFolder::write_groups(const ExperimentResult& result, const data::DatasetInfo& info) const {
  write_text_atomically(path(kGroupsFile), groups_csv(result, info));
}

void RunFolder::write_result(const ExperimentResult& result) const {
  write_text_atomically(path(kResultFile), with_engine(result_to_json(result)));
}

}  // namespace ffr
