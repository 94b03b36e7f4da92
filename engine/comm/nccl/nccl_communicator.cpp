// NCCL over this thread's CUDA stream, bootstrapped through MPI as llm.c does: rank 0 makes the
// unique id, MPI broadcasts it, every rank joins with ncclCommInitRank. One rank per GPU.
#include "engine/comm/backends.h"
#include "engine/comm/mpi/mpi_communicator.h"
#include "engine/cuda/check.h"
#include "engine/cuda/context.h"
#include "engine/error.h"

#include <cuda_runtime.h>
#include <nccl.h>

namespace ffr::comm {
namespace {

void check_nccl(ncclResult_t status, const char* call) {
  if (status != ncclSuccess) throw Error(detail::concat(call, " failed: ", ncclGetErrorString(status)));
}

ncclDataType_t nccl_type(DType dtype) {
  switch (dtype) {
    case DType::Float32: return ncclFloat32;
    case DType::Float64: return ncclFloat64;
    case DType::BFloat16: return ncclBfloat16;
    case DType::Int32: return ncclInt32;
    case DType::Int64: return ncclInt64;
  }
  throw Error("NCCL communicator: unknown dtype");
}

void check_device(const Tensor& t, const char* what) {
  FFR_CHECK(t.device().is_cuda(), "NCCL communicator: ", what, " of a ", t.str(),
            " tensor; NCCL moves device memory (use the mpi backend on the CPU)");
}

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(int device) {
    bootstrap_ = make_mpi_communicator();
    if (device >= 0) FFR_CUDA_CHECK(cudaSetDevice(device));
    ncclUniqueId id;
    if (bootstrap_->rank() == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    bootstrap_->broadcast_bytes(&id, sizeof id, 0);
    check_nccl(ncclCommInitRank(&comm_, bootstrap_->size(), id, bootstrap_->rank()), "ncclCommInitRank");
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
  }
  int rank() const override { return bootstrap_->rank(); }
  int size() const override { return bootstrap_->size(); }
  std::string backend() const override { return "nccl"; }

  // Queued on the stream the ops use, so it is ordered after the backward pass that made the
  // gradients and before the optimizer step, with no host synchronisation.
  void all_reduce_sum(Tensor& t) override {
    check_device(t, "all_reduce_sum");
    if (t.numel() == 0) return;
    check_nccl(ncclAllReduce(t.raw_data(), t.raw_data(), size_t(t.numel()), nccl_type(t.dtype()), ncclSum, comm_,
                             cuda::stream()),
               "ncclAllReduce");
  }
  void broadcast(Tensor& t, int root) override {
    check_device(t, "broadcast");
    if (t.numel() == 0) return;
    check_nccl(ncclBroadcast(t.raw_data(), t.raw_data(), size_t(t.numel()), nccl_type(t.dtype()), root, comm_,
                             cuda::stream()),
               "ncclBroadcast");
  }
  void broadcast_bytes(void* data, size_t bytes, int root) override { bootstrap_->broadcast_bytes(data, bytes, root); }
  void barrier() override {
    FFR_CUDA_CHECK(cudaStreamSynchronize(cuda::stream()));
    bootstrap_->barrier();
  }

 private:
  std::unique_ptr<Communicator> bootstrap_;  // MPI: the unique id, host bytes, barriers
  ncclComm_t comm_ = nullptr;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(int device) { return std::make_unique<NcclCommunicator>(device); }

}  // namespace ffr::comm
