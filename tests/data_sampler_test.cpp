#include "data/sampler.h"
#include "data_test_support.h"

#include <algorithm>
#include <map>

namespace ffr::data {
namespace {

IndexList iota(int64_t n, int64_t first = 0) {
  IndexList v(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) v[size_t(i)] = first + i;
  return v;
}

TEST(DataSampler, ShuffledEpochsArePermutationsFixedBySeedAndEpoch) {
  const ShuffledSampler sampler(iota(1000, 5), 64, /*seed=*/9);
  const IndexList e0 = sampler.epoch_order(0), e1 = sampler.epoch_order(1);
  IndexList sorted = e0;
  std::sort(sorted.begin(), sorted.end());
  EXPECT_EQ(sorted, iota(1000, 5)) << "every sample exactly once";
  EXPECT_NE(e0, iota(1000, 5));
  EXPECT_NE(e0, e1) << "a fresh order each epoch";
  EXPECT_EQ(e1, ShuffledSampler(iota(1000, 5), 64, 9).epoch_order(1)) << "reproducible";
  EXPECT_NE(e1, ShuffledSampler(iota(1000, 5), 64, 10).epoch_order(1));
  EXPECT_EQ(sampler.batches_per_epoch(), 16);  // 15 full + 1 of 40
  EXPECT_EQ(sampler.batch(e0, 15).size(), 40u);
  EXPECT_EQ(ShuffledSampler(iota(1000), 64, 9, /*drop_last=*/true).batches_per_epoch(), 15);
}

TEST(DataSampler, PositionResumesExactly) {
  const ShuffledSampler sampler(iota(100), 32, 3);  // 4 batches per epoch
  SamplerPosition p{0, 0};
  std::vector<IndexList> straight;
  for (int k = 0; k < 10; ++k, p = sampler.next(p)) straight.push_back(sampler.batch(sampler.epoch_order(p.epoch), p.step));
  EXPECT_EQ(p, (SamplerPosition{2, 2}));
  // A run stopped at batch 6 = (epoch 1, step 2) resumes from the saved position alone.
  SamplerPosition resumed{1, 2};
  for (int k = 6; k < 10; ++k, resumed = sampler.next(resumed)) {
    EXPECT_EQ(sampler.batch(sampler.epoch_order(resumed.epoch), resumed.step), straight[size_t(k)]);
  }
}

TEST(DataSampler, GroupBalancedResamplingEqualisesGroups) {
  // Groups of 1000, 100, 10 and 1 samples: resampling should draw each ~25% of the time.
  IndexList indices;
  std::vector<int> groups;
  const int sizes[4] = {1000, 100, 10, 1};
  for (int g = 0; g < 4; ++g)
    for (int i = 0; i < sizes[g]; ++i) {
      indices.push_back(int64_t(indices.size()));
      groups.push_back(g);
    }
  const GroupBalancedSampler sampler(indices, groups, 128, 42);
  std::map<int, int64_t> drawn;
  int64_t draws = 0;
  for (int epoch = 0; epoch < 20; ++epoch) {
    const IndexList order = sampler.epoch_order(epoch);
    EXPECT_EQ(int64_t(order.size()), sampler.epoch_length());
    for (int64_t i : order) ++drawn[groups[size_t(i)]];
    draws += int64_t(order.size());
  }
  for (int g = 0; g < 4; ++g) {
    // 22220 draws: a binomial(0.25) share has sd ~0.003, so 0.02 is > 6 sd.
    EXPECT_NEAR(double(drawn[g]) / double(draws), 0.25, 0.02) << "group " << g;
  }
  EXPECT_EQ(sampler.epoch_order(3), GroupBalancedSampler(indices, groups, 128, 42).epoch_order(3));
}

}  // namespace
}  // namespace ffr::data
