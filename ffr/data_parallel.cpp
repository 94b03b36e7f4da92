#include "ffr/data_parallel.h"

#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/memory_copy.h"
#include "kernels/slice.h"

namespace ffr {

RankSlice rank_slice(int64_t rows, int rank, int size) {
  FFR_CHECK(size >= 1 && rank >= 0 && rank < size, "rank_slice: rank ", rank, " of ", size);
  const int64_t base = rows / size, extra = rows % size;
  RankSlice s;
  s.begin = rank * base + std::min<int64_t>(rank, extra);
  s.end = s.begin + base + (rank < extra ? 1 : 0);
  return s;
}

Tensor data_parallel_forward_backward(Classifier& model, const Tensor& images,
                                      const std::function<Tensor(const Tensor& global_logits)>& loss_of,
                                      comm::Communicator& communicator) {
  const int64_t rows = images.size(0);
  const RankSlice mine = rank_slice(rows, communicator.rank(), communicator.size());
  const int64_t classes = model.num_classes();
  // Gathered by a sum: each rank writes its rows into zeros.
  Tensor gathered = Tensor::zeros({rows, classes}, DType::Float32, images.device());
  Tensor local_logits;
  if (mine.end > mine.begin) {
    local_logits = model.forward(slice(images, 0, mine.begin, mine.end));
    FFR_CHECK(local_logits.dtype() == DType::Float32 && local_logits.size(1) == classes,
              "data-parallel step: logits ", local_logits.str(), " (expected float32 [rows, ", classes, "])");
    char* into = static_cast<char*>(gathered.raw_data()) + size_t(mine.begin * classes) * sizeof(float);
    copy_bytes(into, gathered.device(), local_logits.raw_data(), local_logits.device(), local_logits.nbytes(), false);
  }
  communicator.all_reduce_sum(gathered);
  gathered.set_requires_grad(true);
  const Tensor loss = loss_of(gathered);
  loss.backward();
  if (local_logits.defined()) local_logits.backward(slice(gathered.grad(), 0, mine.begin, mine.end));
  return loss;
}

void broadcast_buffers(Classifier& model, comm::Communicator& communicator, int root) {
  NoGradGuard no_grad;
  for (auto& [name, buffer] : model.named_buffers()) communicator.broadcast(buffer, root);
  for (Module* m : model.modules()) m->on_state_loaded();
}

}  // namespace ffr
