// oneDNN (Debian's libdnnl, the library behind PyTorch's CPU convolutions) as a second CPU
// backend for float32 convolution and matmul. Built only with FFR_WITH_ONEDNN (CMake option
// FFR_ENABLE_ONEDNN); the im2col/OpenBLAS reference in kernels/conv2d.cpp and kernels/matmul.cpp
// stays, serves float64 (the gradient checks) and is what the oneDNN tests compare against.
//
// One CPU engine per process and one stream per thread: oneDNN's CPU engine holds no mutable
// state a caller could disturb, and a stream is cheap but not meant to be shared across threads.
#pragma once

#include <dnnl.hpp>

#include <string>

namespace ffr::onednn {

dnnl::engine& cpu_engine();
dnnl::stream& cpu_stream();

// A plain (row-major, dense) float32 memory object over a buffer we own; oneDNN never frees it.
dnnl::memory wrap(const dnnl::memory::desc& desc, const void* data);

// Turns a dnnl::error into an ffr::Error naming the op.
[[noreturn]] void rethrow(const dnnl::error& e, const std::string& op);

}  // namespace ffr::onednn
