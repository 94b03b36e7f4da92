#include "ffr/report.h"

#include "data/csv.h"
#include "data/manifest.h"
#include "engine/atomic_file.h"
#include "engine/build_info.h"
#include "engine/error.h"
#include "ffr/stage1_search.h"
#include "ffr/svg_plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <set>
#include <sstream>

namespace ffr {
namespace {

namespace fs = std::filesystem;

std::string printf_string(const char* format, double v) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, v);
  return buffer;
}

// "72.6 ± 2.3" in percent; one seed shows no ±, none shows a dash.
std::string percent(const MeanStd& m) {
  if (m.n == 0) return "–";
  if (m.n == 1) return printf_string("%.1f", 100.0 * m.mean);
  return printf_string("%.1f", 100.0 * m.mean) + " ± " + printf_string("%.1f", 100.0 * m.std);
}

// "1e-05", "2.5e-04": the exponent form researchers write learning rates in, no trailing zeros.
std::string learning_rate_text(double lr) {
  std::string text = printf_string("%.3e", lr);
  const size_t e = text.find('e');
  size_t end = e;
  while (end > 0 && text[end - 1] == '0') --end;
  if (end > 0 && text[end - 1] == '.') --end;
  return text.substr(0, end) + text.substr(e);
}

std::string setting_text(const HyperParameters& h, bool with_batch_norm) {
  std::string text = learning_rate_text(h.learning_rate);
  if (with_batch_norm) text += h.freeze_batch_norm ? ", BN frozen" : ", BN trained";
  return text;
}

std::string hours(double seconds) {
  if (seconds < 120) return printf_string("%.1f s", seconds);
  if (seconds < 7200) return printf_string("%.1f min", seconds / 60);
  return printf_string("%.2f h", seconds / 3600);
}

std::string file_safe(const std::string& text) {
  std::string out;
  for (char c : text) out += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ? c : '_';
  return out;
}

// Group names from the manifest's sidecar when it is readable here ("y=1 b=0" otherwise).
std::string group_name(const GridCell& cell, int y, int b) {
  try {
    const data::DatasetInfo info = data::read_dataset_info(data::sidecar_path(cell.config.manifest));
    if (y < info.num_classes() && b < info.num_biases()) {
      return info.class_names[size_t(y)] + " / " + info.bias_names[size_t(b)];
    }
  } catch (const std::exception&) {
  }
  return "";
}

bool has_synthetic_columns(const ExperimentSummary& e) { return e.name == "table3"; }

bool tunes_batch_norm(const GridSummary& s, const ExperimentSummary& e) {
  if (s.grid.freeze_batch_norm.size() < 2) return false;
  for (size_t i : e.cells) {
    if (s.cells[i].settings.size() > s.grid.learning_rates.size()) return true;
  }
  return false;
}

bool has_severity(const GridSummary& s, const ExperimentSummary& e) {
  for (size_t i : e.cells) {
    if (s.cells[i].cell.severity >= 0) return true;
  }
  return false;
}

std::vector<double> distinct_ratios(const GridSummary& s, const ExperimentSummary& e) {
  std::set<double> ratios;
  for (size_t i : e.cells) ratios.insert(s.cells[i].cell.config.bias_ratio);
  return {ratios.begin(), ratios.end()};
}

// ---- markdown ---------------------------------------------------------------------------------

struct Table {
  std::vector<std::string> header;
  std::vector<std::vector<std::string>> rows;
  size_t text_columns = 1;  // the leading columns that name the row: left-aligned; numbers right

  std::string markdown() const {
    std::string out = "|";
    for (const auto& h : header) out += " " + h + " |";
    out += "\n|";
    for (size_t i = 0; i < header.size(); ++i) out += i < text_columns ? "---|" : "---:|";
    out += "\n";
    for (const auto& row : rows) {
      out += "|";
      for (const auto& cell : row) out += " " + cell + " |";
      out += "\n";
    }
    return out;
  }

  // Aligned columns for the terminal.
  std::string plain() const {
    std::vector<size_t> width(header.size(), 0);
    auto measure = [&](const std::vector<std::string>& row) {
      for (size_t i = 0; i < row.size() && i < width.size(); ++i) {
        // "±" and "–" are 2-3 bytes but one column.
        size_t chars = 0;
        for (unsigned char c : row[i]) chars += (c & 0xC0) != 0x80;
        width[i] = std::max(width[i], chars);
      }
    };
    measure(header);
    for (const auto& row : rows) measure(row);
    auto line = [&](const std::vector<std::string>& row) {
      std::string out;
      for (size_t i = 0; i < row.size(); ++i) {
        size_t chars = 0;
        for (unsigned char c : row[i]) chars += (c & 0xC0) != 0x80;
        const std::string pad(width[i] - std::min(width[i], chars), ' ');
        out += "  " + (i < text_columns ? row[i] + pad : pad + row[i]);
      }
      return out + "\n";
    };
    std::string out = line(header);
    for (const auto& row : rows) out += line(row);
    return out;
  }
};

