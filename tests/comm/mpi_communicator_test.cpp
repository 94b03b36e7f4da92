// The MPI backend under `mpirun -np N` (ctest: mpi_communicator, N = 2): sums of float32, float64
// and int64 tensors, broadcasts, barriers, and GradientBuckets averaging gradients that differ per
// rank. Each rank checks its own results; the exit status is 1 on any mismatch (mpirun then
// fails). Sums of small integers in float are exact, so equality is checked exactly.
#include "engine/comm/communicator.h"
#include "kernels/elementwise.h"
#include "kernels/reduce.h"
#include "optim/gradient_buckets.h"

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

int failures = 0;

template <typename T>
void expect_equal(const std::vector<T>& got, const std::vector<T>& want, const std::string& what, int rank) {
  if (got == want) return;
  ++failures;
  std::fprintf(stderr, "rank %d: FAIL: %s\n", rank, what.c_str());
}

}  // namespace

int main() {
  using namespace ffr;
  auto comm = comm::make_communicator("mpi");
  const int rank = comm->rank(), size = comm->size();
  if (size < 2) {
    std::fprintf(stderr, "run under mpirun -np 2 (or more); got %d rank(s)\n", size);
    return 1;
  }
  const float r = float(rank);
  const float ranks_sum = float(size * (size - 1) / 2);

  Tensor f = Tensor::from_vector(std::vector<float>{r, 1.0f, -2.0f * r}, {3});
  comm->all_reduce_sum(f);
  expect_equal(f.to_vector<float>(), {ranks_sum, float(size), -2.0f * ranks_sum}, "float32 sum", rank);

  Tensor d = Tensor::from_vector(std::vector<double>{0.25 * rank}, {1});
  comm->all_reduce_sum(d);
  expect_equal(d.to_vector<double>(), {0.25 * ranks_sum}, "float64 sum", rank);

  // Per-group correct/total counters, as the evaluation would sum them.
  Tensor counts = Tensor::from_vector(std::vector<int64_t>{int64_t(rank) + 1, 7}, {2});
  comm->all_reduce_sum(counts);
  expect_equal(counts.to_vector<int64_t>(), {int64_t(ranks_sum) + size, int64_t(7 * size)}, "int64 sum", rank);

  Tensor b = Tensor::from_vector(std::vector<float>{r + 10.0f, r}, {2});
  comm->broadcast(b, size - 1);
  expect_equal(b.to_vector<float>(), {float(size - 1) + 10.0f, float(size - 1)}, "broadcast from the last rank", rank);

  uint64_t seed = rank == 0 ? 12345 : 0;
  comm->broadcast_bytes(&seed, sizeof seed, 0);
  expect_equal(std::vector<uint64_t>{seed}, {12345}, "broadcast_bytes", rank);
  comm->barrier();

  // Gradients rank + 1 (and a second tensor rank * 2) average to the mean over ranks, in several
  // buckets (32-byte buckets: one per tensor here, 28 and 12 bytes).
  std::vector<Tensor> parameters;
  for (int64_t n : {3, 7}) {
    Tensor p = Tensor::zeros({n});
    p.set_requires_grad(true);
    parameters.push_back(p);
  }
  const Tensor loss = sum(parameters[0]) * double(r + 1.0f) + sum(parameters[1]) * double(2.0f * r);
  loss.backward();
  GradientBuckets buckets(*comm, parameters, 32);
  buckets.reduce();
  const float mean_a = ranks_sum / float(size) + 1.0f, mean_b = 2.0f * ranks_sum / float(size);
  expect_equal(parameters[0].grad().to_vector<float>(), std::vector<float>(3, mean_a), "bucketed mean (a)", rank);
  expect_equal(parameters[1].grad().to_vector<float>(), std::vector<float>(7, mean_b), "bucketed mean (b)", rank);
  if (buckets.bucket_count() != 2) {
    ++failures;
    std::fprintf(stderr, "rank %d: FAIL: expected 2 buckets, got %zu\n", rank, buckets.bucket_count());
  }

  if (rank == 0 && failures == 0) std::printf("PASS: MPI communicator on %d ranks\n", size);
  return failures == 0 ? 0 : 1;
}
