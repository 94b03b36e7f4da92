// RAII owners of cuDNN descriptors: an op describes its tensors on the stack and the destructor
// frees them, on every path (exceptions included). Internal header (cuDNN types); include it
// from .cu files or host files under a cuda/ folder only.
#pragma once

#include "engine/cuda/check.h"
#include "engine/dtype.h"

#include <climits>
#include <cstdint>
#include <utility>

namespace ffr::cuda {

inline cudnnDataType_t cudnn_data_type(DType dtype) {
  switch (dtype) {
    case DType::Float32: return CUDNN_DATA_FLOAT;
    case DType::BFloat16: return CUDNN_DATA_BFLOAT16;
    case DType::Float64: return CUDNN_DATA_DOUBLE;
    case DType::Int32: return CUDNN_DATA_INT32;
    case DType::Int64: return CUDNN_DATA_INT64;
  }
  FFR_FAIL("no cuDNN data type for ", dtype_name(dtype));
}

// cuDNN describes sizes with int; a larger tensor must be split by the caller.
inline int cudnn_dim(int64_t v) {
  FFR_CHECK(v >= 0 && v <= INT_MAX, "dimension ", v, " exceeds cuDNN's int range");
  return int(v);
}

// One descriptor handle, created in the constructor and destroyed in the destructor. Movable,
// not copyable (two owners would destroy it twice).
template <typename Handle, cudnnStatus_t (*Create)(Handle*), cudnnStatus_t (*Destroy)(Handle)>
class CudnnDescriptor {
 public:
  CudnnDescriptor() { FFR_CUDNN_CHECK(Create(&handle_)); }
  ~CudnnDescriptor() {
    if (handle_ != nullptr) FFR_CUDA_WARN(Destroy(handle_));
  }
  CudnnDescriptor(const CudnnDescriptor&) = delete;
  CudnnDescriptor& operator=(const CudnnDescriptor&) = delete;
  CudnnDescriptor(CudnnDescriptor&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  CudnnDescriptor& operator=(CudnnDescriptor&& other) noexcept {
    std::swap(handle_, other.handle_);
    return *this;
  }

  Handle get() const { return handle_; }

 private:
  Handle handle_ = nullptr;
};

// A dense 4-D tensor of sizes (n, c, h, w), stored NCHW or channels-last (CUDNN_TENSOR_NHWC).
class TensorDescriptor
    : public CudnnDescriptor<cudnnTensorDescriptor_t, cudnnCreateTensorDescriptor, cudnnDestroyTensorDescriptor> {
 public:
  TensorDescriptor(DType dtype, int64_t n, int64_t c, int64_t h, int64_t w,
                   cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW) {
    FFR_CUDNN_CHECK(cudnnSetTensor4dDescriptor(get(), format, cudnn_data_type(dtype), cudnn_dim(n), cudnn_dim(c),
                                               cudnn_dim(h), cudnn_dim(w)));
  }
};

// Convolution weights of sizes [K, C/groups, kH, kW], stored so (NCHW) or [K, kH, kW, C/groups]
// (CUDNN_TENSOR_NHWC).
class FilterDescriptor
    : public CudnnDescriptor<cudnnFilterDescriptor_t, cudnnCreateFilterDescriptor, cudnnDestroyFilterDescriptor> {
 public:
  FilterDescriptor(DType dtype, int64_t k, int64_t c, int64_t h, int64_t w,
                   cudnnTensorFormat_t format = CUDNN_TENSOR_NCHW) {
    FFR_CUDNN_CHECK(cudnnSetFilter4dDescriptor(get(), cudnn_data_type(dtype), format, cudnn_dim(k), cudnn_dim(c),
                                               cudnn_dim(h), cudnn_dim(w)));
  }
};

// A 2-D cross-correlation with float32 accumulation (also for bfloat16 data).
class ConvolutionDescriptor
    : public CudnnDescriptor<cudnnConvolutionDescriptor_t, cudnnCreateConvolutionDescriptor,
                             cudnnDestroyConvolutionDescriptor> {
 public:
  ConvolutionDescriptor(int64_t pad_h, int64_t pad_w, int64_t stride_h, int64_t stride_w, int64_t dilation_h,
                        int64_t dilation_w, int64_t groups) {
    FFR_CUDNN_CHECK(cudnnSetConvolution2dDescriptor(get(), cudnn_dim(pad_h), cudnn_dim(pad_w), cudnn_dim(stride_h),
                                                    cudnn_dim(stride_w), cudnn_dim(dilation_h),
                                                    cudnn_dim(dilation_w), CUDNN_CROSS_CORRELATION,
                                                    CUDNN_DATA_FLOAT));
    FFR_CUDNN_CHECK(cudnnSetConvolutionGroupCount(get(), cudnn_dim(groups)));
  }
  void set_math_type(cudnnMathType_t math) { FFR_CUDNN_CHECK(cudnnSetConvolutionMathType(get(), math)); }
};

}  // namespace ffr::cuda