Table variant_table(const ExperimentSummary& e) {
  Table t;
  const bool synthetic = has_synthetic_columns(e);
  t.header = {"row", "WA", "BA"};
  if (synthetic) t.header.insert(t.header.end(), {"WA synthetic", "BA synthetic"});
  t.header.insert(t.header.end(), {"cells", "seeds"});
  for (const VariantSummary& v : e.variants) {
    std::vector<std::string> row = {v.label, percent(v.test_wa), percent(v.test_ba)};
    if (synthetic) row.insert(row.end(), {percent(v.synthetic_wa), percent(v.synthetic_ba)});
    row.push_back(detail::concat(v.cells_used, "/", v.cells));
    row.push_back(std::to_string(v.seeds.size()));
    t.rows.push_back(row);
  }
  return t;
}

// Figure 4's layout: augmentation modes down, training methods across, "WA / BA" in each cell.
Table method_matrix(const GridSummary& s, const ExperimentSummary& e) {
  std::vector<data::Augmentation> augmentations;
  std::vector<TrainingMethod> methods;
  std::map<std::pair<int, int>, const VariantSummary*> at;
  for (const VariantSummary& v : e.variants) {
    const ExperimentConfig& c = s.cells[v.first_cell].cell.config;
    if (std::find(augmentations.begin(), augmentations.end(), c.augmentation) == augmentations.end()) {
      augmentations.push_back(c.augmentation);
    }
    if (std::find(methods.begin(), methods.end(), c.method) == methods.end()) methods.push_back(c.method);
    at[{int(c.augmentation), int(c.method)}] = &v;
  }
  Table t;
  t.header = {"WA / BA"};
  for (TrainingMethod m : methods) t.header.push_back(display_name(m));
  for (data::Augmentation a : augmentations) {
    std::vector<std::string> row = {display_name(a)};
    for (TrainingMethod m : methods) {
      const auto it = at.find({int(a), int(m)});
      const VariantSummary* v = it == at.end() ? nullptr : it->second;
      row.push_back(v && v->test_wa.n ? printf_string("%.1f", 100 * v->test_wa.mean) + " / " +
                                            printf_string("%.1f", 100 * v->test_ba.mean)
                                      : "–");
    }
    t.rows.push_back(row);
  }
  return t;
}

// DFR's chosen C of each seed, "0.3, 1".
std::string dfr_c_text(const std::vector<double>& values, const char* separator) {
  std::string out;
  for (double v : values) out += (out.empty() ? "" : separator) + printf_string("%g", v);
  return out;
}

Table cell_table(const GridSummary& s, const ExperimentSummary& e) {
  const bool synthetic = has_synthetic_columns(e), severity = has_severity(s, e), bn = tunes_batch_norm(s, e);
  Table t;
  t.header = {"data set", "ratio"};
  if (severity) t.header.push_back("severity");
  t.header.insert(t.header.end(), {"row", "WA", "BA"});
  t.text_columns = t.header.size() - 2;
  if (synthetic) t.header.insert(t.header.end(), {"WA synthetic", "BA synthetic"});
  t.header.insert(t.header.end(), {"val WA", "chosen", "seeds"});
  for (size_t i : e.cells) {
    const CellSummary& c = s.cells[i];
    std::vector<std::string> row = {c.cell.dataset, printf_string("%g", c.cell.config.bias_ratio)};
    if (severity) row.push_back(c.cell.severity >= 0 ? std::to_string(c.cell.severity) : "");
    row.insert(row.end(), {c.cell.label + (c.runs_complete < c.runs_planned ? " *" : ""), percent(c.test_wa),
                           percent(c.test_ba)});
    if (synthetic) row.insert(row.end(), {percent(c.synthetic_wa), percent(c.synthetic_ba)});
    row.push_back(percent(c.val_wa));
    // Frozen or trained BN is a choice only where the cell tried both (full FFR).
    const bool tried_bn = bn && std::any_of(c.settings.begin(), c.settings.end(), [](const SettingSummary& st) {
                            return st.hyper_parameters.freeze_batch_norm;
                          });
    std::string chosen = c.chosen_setting() ? setting_text(c.chosen_setting()->hyper_parameters, tried_bn) : "–";
    if (searches_stage1(s.grid, c.cell)) {
      chosen += std::isfinite(c.cell.config.stage1_learning_rate)
                    ? "; stage 1 lr " + learning_rate_text(c.cell.config.stage1_learning_rate)
                    : std::string("; stage 1 lr not chosen yet");
    }
    if (!c.dfr_c.empty()) chosen += "; DFR C " + dfr_c_text(c.dfr_c, ", ");  // per seed
    row.push_back(chosen);
    row.push_back(detail::concat(c.chosen_setting() ? c.chosen_setting()->seeds.size() : 0, "/", c.seeds_planned));
    t.rows.push_back(row);
  }
  return t;
}

