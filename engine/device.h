// Where a tensor lives. A binary built with CUDA still runs without a GPU: cuda_available() is
// then false, default_device() is the CPU, and device_report() says why.
#pragma once

#include <new>
#include <string>

namespace ffr {

enum class DeviceType : uint8_t { CPU, CUDA };

struct Device {
  DeviceType type = DeviceType::CPU;
  int index = 0;

  static Device cpu() { return {DeviceType::CPU, 0}; }
  static Device cuda(int index = 0) { return {DeviceType::CUDA, index}; }
  bool is_cpu() const { return type == DeviceType::CPU; }
  bool is_cuda() const { return type == DeviceType::CUDA; }
  bool operator==(const Device& o) const { return type == o.type && index == o.index; }
  bool operator!=(const Device& o) const { return !(*this == o); }
  std::string str() const;  // "cpu", "cuda:0"
};

bool built_with_cuda();
// True when built with CUDA and at least one GPU answers. Cached after the first call.
bool cuda_available();
int cuda_device_count();
// One line: why CUDA is not used ("" when it is).
std::string cuda_unavailable_reason();
// CUDA device 0 when available, else the CPU.
Device default_device();
// Human-readable: build flags, GPU name, compute capability, memory, driver/runtime/cuBLAS/cuDNN
// versions, or why no GPU is used.
std::string device_report();

// Makes a CUDA device the calling thread's current one until the guard ends, then restores the
// previous one. Ops run on the current device, on this thread's stream for it, so a thread uses
// cuda:1 by holding DeviceGuard(Device::cuda(1)) around its work. A CPU device changes nothing.
// The nothrow form (for destructor paths) warns on stderr instead of throwing.
class DeviceGuard {
 public:
  explicit DeviceGuard(Device device);
  DeviceGuard(Device device, std::nothrow_t) noexcept;
  ~DeviceGuard();
  DeviceGuard(const DeviceGuard&) = delete;
  DeviceGuard& operator=(const DeviceGuard&) = delete;

 private:
  int previous_ = -1;  // the device to restore; -1: nothing was changed
};

}  // namespace ffr
