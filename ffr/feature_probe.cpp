#include "ffr/feature_probe.h"

#include "data/groups.h"
#include "engine/error.h"
#include "engine/rng.h"
#include "ffr/logistic_regression.h"
#include "ffr/svg_plot.h"
#include "layers/classifier.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace ffr {
namespace {

// The probe's own Philox stream, apart from those the same seed drives elsewhere.
constexpr uint64_t kFeatureProbeRngStream = 0xFEA7;

// Columns to zero mean and unit (population) variance; a constant column keeps scale 1.
void standardise(std::vector<double>& x, int64_t rows, int64_t cols) {
  for (int64_t j = 0; j < cols; ++j) {
    double mean = 0.0, squares = 0.0;
    for (int64_t i = 0; i < rows; ++i) mean += x[size_t(i * cols + j)];
    mean /= double(rows);
    for (int64_t i = 0; i < rows; ++i) squares += std::pow(x[size_t(i * cols + j)] - mean, 2);
    const double std = std::sqrt(squares / double(rows));
    const double scale = std > 1e-12 ? std : 1.0;
    for (int64_t i = 0; i < rows; ++i) x[size_t(i * cols + j)] = (x[size_t(i * cols + j)] - mean) / scale;
  }
}

// v minus its components along the (orthonormal) directions `found` (deflation: each new
// direction stays orthogonal to the earlier ones), scaled to unit length; returns the length
// before scaling (0: v is left as it is).
double deflate_and_normalise(std::vector<double>& v, const std::vector<std::vector<double>>& found) {
  for (const std::vector<double>& f : found) {
    double dot = 0.0;
    for (size_t j = 0; j < v.size(); ++j) dot += v[j] * f[j];
    for (size_t j = 0; j < v.size(); ++j) v[j] -= dot * f[j];
  }
  double norm = 0.0;
  for (double e : v) norm += e * e;
  norm = std::sqrt(norm);
  if (norm > 0.0)
    for (double& e : v) e /= norm;
  return norm;
}

// Leading principal direction of centred x (minus the directions in `found`), by power iteration
// on x^T x without forming it: O(rows * cols) per step, fine for a few thousand images.
std::vector<double> principal_direction(const std::vector<double>& x, int64_t rows, int64_t cols,
                                        const std::vector<std::vector<double>>& found, Rng& rng) {
  std::vector<double> v(static_cast<size_t>(cols));
  for (double& e : v) e = rng.normal();
  std::vector<double> xv(static_cast<size_t>(rows));
  for (int step = 0; step < 200; ++step) {
    if (deflate_and_normalise(v, found) == 0.0) break;
    for (int64_t i = 0; i < rows; ++i) {
      double s = 0.0;
      for (int64_t j = 0; j < cols; ++j) s += x[size_t(i * cols + j)] * v[size_t(j)];
      xv[size_t(i)] = s;
    }
    std::vector<double> next(size_t(cols), 0.0);
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < cols; ++j) next[size_t(j)] += x[size_t(i * cols + j)] * xv[size_t(i)];
    v.swap(next);
  }
  deflate_and_normalise(v, found);
  return v;
}

std::vector<double> project(const std::vector<double>& x, int64_t rows, int64_t cols, const std::vector<double>& v) {
  std::vector<double> out(size_t(rows), 0.0);
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < cols; ++j) out[size_t(i)] += x[size_t(i * cols + j)] * v[size_t(j)];
  return out;
}

}  // namespace