// The per-group table behind the experiment's best row (highest mean test WA, then BA).
std::string best_cell_groups(const GridSummary& s, const ExperimentSummary& e) {
  const CellSummary* best = nullptr;
  for (size_t i : e.cells) {
    const CellSummary& c = s.cells[i];
    if (c.chosen < 0 || c.test_wa.n == 0) continue;
    if (!best || std::make_pair(c.test_wa.mean, c.test_ba.mean) > std::make_pair(best->test_wa.mean, best->test_ba.mean)) {
      best = &c;
    }
  }
  if (!best) return "";
  std::ostringstream out;
  out << "### Per-group test accuracy of the best row\n\n"
      << best->cell.label << " on " << best->cell.dataset << " at ratio " << printf_string("%g", best->cell.config.bias_ratio)
      << (best->cell.severity >= 0 ? detail::concat(", severity ", best->cell.severity) : "")
      << " (WA " << percent(best->test_wa) << ", BA " << percent(best->test_ba) << ", "
      << best->chosen_setting()->seeds.size() << " seeds):\n\n";
  Table t;
  t.header = {"y", "b", "group", "accuracy"};
  t.text_columns = 3;
  for (const GroupSummary& g : best->test_groups) {
    t.rows.push_back({std::to_string(g.y), std::to_string(g.b), group_name(best->cell, g.y, g.b), percent(g.accuracy)});
  }
  out << t.markdown() << "\n";
  return out.str();
}

struct PlotFile {
  std::string file;  // name inside the out folder
  LinePlot plot;
};

// WA and BA against the bias ratio, per (experiment, data set, method), one line per row label.
std::vector<PlotFile> make_plots(const GridSummary& s, const ExperimentSummary& e) {
  const std::vector<double> ratios = distinct_ratios(s, e);
  if (ratios.size() < 2) return {};
  std::vector<std::pair<std::string, TrainingMethod>> groups;
  for (size_t i : e.cells) {
    const auto key = std::make_pair(s.cells[i].cell.dataset, s.cells[i].cell.config.method);
    if (std::find(groups.begin(), groups.end(), key) == groups.end()) groups.push_back(key);
  }
  std::vector<PlotFile> files;
  for (const auto& [dataset, method] : groups) {
    for (const bool worst : {true, false}) {
      PlotFile f;
      f.file = file_safe(detail::concat(e.name, "-", dataset, "-", method_name(method))) + (worst ? "-wa.svg" : "-ba.svg");
      LinePlot& p = f.plot;
      p.title = detail::concat(e.name, ": ", dataset, ", ", display_name(method), worst ? ", worst-group accuracy" : ", balanced accuracy");
      p.x_label = "bias ratio";
      p.y_label = worst ? "test WA (%), mean ± std over seeds" : "test BA (%), mean ± std over seeds";
      p.y_lower_bound = 0.0;
      p.y_upper_bound = 100.0;
      p.y_min_span = 10.0;
      for (double r : ratios) p.x_ticks.push_back(printf_string("%g", r));
      for (size_t i : e.cells) {
        const CellSummary& c = s.cells[i];
        if (c.cell.dataset != dataset || c.cell.config.method != method) continue;
        auto series = std::find_if(p.series.begin(), p.series.end(), [&](const PlotSeries& x) { return x.name == c.cell.label; });
        if (series == p.series.end()) {
          p.series.push_back({c.cell.label, std::vector<double>(ratios.size(), std::nan("")), std::vector<double>(ratios.size(), 0.0)});
          series = p.series.end() - 1;
        }
        const size_t x = size_t(std::find(ratios.begin(), ratios.end(), c.cell.config.bias_ratio) - ratios.begin());
        const MeanStd& m = worst ? c.test_wa : c.test_ba;
        if (m.n > 0) {
          series->y[x] = 100.0 * m.mean;
          series->error[x] = m.n > 1 ? 100.0 * m.std : 0.0;
        }
      }
      files.push_back(std::move(f));
    }
  }
  return files;
}

std::string experiment_title(const std::string& name) {
  const std::string description = preset_description(name);
  return description.empty() ? name : name + ": " + description;
}

