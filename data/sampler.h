// Samplers: which samples each batch of each epoch holds. An epoch's order is a pure function of
// (seed, epoch), so a run resumed at a SamplerPosition sees exactly the batches it would have
// seen, and loader workers can compute any batch without replaying earlier ones.
#pragma once

#include "data/groups.h"

#include <cstdint>
#include <memory>

namespace ffr::data {

// Where a run is: batch `step` of epoch `epoch` is the next one to train on. Saved in
// checkpoints as two integers.
struct SamplerPosition {
  int64_t epoch = 0;
  int64_t step = 0;
  bool operator==(const SamplerPosition& o) const { return epoch == o.epoch && step == o.step; }
  bool operator!=(const SamplerPosition& o) const { return !(*this == o); }
};

class Sampler {
 public:
  Sampler(int64_t batch_size, bool drop_last);
  virtual ~Sampler() = default;

  // Every sample drawn in `epoch`, in batch order (manifest indices; repeats allowed).
  virtual IndexList epoch_order(int64_t epoch) const = 0;
  // Draws per epoch (the length of epoch_order).
  virtual int64_t epoch_length() const = 0;

  int64_t batch_size() const { return batch_size_; }
  bool drop_last() const { return drop_last_; }
  int64_t batches_per_epoch() const;
  // The samples of batch `step` within an epoch's order (the last one may be short).
  IndexList batch(const IndexList& order, int64_t step) const;
  // The position after `p` (step + 1, rolling over into the next epoch).
  SamplerPosition next(SamplerPosition p) const;

 private:
  int64_t batch_size_;
  bool drop_last_;
};

// Every sample once per epoch, in manifest-list order (evaluation).
class SequentialSampler final : public Sampler {
 public:
  SequentialSampler(IndexList indices, int64_t batch_size);
  IndexList epoch_order(int64_t) const override { return indices_; }
  int64_t epoch_length() const override { return int64_t(indices_.size()); }

 private:
  IndexList indices_;
};

// Every sample once per epoch, in a fresh seeded random order each epoch (ERM training).
class ShuffledSampler final : public Sampler {
 public:
  ShuffledSampler(IndexList indices, int64_t batch_size, uint64_t seed, bool drop_last = false);
  IndexList epoch_order(int64_t epoch) const override;
  int64_t epoch_length() const override { return int64_t(indices_.size()); }

 private:
  IndexList indices_;
  uint64_t seed_;
};

// The protocol's Resampling: each draw picks a sample with probability inversely proportional
// to its group's size, with replacement, so groups are equally represented in expectation. An
// epoch is as many draws as there are samples. `group_ids[i]` is the group of indices[i]
// ((y, b) or (y, b, g) ids, as the method asks).
class GroupBalancedSampler final : public Sampler {
 public:
  GroupBalancedSampler(IndexList indices, std::vector<int> group_ids, int64_t batch_size, uint64_t seed,
                       bool drop_last = false);
  IndexList epoch_order(int64_t epoch) const override;
  int64_t epoch_length() const override { return length_; }

 private:
  std::vector<IndexList> members_;  // non-empty groups only
  int64_t length_;
  uint64_t seed_;
};

// The (y, b) or (y, b, g) group id of each of `indices`.
std::vector<int> group_ids(const Manifest& manifest, const IndexList& indices, const GroupIndex& groups,
                           bool with_source);

}  // namespace ffr::data
