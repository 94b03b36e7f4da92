// engine/comm in one process: the single backend is the identity, missing backends name the CMake
// option that builds them, GradientBuckets splits parameters into buckets in backward order, and
// ffr/data_parallel's rank slices partition a batch.
// The MPI backend itself is tested under mpirun (tests/comm/mpi_communicator_test.cpp).
#include "data_test_support.h"
#include "engine/comm/communicator.h"
#include "ffr/data_parallel.h"
#include "kernels/batch_norm.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "layers/sync_batch_norm.h"
#include "optim/gradient_buckets.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>

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

// On one rank, synchronised batch norm is batch norm: the same output, gradients and running
// statistics as the fused kernel (to float32 rounding: it sums x and x^2 where the kernel
// subtracts the mean first).
TEST(SyncBatchNorm, OnOneRankItIsBatchNorm) {
  auto comm = comm::make_communicator("single");
  Rng rng(7);
  const Tensor x0 = Tensor::uniform({4, 3, 2, 5}, -2.0, 3.0, rng);
  const Tensor w0 = Tensor::uniform({3}, 0.5, 1.5, rng), b0 = Tensor::uniform({3}, -0.5, 0.5, rng);
  const Tensor weights = Tensor::uniform({4, 3, 2, 5}, -1.0, 1.0, rng);  // a loss that weighs every output
  struct Out {
    std::vector<float> y, dx, dw, db, mean, var;
  };
  auto run = [&](bool sync) {
    Tensor x = x0.clone(), w = w0.clone(), b = b0.clone();
    x.set_requires_grad(true);
    w.set_requires_grad(true);
    b.set_requires_grad(true);
    Tensor running_mean = Tensor::zeros({3}), running_var = Tensor::ones({3});
    const Tensor y = sync ? sync_batch_norm(x, w, b, running_mean, running_var, 0.1, 1e-5, *comm)
                          : batch_norm(x, w, b, running_mean, running_var, true, 0.1, 1e-5);
    sum(y * weights).backward();
    return Out{y.to_vector<float>(), x.grad().to_vector<float>(), w.grad().to_vector<float>(),
               b.grad().to_vector<float>(), running_mean.to_vector<float>(), running_var.to_vector<float>()};
  };
  const Out fused = run(false), synced = run(true);
  auto expect_near = [](const std::vector<float>& a, const std::vector<float>& b, const char* what) {
    ASSERT_EQ(a.size(), b.size()) << what;
    for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], b[i], 1e-4 * (1.0 + std::abs(a[i]))) << what << " " << i;
  };
  expect_near(fused.y, synced.y, "y");
  expect_near(fused.dx, synced.dx, "dx");
  expect_near(fused.dw, synced.dw, "dweight");
  expect_near(fused.db, synced.db, "dbias");
  expect_near(fused.mean, synced.mean, "running_mean");
  expect_near(fused.var, synced.var, "running_var");
}

}  // namespace
}  // namespace ffr