// The distinct values of one setting over the grid's cells, in first-seen order ("20" or "10, 20").
template <typename Field>
std::string distinct_values(const Grid& grid, Field field) {
  std::vector<std::string> seen;
  for (const GridCell& cell : grid.cells) {
    const std::string v = field(cell.config);
    if (std::find(seen.begin(), seen.end(), v) == seen.end()) seen.push_back(v);
  }
  std::string text;
  for (const std::string& v : seen) text += (text.empty() ? "" : ", ") + v;
  return text.empty() ? "–" : text;
}

// What the numbers were produced with: the training settings (as the cells hold them) and the
// engine build (engine/build_info.h), so that report.md alone says how to reproduce it.
std::string comma_list(const std::vector<std::string>& items) {
  std::string out;
  for (const std::string& item : items) out += (out.empty() ? "" : ", ") + item;
  return out;
}

std::string rate_list(const std::vector<double>& rates) {
  std::vector<std::string> texts;
  for (double r : rates) texts.push_back(learning_rate_text(r));
  return "{" + comma_list(texts) + "}";
}

std::string settings_markdown(const GridSummary& s, const std::string& seeds, const std::string& lrs) {
  const Grid& g = s.grid;
  auto number = [](auto v) { return detail::concat(v); };
  std::ostringstream md;
  md << "## Settings\n\n"
     << "- Model: " << distinct_values(g, [](const ExperimentConfig& c) { return c.model; }) << "\n"
     << "- Epochs (fine-tuning or only stage): "
     << distinct_values(g, [&](const ExperimentConfig& c) { return number(c.epochs); })
     << "; FFR stage 1: " << distinct_values(g, [&](const ExperimentConfig& c) { return number(c.stage1_epochs); })
     << "\n"
     << "- Batch size: " << distinct_values(g, [&](const ExperimentConfig& c) { return number(c.batch_size); }) << "\n"
     << "- Image size: "
     << distinct_values(g, [&](const ExperimentConfig& c) {
          return c.image_size > 0 ? number(c.image_size) : std::string("the manifest's");
        })
     << "\n"
     << "- Max train samples: "
     << distinct_values(g, [&](const ExperimentConfig& c) {
          return c.max_train_samples > 0 ? number(c.max_train_samples) : std::string("all");
        })
     << "\n"
     << "- Learning-rate grid: " << lrs << "; FFR stage 1 learning rate: "
     << (g.stage1_learning_rates.size() >= 2
             ? "searched per full-FFR cell by mean stage-1 val WA (stage-1-only runs), from " +
                   rate_list(g.stage1_learning_rates)
             : distinct_values(g, [](const ExperimentConfig& c) { return learning_rate_text(c.stage1_learning_rate); }))
     << (g.ffr_learning_rates.empty() ? std::string() : "; FFR stage 2 from " + rate_list(g.ffr_learning_rates))
     << "\n"
     << "- Weight decay: " << distinct_values(g, [&](const ExperimentConfig& c) { return number(c.weight_decay); })
     << "\n"
     << "- Seeds: " << seeds << "\n"
     << "- Initial weights: "
     << distinct_values(g, [](const ExperimentConfig& c) {
          return c.init_weights.empty() ? std::string("random, from each run's seed")
                                        : c.init_weights + (c.keep_head ? " (its head kept)" : " (head re-initialised)");
        })
     << "\n"
     << "- Precision (asked): " << distinct_values(g, [](const ExperimentConfig& c) { return c.precision; })
     << "; as run: " << (s.precisions.empty() ? std::string("–") : comma_list(s.precisions)) << "\n"
     << "- Deterministic: "
     << distinct_values(g, [](const ExperimentConfig& c) { return std::string(c.deterministic ? "yes" : "no"); })
     << "\n\n## Engine\n\n";
  for (const auto& [key, value] : build_info_fields()) md << "- " << key << ": " << value << "\n";
  md << "\n";
  return md.str();
}

