// Flag checks whose messages read well ("--epochs: must be >= 1, got 0"); CLI11's own number
// ranges print the whole double range.
#pragma once

#include "layers/model_zoo.h"

#include <CLI/CLI.hpp>

#include <string>
#include <vector>

namespace ffr::bench {

// A number > 0 (integer flags are parsed as integers afterwards by CLI11 itself).
inline CLI::Validator positive() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        try {
          if (std::stod(value) > 0) return "";
        } catch (const std::exception&) {
        }
        return "must be > 0, got " + value;
      },
      "> 0");
}

inline CLI::Validator non_negative() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        try {
          if (std::stod(value) >= 0) return "";
        } catch (const std::exception&) {
        }
        return "must be >= 0, got " + value;
      },
      ">= 0");
}

// A bias ratio: strictly between 0 and 1 (0 and 1 mean nothing).
inline CLI::Validator open_unit_interval() {
  return CLI::Validator(
      [](std::string& value) -> std::string {
        try {
          const double v = std::stod(value);
          if (v > 0.0 && v < 1.0) return "";
        } catch (const std::exception&) {
        }
        return "must be a number in (0, 1), got " + value;
      },
      "in (0, 1)");
}

// The model zoo's names (ffr-bench models), for CLI::IsMember: --help lists them, a typo is refused.
inline std::vector<std::string> model_names() {
  std::vector<std::string> names;
  for (const ModelInfo& m : available_models()) names.push_back(m.name);
  return names;
}

}  // namespace ffr::bench
