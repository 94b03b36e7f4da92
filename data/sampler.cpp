#include "data/sampler.h"

#include "engine/error.h"
#include "engine/rng.h"

#include <algorithm>

namespace ffr::data {

namespace {
// Philox stream bases, far from the small stream numbers other parts of the engine use, so a
// sampler never replays another component's random numbers.
constexpr uint64_t kShuffleStreams = 0x5348554600000000ull;   // "SHUF"
constexpr uint64_t kResampleStreams = 0x5245534d00000000ull;  // "RESM"
}  // namespace

Sampler::Sampler(int64_t batch_size, bool drop_last) : batch_size_(batch_size), drop_last_(drop_last) {
  if (batch_size <= 0) throw InputError(detail::concat("batch size must be positive, got ", batch_size));
}

int64_t Sampler::batches_per_epoch() const {
  const int64_t n = epoch_length();
  return drop_last_ ? n / batch_size_ : (n + batch_size_ - 1) / batch_size_;
}

IndexList Sampler::batch(const IndexList& order, int64_t step) const {
  FFR_CHECK(step >= 0 && step < batches_per_epoch(), "Sampler::batch: step ", step, " of ", batches_per_epoch());
  const int64_t first = step * batch_size_;
  const int64_t last = std::min<int64_t>(first + batch_size_, int64_t(order.size()));
  return IndexList(order.begin() + first, order.begin() + last);
}

SamplerPosition Sampler::next(SamplerPosition p) const {
  if (++p.step >= batches_per_epoch()) {
    p.step = 0;
    ++p.epoch;
  }
  return p;
}

SequentialSampler::SequentialSampler(IndexList indices, int64_t batch_size)
    : Sampler(batch_size, false), indices_(std::move(indices)) {}

ShuffledSampler::ShuffledSampler(IndexList indices, int64_t batch_size, uint64_t seed, bool drop_last)
    : Sampler(batch_size, drop_last), indices_(std::move(indices)), seed_(seed) {}

IndexList ShuffledSampler::epoch_order(int64_t epoch) const {
  IndexList order = indices_;
  Rng rng(seed_, kShuffleStreams + uint64_t(epoch));
  rng.shuffle(order);
  return order;
}

GroupBalancedSampler::GroupBalancedSampler(IndexList indices, std::vector<int> group_ids, int64_t batch_size,
                                           uint64_t seed, bool drop_last)
    : Sampler(batch_size, drop_last), length_(int64_t(indices.size())), seed_(seed) {
  FFR_CHECK(group_ids.size() == indices.size(), "GroupBalancedSampler: ", group_ids.size(), " group ids for ",
            indices.size(), " samples");
  if (indices.empty()) throw InputError("GroupBalancedSampler: no samples to draw from");
  const int num_groups = *std::max_element(group_ids.begin(), group_ids.end()) + 1;
  std::vector<IndexList> members(size_t(std::max(num_groups, 0)));
  for (size_t i = 0; i < indices.size(); ++i) {
    FFR_CHECK(group_ids[i] >= 0, "GroupBalancedSampler: negative group id");
    members[size_t(group_ids[i])].push_back(indices[i]);
  }
  for (IndexList& m : members) {
    if (!m.empty()) members_.push_back(std::move(m));
  }
}

IndexList GroupBalancedSampler::epoch_order(int64_t epoch) const {
  // P(sample i) = 1 / (G * |group(i)|), the same as drawing a group uniformly and then a member
  // uniformly: two integer draws instead of a weighted search.
  Rng rng(seed_, kResampleStreams + uint64_t(epoch));
  IndexList order(static_cast<size_t>(length_));
  for (int64_t k = 0; k < length_; ++k) {
    const IndexList& m = members_[rng.below(members_.size())];
    order[size_t(k)] = m[rng.below(m.size())];
  }
  return order;
}

std::vector<int> group_ids(const Manifest& manifest, const IndexList& indices, const GroupIndex& groups,
                           bool with_source) {
  std::vector<int> ids(indices.size());
  for (size_t k = 0; k < indices.size(); ++k) {
    const Sample& s = manifest.samples[size_t(indices[k])];
    ids[k] = with_source ? groups.group_with_source(s.y, s.b, s.source) : groups.group_of(s);
  }
  return ids;
}

}  // namespace ffr::data