// The reviewers' question, per augmentation mode: do the trained models' penultimate features
// still tell real from synthetic? Mean probe accuracy over the distinct chosen runs of every cell
// (a run shared by rows of several experiments counts once).
std::string feature_probe_markdown(const GridSummary& s) {
  std::vector<std::string> modes;
  std::map<std::string, std::vector<double>> values;
  std::set<std::string> counted;
  for (const CellSummary& c : s.cells) {
    const SettingSummary* chosen = c.chosen_setting();
    if (!chosen) continue;
    const std::string mode = display_name(c.cell.config.augmentation);
    for (const ExperimentResult& r : chosen->results) {
      if (!std::isfinite(r.feature_probe_accuracy) || !counted.insert(run_name(r.config)).second) continue;
      if (!values.count(mode)) modes.push_back(mode);
      values[mode].push_back(r.feature_probe_accuracy);
    }
  }
  if (modes.empty()) return "";
  std::ostringstream md;
  md << "## Real vs synthetic in the trained models' features (probe-features)\n\n"
     << "A linear probe (L1 logistic regression) on each chosen run's penultimate features, fitted on half "
        "of the held-out real and synthetic images and scored on the other half (50 % is chance): the "
        "quantitative form of the paper's Figure 5. Mean ± sample std over the distinct chosen runs of every row.\n\n"
     << "| augmentation | probe accuracy | runs |\n|---|---|---|\n";
  for (const std::string& mode : modes) {
    const MeanStd m = mean_std(values[mode]);
    md << "| " << mode << " | " << percent(m) << " | " << m.n << " |\n";
  }
  md << "\n";
  return md.str();
}

std::string report_markdown(const GridSummary& s, const ReportOptions& options,
                            const std::map<std::string, std::vector<std::string>>& plots) {
  std::ostringstream md;
  md << "# " << options.title << "\n\n";
  for (const std::string& note : options.notes) md << note << "\n\n";
  std::string seeds, lrs;
  for (uint64_t seed : s.grid.seeds) seeds += (seeds.empty() ? "" : ", ") + std::to_string(seed);
  for (double lr : s.grid.learning_rates) lrs += (lrs.empty() ? "" : ", ") + learning_rate_text(lr);
  std::string devices;
  for (const std::string& d : s.devices) devices += (devices.empty() ? "" : "; ") + d;
  md << "- Runs: " << s.runs_complete << " of " << s.runs_planned << " complete"
     << " (distinct runs; rows with equal configurations share them).\n"
     << "- Device: " << (devices.empty() ? "–" : devices) << ".\n"
     << "- Compute time: " << hours(s.compute_seconds) << " (sum of the runs' own times)";
  if (options.wall_seconds >= 0) md << "; wall time of this invocation: " << hours(options.wall_seconds);
  md << ".\n"
     << "- Seeds: " << seeds << ". Learning rates tried: " << lrs << ".";
  if (s.grid.freeze_batch_norm.size() > 1) md << " FFR stage 2 also tries batch norm frozen and trained.";
  md << "\n"
     << "- Model selection: per row (data set, ratio, augmentation, method, ...), the setting with the best "
        "mean worst-group accuracy over seeds on the real validation split (\"chosen\"; \"val WA\" is its value).\n"
     << "- Metrics on the real test split, in percent: WA = worst-group accuracy, BA = balanced accuracy "
        "(unweighted mean of the per-group accuracies). \"a ± b\" is the mean ± the sample standard deviation "
        "(n − 1) over seeds at the chosen setting; one seed shows no ±. Averaged rows average each seed over "
        "the cells first, then take mean ± sample std over the seeds all their cells completed.\n";
  if (s.runs_complete < s.runs_planned) {
    md << "- Rows marked * miss runs: their numbers and choice may change when the grid completes.\n";
  }
  md << "\n" << settings_markdown(s, seeds, lrs);

  for (const ExperimentSummary& e : s.experiments) {
    md << "## " << experiment_title(e.name) << "\n\n";
    const bool averaged = std::any_of(e.variants.begin(), e.variants.end(), [](const VariantSummary& v) { return v.cells > 1; });
    if (averaged) md << "### Averaged over data sets and bias ratios\n\n" << variant_table(e).markdown() << "\n";
    if (e.name == "table4x4") md << "### WA / BA by augmentation and training method\n\n" << method_matrix(s, e).markdown() << "\n";
    md << "### Per data set and bias ratio\n\n" << cell_table(s, e).markdown() << "\n";
    const auto it = plots.find(e.name);
    if (it != plots.end() && !it->second.empty()) {
      md << "### Against the bias ratio\n\n";
      for (const std::string& file : it->second) md << "![" << file << "](" << file << ")\n";
      md << "\n";
    }
    md << best_cell_groups(s, e);
  }
  md << feature_probe_markdown(s);
  return md.str();
}

// ---- CSV --------------------------------------------------------------------------------------

std::string csv_number(const MeanStd& m, bool std_part) {
  if (m.n == 0 || (std_part && m.n < 2)) return "";
  return printf_string("%.6g", std_part ? m.std : m.mean);
}

