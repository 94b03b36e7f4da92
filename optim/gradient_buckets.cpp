#include "optim/gradient_buckets.h"

#include "engine/error.h"
#include "engine/memory_copy.h"
#include "kernels/elementwise.h"

namespace ffr {

GradientBuckets::GradientBuckets(comm::Communicator& communicator, std::vector<Tensor> parameters, size_t bucket_bytes,
                                 Reduction reduction)
    : communicator_(communicator), reduction_(reduction), parameters_(std::move(parameters)) {
  FFR_CHECK(!parameters_.empty(), "GradientBuckets: no parameters");
  const Device device = parameters_.front().device();
  std::vector<int64_t> sizes;
  for (size_t i = parameters_.size(); i-- > 0;) {
    const Tensor& p = parameters_[i];
    FFR_CHECK(p.dtype() == DType::Float32 && p.device() == device, "GradientBuckets: ", p.str(),
              " (expected float32 on ", device.str(), ")");
    const size_t bytes = p.nbytes();
    if (buckets_.empty() || (sizes.back() > 0 && size_t(sizes.back()) * sizeof(float) + bytes > bucket_bytes)) {
      buckets_.emplace_back();
      sizes.push_back(0);
    }
    buckets_.back().members.push_back(i);
    sizes.back() += p.numel();
  }
  for (size_t b = 0; b < buckets_.size(); ++b) buckets_[b].flat = Tensor::empty({sizes[b]}, DType::Float32, device);
}

void GradientBuckets::reduce() {
  if (communicator_.size() == 1) return;
  const double scale = 1.0 / double(communicator_.size());
  for (Bucket& bucket : buckets_) {
    const Device device = bucket.flat.device();
    char* flat = static_cast<char*>(bucket.flat.raw_data());
    size_t at = 0;
    for (size_t i : bucket.members) {
      const Tensor grad = parameters_[i].grad();
      const size_t bytes = parameters_[i].nbytes();
      if (grad.defined()) {
        copy_bytes(flat + at, device, grad.raw_data(), device, bytes, false);
      } else {
        Tensor zeros = Tensor::zeros(parameters_[i].shape(), DType::Float32, device);
        copy_bytes(flat + at, device, zeros.raw_data(), device, bytes, false);
      }
      at += bytes;
    }
    communicator_.all_reduce_sum(bucket.flat);
    const Tensor reduced = reduction_ == Reduction::Mean ? mul_scalar(bucket.flat, scale) : bucket.flat;
    const char* from = static_cast<const char*>(reduced.raw_data());
    at = 0;
    for (size_t i : bucket.members) {
      const Tensor grad = parameters_[i].grad();
      const size_t bytes = parameters_[i].nbytes();
      if (grad.defined()) copy_bytes(grad.raw_data(), device, from + at, device, bytes, false);
      at += bytes;
    }
  }
}

}  // namespace ffr
