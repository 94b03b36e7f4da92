#include "engine/memory_copy.h"

#include "engine/error.h"
#include "engine/tensor.h"

#include <cstring>

#ifdef FFR_WITH_CUDA
#include "engine/cuda/allocators.h"
#include "engine/cuda/context.h"
#endif

namespace ffr {

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes, bool wait) {
  if (bytes == 0) return;
  if (dst_device.is_cpu() && src_device.is_cpu()) {
    std::memcpy(dst, src, bytes);
    return;
  }
#ifdef FFR_WITH_CUDA
  // On the stream of the device involved (the destination's when both are GPUs), with that
  // device current for the call and restored after.
  const Device device = dst_device.is_cuda() ? dst_device : src_device;
  DeviceGuard guard(device);
  const cudaStream_t stream = cuda::context(device.index).stream;
  FFR_CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDefault, stream));
  if (wait) {
    FFR_CUDA_CHECK(cudaStreamSynchronize(stream));
  } else {
    // A pinned host buffer must outlive the copy in the allocator's eyes, whoever frees it.
    if (src_device.is_cpu()) cuda::record_pinned_use(src, stream, device.index);
    if (dst_device.is_cpu()) cuda::record_pinned_use(dst, stream, device.index);
  }
#else
  FFR_FAIL("copy to or from ", (dst_device.is_cuda() ? dst_device : src_device).str(),
           " in a build without CUDA");
#endif
}

void synchronize() {
#ifdef FFR_WITH_CUDA
  if (cuda_available()) FFR_CUDA_CHECK(cudaStreamSynchronize(cuda::stream()));
#endif
}

}  // namespace ffr