FeatureProbeResult probe_features(Classifier& model, const data::Manifest& manifest, const EvalOptions& eval,
                                  const FeatureProbeOptions& options) {
  if (!(options.c > 0.0)) throw InputError(detail::concat("probe-features: C must be > 0, got ", options.c));
  FeatureProbeResult result;
  data::IndexList real = data::select_samples(manifest, data::Split::Test, data::Source::Real);
  data::IndexList synthetic = data::select_samples(manifest, data::Split::Test, data::Source::Synthetic);
  result.heldout_description = "test real vs test held-out synthetic";
  if (synthetic.empty()) {
    synthetic = data::select_samples(manifest, data::Split::Val, data::Source::Synthetic);
    result.heldout_description = "test real vs val held-out synthetic";
  }
  if (real.size() < 2 || synthetic.size() < 2) {
    throw InputError(detail::concat(manifest.csv_path.string(), ": probe-features needs at least 2 held-out images of each "
                                    "source (split test, source real: ", real.size(),
                                    "; split test or val, source synthetic: ", synthetic.size(), ")"));
  }
  Rng rng(options.seed, kFeatureProbeRngStream);
  size_t per_source = std::min(real.size(), synthetic.size());
  if (options.max_per_source > 0) per_source = std::min(per_source, size_t(options.max_per_source));
  rng.shuffle(real);
  rng.shuffle(synthetic);
  real.resize(per_source);
  synthetic.resize(per_source);

  data::IndexList samples = real;
  samples.insert(samples.end(), synthetic.begin(), synthetic.end());
  const data::GroupIndex groups(manifest.info);
  const FeatureSet f = extract_features(model, manifest, samples, groups, eval);
  const int64_t rows = f.features.size(0), cols = f.features.size(1);
  std::vector<double> x = f.features.to_vector<double>();
  for (double v : x) {
    if (!std::isfinite(v)) throw Error("probe-features: the model gives non-finite features");
  }
  standardise(x, rows, cols);
  result.feature_dim = cols;

  // Halves per source: rows [0, n) are real, [n, 2n) synthetic; the first half of each fits.
  const int64_t n = int64_t(per_source), fit_n = (n + 1) / 2;
  std::vector<int64_t> fit_rows, scored_rows;
  for (int64_t k = 0; k < n; ++k) {
    (k < fit_n ? fit_rows : scored_rows).push_back(k);
    (k < fit_n ? fit_rows : scored_rows).push_back(n + k);
  }
  auto gather = [&](const std::vector<int64_t>& rows_wanted, std::vector<double>& out, std::vector<int64_t>& labels) {
    for (int64_t r : rows_wanted) {
      out.insert(out.end(), x.begin() + r * cols, x.begin() + (r + 1) * cols);
      labels.push_back(r >= n ? 1 : 0);
    }
  };
  std::vector<double> fit_x, scored_x;
  std::vector<int64_t> fit_y, scored_y;
  gather(fit_rows, fit_x, fit_y);
  gather(scored_rows, scored_x, scored_y);
  const LogisticRegressionModel probe =
      fit_logistic_regression(fit_x, int64_t(fit_y.size()), cols, fit_y, 2, LogisticRegressionOptions{options.c});
  const std::vector<int64_t> predicted = logistic_regression_predict(probe, scored_x, int64_t(scored_y.size()));
  int64_t correct[2] = {0, 0}, total[2] = {0, 0};
  for (size_t i = 0; i < scored_y.size(); ++i) {
    ++total[scored_y[i]];
    correct[scored_y[i]] += predicted[i] == scored_y[i];
  }
  result.fit_per_source = fit_n;
  result.scored_per_source = n - fit_n;
  result.real_accuracy = total[0] > 0 ? double(correct[0]) / double(total[0]) : 0.0;
  result.synthetic_accuracy = total[1] > 0 ? double(correct[1]) / double(total[1]) : 0.0;
  result.accuracy = double(correct[0] + correct[1]) / double(std::max<int64_t>(1, total[0] + total[1]));

  // PCA of every held-out image (standardised: each column has variance 1, so the total is cols).
  std::vector<std::vector<double>> directions;
  for (int k = 0; k < 2 && k < cols; ++k) directions.push_back(principal_direction(x, rows, cols, directions, rng));
  result.pca_x = project(x, rows, cols, directions[0]);
  result.pca_y = directions.size() > 1 ? project(x, rows, cols, directions[1]) : std::vector<double>(size_t(rows), 0.0);
  for (int k = 0; k < 2; ++k) {
    const std::vector<double>& p = k == 0 ? result.pca_x : result.pca_y;
    double variance = 0.0;
    for (double v : p) variance += v * v;
    result.pca_explained[k] = variance / double(rows) / double(cols);
  }
  for (int64_t r = 0; r < rows; ++r) result.pca_source.push_back(r >= n ? 1 : 0);
  return result;
}

std::string feature_embedding_svg(const FeatureProbeResult& r, const std::string& title) {
  const double width = 560, height = 460, left = 60, right = 140, top = 50, bottom = 60;
  double min_x = 0, max_x = 0, min_y = 0, max_y = 0;
  for (size_t i = 0; i < r.pca_x.size(); ++i) {
    min_x = std::min(min_x, r.pca_x[i]);
    max_x = std::max(max_x, r.pca_x[i]);
    min_y = std::min(min_y, r.pca_y[i]);
    max_y = std::max(max_y, r.pca_y[i]);
  }
  const double span_x = std::max(max_x - min_x, 1e-9), span_y = std::max(max_y - min_y, 1e-9);
  auto px = [&](double v) { return left + (v - min_x) / span_x * (width - left - right); };
  auto py = [&](double v) { return height - bottom - (v - min_y) / span_y * (height - top - bottom); };
  const char* colours[2] = {"#1f77b4", "#d62728"};
  std::ostringstream svg;
  char buffer[256];
  svg << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << width << "\" height=\"" << height
      << "\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  svg << "<text x=\"" << width / 2 << "\" y=\"24\" text-anchor=\"middle\" font-size=\"14\">" << xml_escape(title)
      << "</text>\n";
  svg << "<rect x=\"" << left << "\" y=\"" << top << "\" width=\"" << width - left - right << "\" height=\""
      << height - top - bottom << "\" fill=\"none\" stroke=\"#888\"/>\n";
  std::snprintf(buffer, sizeof buffer, "PC 1 (%.1f%% of variance)", 100 * r.pca_explained[0]);
  svg << "<text x=\"" << (left + width - right) / 2 << "\" y=\"" << height - 20 << "\" text-anchor=\"middle\">"
      << buffer << "</text>\n";
  std::snprintf(buffer, sizeof buffer, "PC 2 (%.1f%% of variance)", 100 * r.pca_explained[1]);
  svg << "<text transform=\"translate(20 " << (top + height - bottom) / 2 << ") rotate(-90)\" text-anchor=\"middle\">"
      << buffer << "</text>\n";
  for (size_t i = 0; i < r.pca_x.size(); ++i) {
    std::snprintf(buffer, sizeof buffer, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\" fill-opacity=\"0.6\"/>\n",
                  px(r.pca_x[i]), py(r.pca_y[i]), colours[r.pca_source[i] ? 1 : 0]);
    svg << buffer;
  }
  const char* names[2] = {"real", "synthetic"};
  for (int k = 0; k < 2; ++k) {
    const double y = top + 20 + 20 * k;
    svg << "<circle cx=\"" << width - right + 20 << "\" cy=\"" << y - 4 << "\" r=\"4\" fill=\"" << colours[k]
        << "\"/>\n<text x=\"" << width - right + 30 << "\" y=\"" << y << "\">" << names[k] << "</text>\n";
  }
  std::snprintf(buffer, sizeof buffer, "probe accuracy %.1f%%", 100 * r.accuracy);
  svg << "<text x=\"" << width - right + 12 << "\" y=\"" << top + 80 << "\">" << buffer << "</text>\n</svg>\n";
  return svg.str();
}

}  // namespace ffr
