// Collective communication between the processes ("ranks") of one data-parallel training run:
// the one interface the trainer would ask (DESIGN.md: it never names MPI or NCCL). Backends:
//   single  one process, size 1: every collective is the identity (always built);
//   mpi     CPU tensors over MPI (Debian's OpenMPI; compiled in when found, CMake FFR_ENABLE_MPI);
//   nccl    CUDA tensors over NCCL on this thread's stream, its unique id broadcast through MPI
//           as llm.c does (CMake -DFFR_ENABLE_NCCL=ON, with CUDA and MPI).
// Nothing of MPI or NCCL is needed for a single-process build or run.
//
// The trainer asks it through TrainingContext::communicator (ffr/data_parallel.h).
#pragma once

#include "engine/tensor.h"

#include <cstddef>
#include <memory>
#include <string>
#include <vector>

namespace ffr::comm {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string backend() const = 0;  // "single", "mpi", "nccl"

  // Sums `tensor` over all ranks, in place (float32, float64 or int64; contiguous). Every rank
  // calls it with the same shape and dtype, in the same order.
  virtual void all_reduce_sum(Tensor& tensor) = 0;
  // `tensor` takes rank `root`'s values on every rank.
  virtual void broadcast(Tensor& tensor, int root) = 0;
  // Host bytes from `root` to every rank (small things: a seed, an NCCL unique id).
  virtual void broadcast_bytes(void* data, size_t bytes, int root) = 0;
  // Returns when every rank has called it (and, for device backends, their queued work is done).
  virtual void barrier() = 0;
};

// The backends this binary was built with ("single" always).
std::vector<std::string> available_backends();

// A communicator of the named backend. InputError naming the backend and the CMake option that
// builds it when this binary lacks it. "mpi" and "nccl" initialise MPI (once per process; it is
// finalised at exit); "nccl" uses CUDA device `device` (-1: the current one).
std::unique_ptr<Communicator> make_communicator(const std::string& backend, int device = -1);

}  // namespace ffr::comm
