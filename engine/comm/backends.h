// The backends' factories, for communicator.cpp only (each is compiled when its CMake option is on).
#pragma once

#include "engine/comm/communicator.h"

#include <memory>

namespace ffr::comm {

std::unique_ptr<Communicator> make_mpi_communicator();
std::unique_ptr<Communicator> make_nccl_communicator(int device);

}  // namespace ffr::comm