std::string results_csv(const GridSummary& s) {
  const std::vector<std::string> header = {
      "experiment", "label", "dataset", "manifest", "severity", "bias_ratio", "augmentation", "method", "stages",
      "synthetic", "model", "image_size", "epochs", "stage1_epochs", "batch_size", "weight_decay",
      "stage1_learning_rate", "max_train_samples", "learning_rate", "freeze_batch_norm", "seeds", "seeds_planned",
      "runs_complete", "runs_planned", "val_wa_mean", "val_wa_std", "val_ba_mean", "val_ba_std", "test_wa_mean",
      "test_wa_std", "test_ba_mean", "test_ba_std", "test_synthetic_wa_mean", "test_synthetic_wa_std",
      "test_synthetic_ba_mean", "test_synthetic_ba_std", "test_groups", "val_wa_by_setting", "seconds", "dfr_c",
      "dfr_tuning_wa_mean"};
  std::string csv = data::csv_line(header);
  for (const ExperimentSummary& e : s.experiments) {
    for (size_t i : e.cells) {
      const CellSummary& c = s.cells[i];
      const ExperimentConfig& k = c.cell.config;
      const SettingSummary* chosen = c.chosen_setting();
      std::string groups, by_setting;
      for (const GroupSummary& g : c.test_groups) {
        groups += detail::concat(groups.empty() ? "" : ";", "y", g.y, "b", g.b, "=", printf_string("%.6g", g.accuracy.mean));
      }
      for (const SettingSummary& st : c.settings) {
        if (st.val_wa.n == 0) continue;
        by_setting += detail::concat(by_setting.empty() ? "" : ";", printf_string("%g", st.hyper_parameters.learning_rate),
                                     st.hyper_parameters.freeze_batch_norm ? "+fbn" : "", "=",
                                     printf_string("%.6g", st.val_wa.mean));
      }
      csv += data::csv_line({
          e.name, c.cell.label, c.cell.dataset, k.manifest, c.cell.severity >= 0 ? std::to_string(c.cell.severity) : "",
          printf_string("%g", k.bias_ratio), data::augmentation_name(k.augmentation), method_name(k.method),
          stage_order_name(k.stages), synthetic_distribution_name(k.synthetic), k.model, std::to_string(k.image_size),
          std::to_string(k.epochs), std::to_string(k.stage1_epochs), std::to_string(k.batch_size),
          printf_string("%g", k.weight_decay), printf_string("%g", k.stage1_learning_rate),
          std::to_string(k.max_train_samples), chosen ? printf_string("%g", chosen->hyper_parameters.learning_rate) : "",
          chosen ? (chosen->hyper_parameters.freeze_batch_norm ? "true" : "false") : "",
          std::to_string(chosen ? chosen->seeds.size() : 0), std::to_string(c.seeds_planned),
          std::to_string(c.runs_complete), std::to_string(c.runs_planned), csv_number(c.val_wa, false),
          csv_number(c.val_wa, true), csv_number(c.val_ba, false), csv_number(c.val_ba, true),
          csv_number(c.test_wa, false), csv_number(c.test_wa, true), csv_number(c.test_ba, false),
          csv_number(c.test_ba, true), csv_number(c.synthetic_wa, false), csv_number(c.synthetic_wa, true),
          csv_number(c.synthetic_ba, false), csv_number(c.synthetic_ba, true), groups, by_setting,
          printf_string("%.3f", c.seconds), dfr_c_text(c.dfr_c, ";"), csv_number(c.dfr_tuning_wa, false)});
    }
  }
  return csv;
}

// ---- summaries --------------------------------------------------------------------------------

bool has_metrics(const SplitMetrics& m) { return !m.groups.empty(); }

void summarize_chosen(CellSummary& c) {
  const SettingSummary* chosen = c.chosen_setting();
  if (!chosen) return;
  std::vector<double> val_wa, val_ba, test_wa, test_ba, syn_wa, syn_ba, dfr_tuning_wa, probe;
  std::vector<std::pair<int, int>> group_keys;
  std::map<std::pair<int, int>, std::vector<double>> group_values;
  for (const ExperimentResult& r : chosen->results) {
    val_wa.push_back(r.val.worst_group_accuracy);
    val_ba.push_back(r.val.balanced_accuracy);
    test_wa.push_back(r.test.worst_group_accuracy);
    test_ba.push_back(r.test.balanced_accuracy);
    if (std::isfinite(r.feature_probe_accuracy)) probe.push_back(r.feature_probe_accuracy);
    if (std::isfinite(r.dfr_c)) {
      c.dfr_c.push_back(r.dfr_c);
      dfr_tuning_wa.push_back(r.dfr_tuning_worst_group_accuracy);
    }
    if (has_metrics(r.test_synthetic)) {
      syn_wa.push_back(r.test_synthetic.worst_group_accuracy);
      syn_ba.push_back(r.test_synthetic.balanced_accuracy);
    }
    for (const GroupAccuracy& g : r.test.groups) {
      const auto key = std::make_pair(g.y, g.b);
      if (!group_values.count(key)) group_keys.push_back(key);
      if (g.total > 0) group_values[key].push_back(g.accuracy());
    }
  }
  c.val_wa = mean_std(val_wa);
  c.val_ba = mean_std(val_ba);
  c.test_wa = mean_std(test_wa);
  c.test_ba = mean_std(test_ba);
  c.synthetic_wa = mean_std(syn_wa);
  c.synthetic_ba = mean_std(syn_ba);
  c.dfr_tuning_wa = mean_std(dfr_tuning_wa);
  c.feature_probe = mean_std(probe);
  for (const auto& key : group_keys) c.test_groups.push_back({key.first, key.second, mean_std(group_values[key])});
}

