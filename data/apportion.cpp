#include "data/apportion.h"

#include "engine/error.h"

#include <algorithm>
#include <cmath>
#include <utility>

namespace ffr::data {

std::vector<int64_t> share_in_proportion(int64_t total, const std::vector<int64_t>& weights) {
  std::vector<int64_t> parts(weights.size(), 0);
  int64_t weight_sum = 0;
  for (int64_t w : weights) weight_sum += w;
  if (weight_sum <= 0 || total <= 0) return parts;
  std::vector<std::pair<double, size_t>> remainders;
  int64_t given = 0;
  for (size_t i = 0; i < weights.size(); ++i) {
    const double exact = double(total) * double(weights[i]) / double(weight_sum);
    parts[i] = int64_t(std::floor(exact));
    given += parts[i];
    remainders.emplace_back(exact - double(parts[i]), i);
  }
  std::stable_sort(remainders.begin(), remainders.end(),
                   [](const auto& a, const auto& b) { return a.first > b.first; });
  for (size_t k = 0; given < total && k < remainders.size(); ++k, ++given) ++parts[remainders[k].second];
  return parts;
}

void move_random_subset_to_front(std::vector<int64_t>& items, int64_t count, Rng& rng) {
  FFR_CHECK(count >= 0 && count <= int64_t(items.size()), "move_random_subset_to_front: count ", count,
            " of ", items.size());
  const int64_t n = int64_t(items.size());
  for (int64_t k = 0; k < count; ++k) {
    std::swap(items[size_t(k)], items[size_t(k + int64_t(rng.below(uint64_t(n - k))))]);
  }
}

}  // namespace ffr::data
