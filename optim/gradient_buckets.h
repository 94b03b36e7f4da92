// Data parallelism's gradient step: after each rank's backward pass over its slice of the global
// batch, every parameter's gradient becomes the mean over the ranks, so each rank's optimizer
// takes the same step. Gradients travel in buckets of about `bucket_bytes` (one collective per
// bucket rather than per tensor: a ResNet-50 has 161 parameter tensors, many tiny), filled in
// reverse parameter order, the order backward produces them, as PyTorch's DDP does.
//
// Not overlapped with the backward pass yet: reduce() runs after it. Overlap needs a hook when
// a bucket's last gradient is final (the autograd tape has none today).
#pragma once

#include "engine/comm/communicator.h"
#include "engine/tensor.h"

#include <cstddef>
#include <vector>

namespace ffr {

class GradientBuckets {
 public:
  // Mean: each rank's gradient is of its own mean loss (PyTorch DDP). Sum: each rank's gradient is
  // its share of one loss over the global batch (ffr/data_parallel.h).
  enum class Reduction { Mean, Sum };

  // `parameters`: leaves with requires_grad, all on one device and float32.
  GradientBuckets(comm::Communicator& communicator, std::vector<Tensor> parameters,
                  size_t bucket_bytes = size_t(25) << 20, Reduction reduction = Reduction::Mean);

  // Every parameter's grad() := mean (or sum) over the ranks of its grad(). A parameter without a
  // gradient on this rank adds zeros to the others' mean (the collectives stay in step) and keeps
  // no gradient here.
  void reduce();

  size_t bucket_count() const { return buckets_.size(); }

 private:
  struct Bucket {
    std::vector<size_t> members;  // indices into parameters_
    Tensor flat;                  // their gradients, back to back
  };
  comm::Communicator& communicator_;
  Reduction reduction_;
  std::vector<Tensor> parameters_;
  std::vector<Bucket> buckets_;
};

}  // namespace ffr
