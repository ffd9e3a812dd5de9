// Opening and closing the transport of data-parallel training (dist.h's Comm). Built with MPI when the
// Makefile finds mpicxx (QAT_HAVE_MPI; only this unit and bin/train see MPI's flags), else without.
// Read next: dist.h.
#pragma once
#include <memory>

#include "models/train/dist.h"

namespace qat {

// MPI's transport when the process was started by mpirun / srun (OpenMPI's, PMIx's or PMI's environment
// variables say so) and the build has MPI; else the single-process one. Call first in main.
std::unique_ptr<Comm> open_comm(int* argc, char*** argv);

// Ends the transport and returns the exit status: MPI_Finalize after success, an agreed stop on a signal (128 + it) or
// an error every rank knows of; MPI_Abort otherwise, so that the other ranks cannot wait forever.
int close_comm(std::unique_ptr<Comm> comm, int status);

}  // namespace qat
