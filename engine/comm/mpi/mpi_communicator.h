// The MPI backend's pieces that the NCCL backend shares: MPI started once per process, and
// MPI's error text in exceptions.
#pragma once

#include <mpi.h>

#include <string>

namespace ffr::comm {

// MPI_Init_thread on first use (unless the program started MPI itself); MPI_Finalize at exit.
void ensure_mpi_started();

// Throws ffr::Error naming `call` and MPI's text for `status` unless it is MPI_SUCCESS.
void check_mpi(int status, const char* call);

}  // namespace ffr::comm