VariantSummary summarize_variant(const GridSummary& s, const std::string& label, const std::vector<size_t>& cells) {
  VariantSummary v;
  v.label = label;
  v.first_cell = cells.front();
  v.cells = cells.size();
  std::vector<const CellSummary*> used;
  for (size_t i : cells) {
    if (s.cells[i].chosen >= 0) used.push_back(&s.cells[i]);
  }
  v.cells_used = used.size();
  if (used.empty()) return v;
  std::vector<double> wa, ba, syn_wa, syn_ba;
  for (uint64_t seed : s.grid.seeds) {
    double sums[4] = {0, 0, 0, 0};
    size_t synthetic = 0;
    bool everywhere = true;
    for (const CellSummary* c : used) {
      const SettingSummary& st = *c->chosen_setting();
      const auto at = std::find(st.seeds.begin(), st.seeds.end(), seed);
      if (at == st.seeds.end()) {
        everywhere = false;
        break;
      }
      const ExperimentResult& r = st.results[size_t(at - st.seeds.begin())];
      sums[0] += r.test.worst_group_accuracy;
      sums[1] += r.test.balanced_accuracy;
      if (has_metrics(r.test_synthetic)) {
        sums[2] += r.test_synthetic.worst_group_accuracy;
        sums[3] += r.test_synthetic.balanced_accuracy;
        ++synthetic;
      }
    }
    if (!everywhere) continue;
    v.seeds.push_back(seed);
    wa.push_back(sums[0] / double(used.size()));
    ba.push_back(sums[1] / double(used.size()));
    if (synthetic == used.size()) {
      syn_wa.push_back(sums[2] / double(used.size()));
      syn_ba.push_back(sums[3] / double(used.size()));
    }
  }
  v.test_wa = mean_std(wa);
  v.test_ba = mean_std(ba);
  v.synthetic_wa = mean_std(syn_wa);
  v.synthetic_ba = mean_std(syn_ba);
  return v;
}

}  // namespace

MeanStd mean_std(const std::vector<double>& values) {
  MeanStd m;
  m.n = int(values.size());
  if (values.empty()) return m;
  double sum = 0.0;
  for (double v : values) sum += v;
  m.mean = sum / double(values.size());
  if (values.size() > 1) {
    double squares = 0.0;
    for (double v : values) squares += (v - m.mean) * (v - m.mean);
    m.std = std::sqrt(squares / double(values.size() - 1));
  }
  return m;
}

int choose_setting(const std::vector<SettingSummary>& settings, size_t seeds_planned) {
  auto complete = [&](const SettingSummary& s) { return !s.seeds.empty() && s.seeds.size() >= seeds_planned; };
  const bool any_complete = std::any_of(settings.begin(), settings.end(), complete);
  int best = -1;
  for (size_t i = 0; i < settings.size(); ++i) {
    const SettingSummary& s = settings[i];
    const bool candidate = any_complete ? complete(s) : !s.seeds.empty();
    // Strictly greater: a tie keeps the earlier setting.
    if (candidate && (best < 0 || s.val_wa.mean > settings[size_t(best)].val_wa.mean)) best = int(i);
  }
  return best;
}

