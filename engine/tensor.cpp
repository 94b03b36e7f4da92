#include "engine/tensor.h"

#include "engine/allocator.h"
#include "engine/autograd.h"
#include "engine/error.h"
#include "engine/memory_copy.h"
#include "engine/rng.h"
#include "kernels/convert.h"
#include "kernels/elementwise.h"
#include "kernels/fill.h"

#include <sstream>

namespace ffr {

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

std::string shape_str(const Shape& shape) {
  std::ostringstream out;
  out << "[";
  for (size_t i = 0; i < shape.size(); ++i) out << (i ? "," : "") << shape[i];
  out << "]";
  return out.str();
}

// ---- Storage ----

Storage::Storage(size_t bytes, Device device, Allocator* allocator)
    : data_(allocator->allocate(bytes)), bytes_(bytes), device_(device), allocator_(allocator) {}

Storage::Storage(void* data, size_t bytes, Device device) : data_(data), bytes_(bytes), device_(device) {}

Storage::~Storage() {
  if (allocator_ != nullptr) allocator_->deallocate(data_, bytes_);
}

// ---- creation ----

namespace {

void check_shape(const Shape& shape) {
  for (int64_t d : shape) FFR_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
}

void check_device_usable(Device device) {
  if (device.is_cuda()) {
    FFR_CHECK(cuda_available(), "a tensor on ", device.str(), " was requested but no GPU is usable");
    FFR_CHECK(device.index < cuda_device_count(), "no device ", device.str());
  }
}

Tensor make_tensor(const Shape& shape, DType dtype, Device device, Allocator& allocator) {
  check_shape(shape);
  check_device_usable(device);
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->device = device;
  impl->storage = std::make_shared<Storage>(size_t(shape_numel(shape)) * dtype_size(dtype), device, &allocator);
  return Tensor(std::move(impl));
}

}  // namespace

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  check_device_usable(device);
  return make_tensor(shape, dtype, device, allocator_for(device));
}

Tensor Tensor::empty_pinned(const Shape& shape, DType dtype) {
  return make_tensor(shape, dtype, Device::cpu(), pinned_allocator());
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  t.fill_(value);
  return t;
}

namespace {
template <typename T>
Tensor from_host_values(const std::vector<T>& values, const Shape& shape, DType dtype, Device device) {
  FFR_CHECK(int64_t(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
            " values for shape ", shape_str(shape));
  Tensor host = Tensor::empty(shape, dtype, Device::cpu());
  convert_cpu(values.data(), dtype_of<T>::value, host.raw_data(), dtype, host.numel());
  return host.to(device);
}
}  // namespace

Tensor Tensor::from_vector(const std::vector<float>& v, const Shape& s, DType d, Device dev) {
  return from_host_values(v, s, d, dev);
}
Tensor Tensor::from_vector(const std::vector<double>& v, const Shape& s, DType d, Device dev) {
  return from_host_values(v, s, d, dev);
}
Tensor Tensor::from_vector(const std::vector<int64_t>& v, const Shape& s, DType d, Device dev) {
  return from_host_values(v, s, d, dev);
}

Tensor Tensor::uniform(const Shape& shape, double low, double high, Rng& rng, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  const PhiloxPosition at{rng.seed(), rng.stream(), rng.reserve(uint64_t(t.numel()))};
#ifdef FFR_WITH_CUDA
  if (device.is_cuda()) {
    uniform_cuda(t.raw_data(), t.numel(), dtype, at, low, high);
    return t;
  }
#endif
  uniform_cpu(t.raw_data(), t.numel(), dtype, at, low, high);
  return t;
}

Tensor Tensor::normal(const Shape& shape, double mean, double stddev, Rng& rng, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  const PhiloxPosition at{rng.seed(), rng.stream(), rng.reserve(2 * uint64_t(t.numel()))};
#ifdef FFR_WITH_CUDA
  if (device.is_cuda()) {
    normal_cuda(t.raw_data(), t.numel(), dtype, at, mean, stddev);
    return t;
  }
#endif
  normal_cpu(t.raw_data(), t.numel(), dtype, at, mean, stddev);
  return t;
}

Tensor Tensor::from_blob(void* data, const Shape& shape, DType dtype, Device device) {
  check_shape(shape);
  auto impl = std::make_shared<TensorImpl>();
  impl->shape = shape;
  impl->dtype = dtype;
  impl->device = device;
  impl->storage = std::make_shared<Storage>(data, size_t(shape_numel(shape)) * dtype_size(dtype), device);
  return Tensor(std::move(impl));
}

// ---- properties ----

namespace {
const TensorImpl& checked(const std::shared_ptr<TensorImpl>& impl) {
  FFR_CHECK(impl != nullptr, "use of an undefined tensor");
  return *impl;
}
}  // namespace

const Shape& Tensor::shape() const { return checked(impl_).shape; }
int64_t Tensor::size(int dim) const {
  const int n = ndim();
  const int d = dim < 0 ? dim + n : dim;
  FFR_CHECK(d >= 0 && d < n, "dimension ", dim, " out of range for shape ", shape_str(shape()));
  return shape()[size_t(d)];
}
int64_t Tensor::numel() const { return shape_numel(shape()); }
DType Tensor::dtype() const { return checked(impl_).dtype; }
Device Tensor::device() const { return checked(impl_).device; }
size_t Tensor::nbytes() const { return size_t(numel()) * dtype_size(dtype()); }
void* Tensor::raw_data() const {
  const TensorImpl& impl = checked(impl_);
  return static_cast<char*>(impl.storage->data()) + impl.offset_bytes;
}
std::string Tensor::str() const {
  if (!defined()) return "undefined";
  return std::string(dtype_name(dtype())) + shape_str(shape()) + " " + device().str();
}

// ---- movement ----

Tensor Tensor::to(Device target) const {
  if (device() == target) return *this;
  Tensor out = empty(shape(), dtype(), target);
  copy_bytes(out.raw_data(), target, raw_data(), device(), nbytes(), /*wait=*/target.is_cpu());
  return out;
}

Tensor Tensor::to(DType target) const { return to_dtype(*this, target); }

Tensor Tensor::clone() const {
  Tensor out = empty(shape(), dtype(), device());
  copy_bytes(out.raw_data(), device(), raw_data(), device(), nbytes(), false);
  return out;
}

template <typename T>
std::vector<T> Tensor::to_vector() const {
  Tensor host = to(Device::cpu());
  std::vector<T> out(size_t(host.numel()));
  convert_cpu(host.raw_data(), host.dtype(), out.data(), dtype_of<T>::value, host.numel());
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;

double Tensor::item() const {
  FFR_CHECK(numel() == 1, "item() needs one element, tensor is ", str());
  return to_vector<double>()[0];
}

void Tensor::fill_(double value) {
#ifdef FFR_WITH_CUDA
  if (is_cuda()) {
    fill_cuda(raw_data(), numel(), dtype(), value);
    return;
  }
#endif
  fill_cpu(raw_data(), numel(), dtype(), value);
}

void Tensor::copy_(const Tensor& src) {
  FFR_CHECK(src.shape() == shape(), "copy_: shape ", shape_str(src.shape()), " into ", shape_str(shape()));
  Tensor converted = src.dtype() == dtype() ? src : to_dtype(src.detach(), dtype());
  copy_bytes(raw_data(), device(), converted.raw_data(), converted.device(), nbytes(), false);
}

void copy_async(Tensor& dst, const Tensor& src) {
  FFR_CHECK(dst.shape() == src.shape() && dst.dtype() == src.dtype(), "copy_async: ", src.str(), " into ",
            dst.str());
  copy_bytes(dst.raw_data(), dst.device(), src.raw_data(), src.device(), src.nbytes(), false);
}

// ---- views ----

namespace {
Shape infer_shape(const Shape& requested, int64_t numel, const Shape& from) {
  Shape shape = requested;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      FFR_CHECK(infer < 0, "reshape ", shape_str(from), " -> ", shape_str(requested), ": more than one -1");
      infer = int(i);
    } else {
      FFR_CHECK(shape[i] >= 0, "reshape to negative dimension ", shape_str(requested));
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    FFR_CHECK(known > 0 && numel % known == 0, "cannot reshape ", shape_str(from), " to ", shape_str(requested));
    shape[size_t(infer)] = numel / known;
  }
  FFR_CHECK(shape_numel(shape) == numel, "cannot reshape ", shape_str(from), " to ", shape_str(requested));
  return shape;
}
}  // namespace

Tensor Tensor::view_as_shape(const Shape& new_shape) const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = checked(impl_).storage;
  impl->offset_bytes = impl_->offset_bytes;
  impl->shape = infer_shape(new_shape, numel(), shape());
  impl->dtype = impl_->dtype;
  impl->device = impl_->device;
  return Tensor(std::move(impl));
}

