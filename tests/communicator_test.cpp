// engine/comm in one process: the single backend is the identity, missing backends name the CMake
// option that builds them, GradientBuckets splits parameters into buckets in backward order, and
// ffr/data_parallel's rank slices partition a batch.
// The MPI backend itself is tested under mpirun (tests/comm/mpi_communicator_test.cpp).
#include "data_test_support.h"
#include "engine/comm/communicator.h"
#include "ffr/data_parallel.h"
#include "optim/gradient_buckets.h"

#include <gtest/gtest.h>

#include <algorithm>

namespace ffr {
namespace {

using data::testing::expect_input_error;

TEST(Communicator, SingleProcessIsTheIdentity) {
  auto comm = comm::make_communicator("single");
  EXPECT_EQ(comm->rank(), 0);
  EXPECT_EQ(comm->size(), 1);
  Tensor t = Tensor::from_vector(std::vector<float>{1.5f, -2.0f}, {2});
  comm->all_reduce_sum(t);
  comm->broadcast(t, 0);
  comm->barrier();
  EXPECT_EQ(t.to_vector<float>(), (std::vector<float>{1.5f, -2.0f}));
}

TEST(Communicator, BackendsNotBuiltAreNamedWithTheirOption) {
  const std::vector<std::string> built = comm::available_backends();
  EXPECT_EQ(built.front(), "single");
  if (std::find(built.begin(), built.end(), "mpi") == built.end()) {
    expect_input_error([] { comm::make_communicator("mpi"); }, {"mpi", "FFR_ENABLE_MPI"});
  }
  if (std::find(built.begin(), built.end(), "nccl") == built.end()) {
    expect_input_error([] { comm::make_communicator("nccl"); }, {"nccl", "FFR_ENABLE_NCCL"});
  }
  expect_input_error([] { comm::make_communicator("gloo"); }, {"gloo", "single, mpi or nccl"});
}

TEST(GradientBuckets, BucketsFollowTheByteLimitAndOneRankChangesNothing) {
  auto comm = comm::make_communicator("single");
  std::vector<Tensor> parameters;
  for (int64_t n : {10, 10, 30, 5}) {
    Tensor p = Tensor::zeros({n});
    p.set_requires_grad(true);
    parameters.push_back(p);
  }
  // 100-byte buckets, filled from the last parameter: {5, 30 floats}=140 B > 100, so [5], [30], [10, 10].
  GradientBuckets buckets(*comm, parameters, 100);
  EXPECT_EQ(buckets.bucket_count(), 3u);
  buckets.reduce();  // size 1: nothing to do
  GradientBuckets one(*comm, parameters, size_t(1) << 20);
  EXPECT_EQ(one.bucket_count(), 1u);
}

TEST(DataParallel, RankSlicesCoverTheBatchOnceAndDifferByAtMostOne) {
  for (int64_t rows : {0, 1, 5, 16, 17}) {
    for (int size : {1, 2, 3}) {
      int64_t next = 0;
      for (int rank = 0; rank < size; ++rank) {
        const RankSlice s = rank_slice(rows, rank, size);
        EXPECT_EQ(s.begin, next) << rows << " rows, rank " << rank << " of " << size;
        EXPECT_LE(s.end - s.begin, rows / size + 1);
        EXPECT_GE(s.end - s.begin, rows / size);
        next = s.end;
      }
      EXPECT_EQ(next, rows);
    }
  }
  EXPECT_EQ(rank_slice(1, 1, 2).end - rank_slice(1, 1, 2).begin, 0);  // a rank may get none of a last batch
}

}  // namespace
}  // namespace ffr
