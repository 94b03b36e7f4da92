#include "engine/comm/mpi/mpi_communicator.h"

#include "engine/comm/backends.h"
#include "engine/error.h"

#include <cstdlib>

namespace ffr::comm {
namespace {

MPI_Datatype mpi_type(DType dtype) {
  switch (dtype) {
    case DType::Float32: return MPI_FLOAT;
    case DType::Float64: return MPI_DOUBLE;
    case DType::Int32: return MPI_INT32_T;
    case DType::Int64: return MPI_INT64_T;
    case DType::BFloat16: break;
  }
  throw Error(detail::concat("MPI communicator: ", dtype_name(dtype), " tensors are not supported (sum in float32)"));
}

void check_host(const Tensor& t, const char* what) {
  FFR_CHECK(t.device().is_cpu(), "MPI communicator: ", what, " of a ", t.str(),
            " tensor; MPI moves host memory (use the nccl backend for CUDA tensors)");
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    ensure_mpi_started();
    // A communicator of our own, so our collectives never interleave with a host program's.
    check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
    check_mpi(MPI_Comm_rank(comm_, &rank_), "MPI_Comm_rank");
    check_mpi(MPI_Comm_size(comm_, &size_), "MPI_Comm_size");
  }
  ~MpiCommunicator() override {
    int finalized = 0;
    MPI_Finalized(&finalized);
    if (!finalized) MPI_Comm_free(&comm_);
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string backend() const override { return "mpi"; }

  void all_reduce_sum(Tensor& t) override {
    check_host(t, "all_reduce_sum");
    if (t.numel() == 0) return;
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, t.raw_data(), int(t.numel()), mpi_type(t.dtype()), MPI_SUM, comm_),
              "MPI_Allreduce");
  }
  void broadcast(Tensor& t, int root) override {
    check_host(t, "broadcast");
    broadcast_bytes(t.raw_data(), t.nbytes(), root);
  }
  void broadcast_bytes(void* data, size_t bytes, int root) override {
    FFR_CHECK(root >= 0 && root < size_, "broadcast: no rank ", root, " of ", size_);
    // Counts are int in MPI: large buffers go in pieces.
    constexpr size_t kPiece = size_t(1) << 30;
    for (size_t at = 0; at < bytes; at += kPiece) {
      const int n = int(std::min(kPiece, bytes - at));
      check_mpi(MPI_Bcast(static_cast<char*>(data) + at, n, MPI_BYTE, root, comm_), "MPI_Bcast");
    }
  }
  void barrier() override { check_mpi(MPI_Barrier(comm_), "MPI_Barrier"); }

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0, size_ = 1;
};

void finalize_mpi() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

}  // namespace

void ensure_mpi_started() {
  int initialized = 0;
  check_mpi(MPI_Initialized(&initialized), "MPI_Initialized");
  if (initialized) return;
  // Collectives are called from the training thread only; loader threads never touch MPI.
  int provided = 0;
  check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  std::atexit(finalize_mpi);
}

void check_mpi(int status, const char* call) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING] = {};
  int length = 0;
  MPI_Error_string(status, text, &length);
  throw Error(detail::concat(call, " failed: ", std::string(text, size_t(length))));
}

std::unique_ptr<Communicator> make_mpi_communicator() { return std::make_unique<MpiCommunicator>(); }

}  // namespace ffr::comm