Tensor Tensor::reshape(const Shape& new_shape) const {
  Tensor out = view_as_shape(new_shape);
  const Shape input_shape = shape();
  record_op("reshape", out, {*this}, [input_shape](const Tensor& gy) {
    return std::vector<Tensor>{gy.reshape(input_shape)};
  });
  return out;
}

// ---- autograd ----

bool Tensor::requires_grad() const { return checked(impl_).requires_grad; }

Tensor& Tensor::set_requires_grad(bool requires) {
  TensorImpl& impl = const_cast<TensorImpl&>(checked(impl_));
  FFR_CHECK(!requires || is_floating(impl.dtype), "only floating tensors can require grad, got ", str());
  FFR_CHECK(impl.grad_fn == nullptr, "set_requires_grad on a non-leaf tensor (an op's output)");
  impl.requires_grad = requires;
  return *this;
}

Tensor Tensor::grad() const {
  TensorImpl& impl = const_cast<TensorImpl&>(checked(impl_));
  if (impl.grad_zeroed) {  // read before any backward wrote it: the zeros are due now
    impl.grad_zeroed = false;
    Tensor(impl.grad).zero_();
  }
  return Tensor(impl.grad);
}

void Tensor::set_grad(const Tensor& grad) {
  TensorImpl& impl = const_cast<TensorImpl&>(checked(impl_));
  impl.grad = grad.impl_ptr();
  impl.grad_zeroed = false;
}

void Tensor::zero_grad() {
  if (impl_ && impl_->grad) impl_->grad_zeroed = true;
}

const std::shared_ptr<Node>& Tensor::grad_fn() const { return checked(impl_).grad_fn; }

void Tensor::backward(const Tensor& grad) const {
  if (grad.defined()) {
    run_backward(*this, grad);
    return;
  }
  FFR_CHECK(numel() == 1, "backward() without a gradient needs a scalar, got ", str());
  run_backward(*this, Tensor::ones(shape(), dtype(), device()));
}

Tensor Tensor::detach() const {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = checked(impl_).storage;
  impl->offset_bytes = impl_->offset_bytes;
  impl->shape = impl_->shape;
  impl->dtype = impl_->dtype;
  impl->device = impl_->device;
  return Tensor(std::move(impl));
}

}  // namespace ffr
