// Do a trained model's penultimate features encode the source (real vs synthetic)? The reviewers'
// question on USB/ASB/FFR models, and the quantitative form of the paper's Figure 5 (t-SNE of
// real and synthetic embeddings): a linear probe, the L1 logistic regression of DFR
// (ffr/logistic_regression.h), fitted on the features of half of the held-out images and scored on
// the other half. Held-out: the real test images and the held-out synthetic images (the val
// split's when test has none), which no run trains on. Sources are cut to equal counts, so 50 %
// is chance. A 2-D PCA of the same features (standardised) is kept for a scatter plot.
#pragma once

#include "data/manifest.h"
#include "ffr/evaluation.h"

#include <cstdint>
#include <string>
#include <vector>

namespace ffr {

class Classifier;

struct FeatureProbeOptions {
  double c = 1.0;                // the probe's inverse L1 strength
  int64_t max_per_source = 0;    // > 0: at most this many held-out images of each source
  uint64_t seed = 0;             // the halves and the cut
};

struct FeatureProbeResult {
  int64_t fit_per_source = 0;     // per source, in the probe's fitting half
  int64_t scored_per_source = 0;  // per source, in the scored half
  std::string heldout_description;
  double accuracy = 0.0;            // scored half, both sources (balanced: 0.5 is chance)
  double real_accuracy = 0.0;       // real images called real
  double synthetic_accuracy = 0.0;  // synthetic images called synthetic
  int64_t feature_dim = 0;
  // First two principal components of every held-out image's standardised features.
  std::vector<double> pca_x, pca_y;
  std::vector<int> pca_source;      // 0 real, 1 synthetic
  double pca_explained[2] = {0.0, 0.0};  // fraction of the total variance
};

// Throws InputError (naming the manifest) when it has fewer than 2 held-out images of a source.
FeatureProbeResult probe_features(Classifier& model, const data::Manifest& manifest, const EvalOptions& eval,
                                  const FeatureProbeOptions& options = {});

// The PCA embedding as a standalone SVG scatter plot (real and synthetic in two colours).
std::string feature_embedding_svg(const FeatureProbeResult& result, const std::string& title);

}  // namespace ffr
