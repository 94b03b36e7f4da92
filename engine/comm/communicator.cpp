#include "engine/comm/communicator.h"

#include "engine/comm/backends.h"
#include "engine/error.h"

namespace ffr::comm {
namespace {

// One process: the sum over ranks of a tensor is the tensor.
class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string backend() const override { return "single"; }
  void all_reduce_sum(Tensor&) override {}
  void broadcast(Tensor&, int root) override { FFR_CHECK(root == 0, "broadcast: no rank ", root, " in one process"); }
  void broadcast_bytes(void*, size_t, int root) override {
    FFR_CHECK(root == 0, "broadcast_bytes: no rank ", root, " in one process");
  }
  void barrier() override {}
};

}  // namespace

std::vector<std::string> available_backends() {
  std::vector<std::string> names{"single"};
#ifdef FFR_WITH_MPI
  names.push_back("mpi");
#endif
#ifdef FFR_WITH_NCCL
  names.push_back("nccl");
#endif
  return names;
}

std::unique_ptr<Communicator> make_communicator(const std::string& backend, int device) {
  if (backend == "single") return std::make_unique<SingleProcess>();
  if (backend == "mpi") {
#ifdef FFR_WITH_MPI
    return make_mpi_communicator();
#else
    throw InputError("communicator 'mpi': this build has no MPI (configure with -DFFR_ENABLE_MPI=ON; "
                     "Debian: apt-get install libopenmpi-dev openmpi-bin)");
#endif
  }
  if (backend == "nccl") {
#ifdef FFR_WITH_NCCL
    return make_nccl_communicator(device);
#else
    throw InputError("communicator 'nccl': this build has no NCCL (configure with -DFFR_ENABLE_NCCL=ON "
                     "-DFFR_ENABLE_MPI=ON on a CUDA build)");
#endif
  }
  throw InputError("communicator '" + backend + "': unknown (expected single, mpi or nccl)");
}

}  // namespace ffr::comm
