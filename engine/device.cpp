#include "engine/device.h"

#include "engine/error.h"

#include <sstream>

#ifdef FFR_WITH_CUDA
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cudnn.h>

#include "engine/cuda/check.h"
#endif

namespace ffr {

std::string Device::str() const {
  return is_cuda() ? "cuda:" + std::to_string(index) : std::string("cpu");
}

bool built_with_cuda() {
#ifdef FFR_WITH_CUDA
  return true;
#else
  return false;
#endif
}

namespace {

struct CudaProbe {
  int count = 0;
  std::string why_not;  // empty when count > 0
};

const CudaProbe& probe() {
  static const CudaProbe result = [] {
    CudaProbe p;
#ifdef FFR_WITH_CUDA
    const cudaError_t status = cudaGetDeviceCount(&p.count);
    if (status != cudaSuccess) {
      cudaGetLastError();
      p.count = 0;
      p.why_not = std::string("no usable GPU: ") + cudaGetErrorString(status);
    } else if (p.count == 0) {
      p.why_not = "no GPU found";
    }
#else
    p.why_not = "built without CUDA (FFR_ENABLE_CUDA=OFF or toolkit not found)";
#endif
    return p;
  }();
  return result;
}

}  // namespace

bool cuda_available() { return probe().count > 0; }
int cuda_device_count() { return probe().count; }
std::string cuda_unavailable_reason() { return probe().why_not; }
Device default_device() { return cuda_available() ? Device::cuda(0) : Device::cpu(); }

std::string device_report() {
  std::ostringstream out;
  out << "ffr-engine device report\n";
  out << "  CUDA backend compiled: " << (built_with_cuda() ? "yes" : "no") << "\n";
#ifdef FFR_WITH_CUDA
  int runtime = 0, driver = 0;
  if (cudaRuntimeGetVersion(&runtime) != cudaSuccess) runtime = 0;
  if (cudaDriverGetVersion(&driver) != cudaSuccess) driver = 0;
  int cublas_major = 0, cublas_minor = 0;
  if (cublasGetProperty(MAJOR_VERSION, &cublas_major) != CUBLAS_STATUS_SUCCESS) cublas_major = -1;
  if (cublasGetProperty(MINOR_VERSION, &cublas_minor) != CUBLAS_STATUS_SUCCESS) cublas_minor = -1;
  out << "  CUDA runtime " << runtime / 1000 << "." << (runtime % 1000) / 10 << ", driver supports "
      << driver / 1000 << "." << (driver % 1000) / 10 << ", cuBLAS " << cublas_major << "."
      << cublas_minor << ", cuDNN " << cudnnGetVersion() << "\n";
#endif
  if (!cuda_available()) {
    out << "  GPU: none (" << probe().why_not << "); using the CPU backend\n";
    return out.str();
  }
#ifdef FFR_WITH_CUDA
  for (int i = 0; i < cuda_device_count(); ++i) {
    cudaDeviceProp prop{};
    if (cudaGetDeviceProperties(&prop, i) != cudaSuccess) continue;
    out << "  GPU " << i << ": " << prop.name << ", compute capability " << prop.major << "."
        << prop.minor << ", " << (prop.totalGlobalMem >> 20) << " MiB, " << prop.multiProcessorCount
        << " SMs\n";
  }
#endif
  return out.str();
}

DeviceGuard::DeviceGuard(Device device) {
#ifdef FFR_WITH_CUDA
  if (!device.is_cuda()) return;
  int current = 0;
  FFR_CUDA_CHECK(cudaGetDevice(&current));
  if (current == device.index) return;
  FFR_CUDA_CHECK(cudaSetDevice(device.index));
  previous_ = current;
#else
  (void)device;
#endif
}

DeviceGuard::DeviceGuard(Device device, std::nothrow_t) noexcept {
#ifdef FFR_WITH_CUDA
  if (!device.is_cuda()) return;
  int current = 0;
  const cudaError_t status = cudaGetDevice(&current);
  if (status != cudaSuccess) {
    (void)cudaGetLastError();
    cuda::warn_failed_call("cudaGetDevice", int(status), __FILE__, __LINE__);
    return;
  }
  if (current == device.index) return;
  const cudaError_t set = cudaSetDevice(device.index);
  if (set != cudaSuccess) {
    (void)cudaGetLastError();
    cuda::warn_failed_call("cudaSetDevice", int(set), __FILE__, __LINE__);
    return;
  }
  previous_ = current;
#else
  (void)device;
#endif
}

DeviceGuard::~DeviceGuard() {
#ifdef FFR_WITH_CUDA
  if (previous_ >= 0) FFR_CUDA_WARN(cudaSetDevice(previous_));
#endif
}

}  // namespace ffr
