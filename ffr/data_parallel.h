// Data-parallel training of one run (`mpirun -np N ffr-bench run ... --distributed`): what a
// training step does differently on each of N ranks (engine/comm). Every rank loads the same
// global batch and runs the forward and backward passes of its own slice of it. The slices'
// logits are gathered (a [batch, classes] sum, tiny next to the gradients), so the loss, GroupDRO's
// per-group losses and its q update are computed on the whole global batch, identically on every
// rank; each rank back-propagates the rows of d(loss)/d(logits) that are its own, and the
// gradients are summed over the ranks (optim/gradient_buckets.h). The step is then the
// single-process step on the global batch up to float rounding, for every training method.
//
// Batch norm uses each rank's own batch statistics while training (PyTorch DDP's default), or,
// with --sync-bn, the global batch's (layers/sync_batch_norm.h); the running statistics are made
// rank 0's at the end of each epoch, before validation, so every rank evaluates and saves the
// same model.
#pragma once

#include "engine/comm/communicator.h"
#include "layers/classifier.h"

#include <cstdint>
#include <functional>

namespace ffr {

// Rows [begin, end) of a global batch of `rows` that rank `rank` of `size` trains on: contiguous,
// sizes differing by at most one (a rank may get none of a small last batch).
struct RankSlice {
  int64_t begin = 0, end = 0;
};
RankSlice rank_slice(int64_t rows, int rank, int size);

// One step's forward and backward passes on this rank's slice of `images` (the global batch);
// `loss_of` maps the gathered global logits to the scalar loss. Leaves this rank's share of the
// gradients in the parameters' grad() (sum them over the ranks next) and returns the loss.
Tensor data_parallel_forward_backward(Classifier& model, const Tensor& images,
                                      const std::function<Tensor(const Tensor& global_logits)>& loss_of,
                                      comm::Communicator& communicator);

// Every rank's buffers (batch-norm running statistics) := rank `root`'s.
void broadcast_buffers(Classifier& model, comm::Communicator& communicator, int root = 0);

}  // namespace ffr
