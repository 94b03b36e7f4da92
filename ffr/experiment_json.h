// The run folder's JSON: ExperimentConfig (config.json, checkpoint metadata) and ExperimentResult
// (result.json). Numbers are written with round-trip precision, so a result read back equals the
// one written, and two deterministic runs give byte-identical metric fields.
#pragma once

#include "ffr/experiment.h"
#include "ffr/trainer.h"

#include <string>

namespace ffr {

std::string config_to_json(const ExperimentConfig& config);
// Keys absent from the text keep their defaults (older run folders stay readable); a key of the
// wrong type or an unknown enum value throws InputError naming `source` and the key.
ExperimentConfig config_from_json(const std::string& text, const std::string& source);

std::string result_to_json(const ExperimentResult& result);
ExperimentResult result_from_json(const std::string& text, const std::string& source);

// One split's metrics (as in result.json), one line: the resume file's record of the best epoch.
std::string split_metrics_to_json(const SplitMetrics& metrics);
SplitMetrics split_metrics_from_json(const std::string& text, const std::string& source);

// One metrics.jsonl line (no newline); a non-finite number is written as null and read as NaN.
std::string epoch_metrics_to_json(const EpochMetrics& metrics);
EpochMetrics epoch_metrics_from_json(const std::string& text, const std::string& source);

// True when the two configurations describe the same experiment (execution details that do not
// change the numbers, such as loader_workers, are ignored).
bool same_experiment(const ExperimentConfig& a, const ExperimentConfig& b);

}  // namespace ffr
