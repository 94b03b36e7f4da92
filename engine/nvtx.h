// NVTX ranges for Nsight Systems: ops, layers and training phases show up as named ranges.
// Compiles to nothing without CUDA. Cheap when no profiler is attached (one branch in NVTX).
#pragma once

namespace ffr {

class NvtxRange {
 public:
  explicit NvtxRange(const char* name);
  ~NvtxRange();
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;
};

}  // namespace ffr