GridSummary summarize_grid(const Grid& grid, const ResultSet& results) {
  GridSummary s;
  s.grid = grid;
  std::set<std::string> devices, precisions;
  const RunLookup completed = [&results](const std::string& name) -> std::optional<ExperimentResult> {
    const auto it = results.find(name);
    if (it == results.end()) return std::nullopt;
    return it->second;
  };
  const std::vector<GridRun> runs = plan_runs(grid, completed);
  s.runs_planned = runs.size();
  for (const GridRun& run : runs) {
    const auto it = results.find(run.name);
    if (it == results.end()) continue;
    ++s.runs_complete;
    s.compute_seconds += it->second.seconds;
    if (!it->second.device.empty()) devices.insert(it->second.device);
    if (!it->second.precision.empty()) precisions.insert(it->second.precision);
  }
  s.devices.assign(devices.begin(), devices.end());
  s.precisions.assign(precisions.begin(), precisions.end());

  for (const GridCell& grid_cell : grid.cells) {
    GridCell cell = grid_cell;
    // A searching FFR cell's stage 2 ran from its chosen stage-1 rate (NaN while the search is
    // incomplete: then no stage-2 run is found, and the cell reads as incomplete).
    if (searches_stage1(grid, cell)) cell.config.stage1_learning_rate = choose_stage1_learning_rate(grid, cell, completed);
    CellSummary c;
    c.cell = cell;
    c.seeds_planned = grid.seeds.size();
    for (const HyperParameters& setting : cell_settings(grid, cell)) {
      SettingSummary st;
      st.hyper_parameters = setting;
      std::vector<double> val_wa;
      for (uint64_t seed : grid.seeds) {
        ++c.runs_planned;
        const auto it = results.find(run_name(run_config(cell, setting, seed)));
        if (it == results.end()) continue;
        ++c.runs_complete;
        c.seconds += it->second.seconds;
        st.seeds.push_back(seed);
        st.results.push_back(it->second);
        val_wa.push_back(it->second.selection_worst_group_accuracy());
      }
      st.val_wa = mean_std(val_wa);
      c.settings.push_back(std::move(st));
    }
    c.chosen = choose_setting(c.settings, c.seeds_planned);
    summarize_chosen(c);
    s.cells.push_back(std::move(c));
  }

  for (size_t i = 0; i < s.cells.size(); ++i) {
    const std::string& name = s.cells[i].cell.experiment;
    auto e = std::find_if(s.experiments.begin(), s.experiments.end(), [&](const ExperimentSummary& x) { return x.name == name; });
    if (e == s.experiments.end()) {
      s.experiments.push_back({name, {}, {}});
      e = s.experiments.end() - 1;
    }
    e->cells.push_back(i);
  }
  for (ExperimentSummary& e : s.experiments) {
    std::vector<std::pair<std::string, std::vector<size_t>>> by_label;
    for (size_t i : e.cells) {
      const std::string& label = s.cells[i].cell.label;
      auto it = std::find_if(by_label.begin(), by_label.end(), [&](const auto& x) { return x.first == label; });
      if (it == by_label.end()) {
        by_label.push_back({label, {}});
        it = by_label.end() - 1;
      }
      it->second.push_back(i);
    }
    for (const auto& [label, cells] : by_label) e.variants.push_back(summarize_variant(s, label, cells));
  }
  return s;
}

ReportFiles write_report(const GridSummary& summary, const std::string& out_dir, const ReportOptions& options) {
  fs::create_directories(out_dir);
  ReportFiles files;
  std::map<std::string, std::vector<std::string>> plots;
  for (const ExperimentSummary& e : summary.experiments) {
    for (const PlotFile& p : make_plots(summary, e)) {
      const std::string path = (fs::path(out_dir) / p.file).string();
      write_text_atomically(path, render_svg(p.plot));
      files.plots.push_back(path);
      plots[e.name].push_back(p.file);
    }
  }
  files.results_csv = (fs::path(out_dir) / "results.csv").string();
  write_text_atomically(files.results_csv, results_csv(summary));
  files.report_md = (fs::path(out_dir) / "report.md").string();
  write_text_atomically(files.report_md, report_markdown(summary, options, plots));
  return files;
}

GridReport report_grid(const Grid& grid, const std::vector<std::string>& dirs, const std::string& out_dir,
                       const ReportOptions& options) {
  GridReport report;
  report.summary = summarize_grid(grid, collect_results(grid, dirs));
  report.files = write_report(report.summary, out_dir, options);
  return report;
}

GridReport merge_grid_folders(const std::vector<std::string>& dirs, const std::string& out_dir,
                              const ReportOptions& options) {
  const Grid grid = read_grid(dirs);
  fs::create_directories(out_dir);
  write_text_atomically((fs::path(out_dir) / "grid.json").string(), grid_to_json(grid));
  return report_grid(grid, dirs, out_dir, options);
}

std::string format_summary_table(const GridSummary& s) {
  std::ostringstream out;
  for (const ExperimentSummary& e : s.experiments) {
    out << experiment_title(e.name) << "\n";
    out << "test WA / BA in %, mean ± sample std over seeds, averaged over data sets and bias ratios\n";
    out << variant_table(e).plain();
    if (e.name == "table4x4") out << "\n" << method_matrix(s, e).plain();
    out << "\n";
  }
  out << s.runs_complete << " of " << s.runs_planned << " runs complete\n";
  return out.str();
}

}  // namespace ffr
