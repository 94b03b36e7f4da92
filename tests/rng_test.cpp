#include "engine/rng.h"
#include "engine/tensor.h"
#include "tests/testing.h"

#include <cmath>

namespace ffr {
namespace {

// Known-answer vectors of Philox-4x32-10 from the Random123 distribution (kat_vectors).
TEST(Rng, PhiloxKnownAnswers) {
  struct Vector {
    uint32_t counter[4], key[2], expected[4];
  };
  const Vector vectors[] = {
      {{0, 0, 0, 0}, {0, 0}, {0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}},
      {{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}, {0xffffffff, 0xffffffff},
       {0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}},
      {{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}, {0xa4093822, 0x299f31d0},
       {0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}},
  };
  for (const Vector& v : vectors) {
    uint32_t out[4];
    philox4x32(v.counter, v.key, out);
    for (int i = 0; i < 4; ++i) EXPECT_EQ(out[i], v.expected[i]) << "word " << i;
  }
}

TEST(Rng, SameSeedSameSequenceAndResumable) {
  Rng a(42), b(42), c(43);
  std::vector<uint64_t> first;
  for (int i = 0; i < 10; ++i) first.push_back(a.next_u64());
  for (int i = 0; i < 10; ++i) EXPECT_EQ(b.next_u64(), first[size_t(i)]);
  EXPECT_NE(c.next_u64(), first[0]);
  // Resuming from (seed, offset) continues the same stream.
  Rng resumed(42);
  resumed.set_offset(a.offset());
  EXPECT_EQ(resumed.next_u64(), a.next_u64());
}

TEST(Rng, BelowIsUniformAndInRange) {
  Rng rng(7);
  std::vector<int> counts(5, 0);
  for (int i = 0; i < 50000; ++i) {
    const uint64_t v = rng.below(5);
    ASSERT_LT(v, 5u);
    counts[size_t(v)]++;
  }
  for (int c : counts) EXPECT_NEAR(c, 10000, 400);  // ~4 sigma
}

TEST(Rng, TensorFillsHaveTheRightMoments) {
  Rng rng(11);
  const std::vector<double> u = Tensor::uniform({100000}, -2.0, 4.0, rng).to_vector<double>();
  const std::vector<double> n = Tensor::normal({100000}, 1.0, 3.0, rng).to_vector<double>();
  double su = 0, sn = 0, sn2 = 0;
  for (double v : u) {
    ASSERT_GE(v, -2.0);
    ASSERT_LT(v, 4.0);
    su += v;
  }
  for (double v : n) {
    sn += v;
    sn2 += v * v;
  }
  EXPECT_NEAR(su / 1e5, 1.0, 0.03);
  EXPECT_NEAR(sn / 1e5, 1.0, 0.05);
  EXPECT_NEAR(std::sqrt(sn2 / 1e5 - (sn / 1e5) * (sn / 1e5)), 3.0, 0.05);
}

TEST(RngCuda, UniformFillIsBitIdenticalToCpu) {
  FFR_REQUIRE_CUDA();
  Rng a(5), b(5);
  const Tensor cpu = Tensor::uniform({4097}, -1.0, 3.0, a);
  const Tensor gpu = Tensor::uniform({4097}, -1.0, 3.0, b, DType::Float32, Device::cuda(0));
  EXPECT_EQ(gpu.to_vector<float>(), cpu.to_vector<float>());
  Rng c(6), d(6);
  testing::expect_close(Tensor::normal({4097}, 0.0, 1.0, d, DType::Float32, Device::cuda(0)).cpu(),
                        Tensor::normal({4097}, 0.0, 1.0, c), 1e-5, 1e-5, "normal fill");
}

}  // namespace
}  // namespace ffr
