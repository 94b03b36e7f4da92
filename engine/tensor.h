// Tensor: a shape, an element type, a device and a reference to storage. Tensors are always
// contiguous (row-major); reshape is a view, transpose/permute are copies (ops in kernels/).
// Copying a Tensor copies a reference, as in PyTorch.
//
// Autograd: a tensor produced by an op from inputs that require grad carries the op's Node
// (grad_fn); backward() walks those nodes in reverse and accumulates into leaves' grad().
#pragma once

#include "engine/device.h"
#include "engine/dtype.h"

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ffr {

using Shape = std::vector<int64_t>;

int64_t shape_numel(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[2,3,4]"

class Allocator;
class Node;
class Rng;

// A block of memory on one device, freed through the allocator that made it.
class Storage {
 public:
  Storage(size_t bytes, Device device, Allocator* allocator);
  // Wraps memory owned by someone else (not freed here).
  Storage(void* data, size_t bytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t bytes() const { return bytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t bytes_ = 0;
  Device device_;
  Allocator* allocator_ = nullptr;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  size_t offset_bytes = 0;
  Shape shape;
  DType dtype = DType::Float32;
  Device device;

  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  bool grad_zeroed = false;                // zero_grad() ran: `grad` reads as zeros, its bytes are stale
  std::shared_ptr<Node> grad_fn;           // set on op outputs
  std::shared_ptr<Node> grad_accumulator;  // leaves: made on first use
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- creation ----
  static Tensor empty(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  // Host memory that the GPU can copy from asynchronously (plain host memory without a GPU).
  static Tensor empty_pinned(const Shape& shape, DType dtype = DType::Float32);
  static Tensor zeros(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::Float32,
                     Device device = Device::cpu());
  // Copies host values into a new tensor (converted to `dtype`) on `device`.
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape,
                            DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape,
                            DType dtype = DType::Float64, Device device = Device::cpu());
  static Tensor from_vector(const std::vector<int64_t>& values, const Shape& shape,
                            DType dtype = DType::Int64, Device device = Device::cpu());
  // Seeded random fills; the same (rng state, shape) gives the same values on CPU and CUDA.
  static Tensor uniform(const Shape& shape, double low, double high, Rng& rng,
                        DType dtype = DType::Float32, Device device = Device::cpu());
  static Tensor normal(const Shape& shape, double mean, double stddev, Rng& rng,
                       DType dtype = DType::Float32, Device device = Device::cpu());
  // Wraps caller-owned memory; the caller keeps it alive while the tensor lives.
  static Tensor from_blob(void* data, const Shape& shape, DType dtype, Device device);

  // ---- properties ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const;
  int64_t size(int dim) const;  // negative dims count from the end
  int ndim() const { return int(shape().size()); }
  int64_t numel() const;
  DType dtype() const;
  Device device() const;
  bool is_cuda() const { return device().is_cuda(); }
  size_t nbytes() const;
  std::string str() const;  // "float32[2,3] cuda:0"

  void* raw_data() const;
  template <typename T>
  T* data() const { return static_cast<T*>(raw_data()); }

  // ---- movement (copies; host reads synchronise the device, by design) ----
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;  // differentiable (kernels/convert)
  Tensor cpu() const { return to(Device::cpu()); }
  Tensor cuda(int index = 0) const { return to(Device::cuda(index)); }
  Tensor clone() const;                 // same device and dtype, new storage (not differentiable)
  template <typename T>
  std::vector<T> to_vector() const;     // float, double or int64 (converting)
  double item() const;                  // one element, as double

  // In place, no autograd: fill, copy from a same-shaped tensor (any device/dtype).
  void fill_(double value);
  void zero_() { fill_(0.0); }
  void copy_(const Tensor& src);

  // A view of the same storage with another shape (numel must match; one dim may be -1).
  Tensor reshape(const Shape& shape) const;  // differentiable
  Tensor view_as_shape(const Shape& shape) const;  // same, no autograd

  // ---- autograd ----
  bool requires_grad() const;
  Tensor& set_requires_grad(bool requires);
  Tensor grad() const;
  void set_grad(const Tensor& grad);
  // Zeroes the grad, keeping its buffer (for graph capture and the NaN/Inf guard's plan). Lazily:
  // the next backward overwrites the buffer (one copy, not a fill and an add), and grad() fills it
  // only if read before that.
  void zero_grad();
  const std::shared_ptr<Node>& grad_fn() const;
  // Backpropagates from this tensor; `grad` defaults to ones (scalar outputs).
  void backward(const Tensor& grad = Tensor()) const;
  // Same storage, cut from the graph.
  Tensor detach() const;

  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

// Tensors with names, in order: a state dict, a safetensors file's contents, optimizer state.
using NamedTensors = std::vector<std::pair<std::string, Tensor>>;

// Async copy on the current stream (host<->device, device<->device). Same shape and dtype.
void copy_async(Tensor& dst, const Tensor& src);

// Waits for all work queued on this thread's stream (a host synchronisation: never in a step).
void synchronize();

}  // namespace ffr
