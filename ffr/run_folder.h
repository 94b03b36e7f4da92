// A run folder (DESIGN.md): config.json, metrics.jsonl, groups.csv, best.safetensors and, last,
// result.json; while the run is unfinished, resume.safetensors (ffr/resume_state.h). Everything
// but metrics.jsonl is written atomically (a resumed run rewrites that one whole); result.json's
// presence is what marks a run complete, so a killed run leaves a folder the next call recognises
// and resumes, or cleans.
#pragma once

#include "data/manifest.h"
#include "ffr/experiment.h"
#include "ffr/trainer.h"

#include <string>

namespace ffr {

class RunFolder {
 public:
  explicit RunFolder(std::string dir) : dir_(std::move(dir)) {}

  const std::string& dir() const { return dir_; }
  std::string path(const char* file) const;
  bool complete() const;  // result.json exists

  // Creates the folder, removing what an unfinished run left (the run's own files and their
  // temporary files only: anything else in the folder is left alone).
  void start_fresh() const;
  // Removes only the temporary files of interrupted atomic writes (a run that resumes).
  void remove_temporary_files() const;

  void write_config(const ExperimentConfig& config) const;
  void append_metrics(const EpochMetrics& metrics) const;
  // Replaces metrics.jsonl (atomically) with these lines: a resumed run's history.
  void write_metrics(const std::vector<EpochMetrics>& metrics) const;
  // The per-group table: one row per (split, group) for val, test and held-out synthetic test.
  void write_groups(const ExperimentResult& result, const data::DatasetInfo& info) const;
  void write_result(const ExperimentResult& result) const;

 private:
  std::string dir_;
};

// groups.csv's text (exposed for the report writer and tests).
std::string groups_csv(const ExperimentResult& result, const data::DatasetInfo& info);

}  // namespace ffr
