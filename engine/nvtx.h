// NVTX ranges for Nsight Systems: ops, layers and training phases show up as named ranges.
// The NVTX calls compile to nothing without CUDA and are cheap when no profiler is attached (one
// branch in NVTX). The same ranges feed the host-side op profile (engine/op_profile.h) while one
// is recording.
#pragma once

namespace ffr {

class NvtxRange {
 public:
  explicit NvtxRange(const char* name);
  ~NvtxRange();
  NvtxRange(const NvtxRange&) = delete;
  NvtxRange& operator=(const NvtxRange&) = delete;

 private:
  bool profiled_ = false;  // opened while the op profile was on: closes its entry there too
};

}  // namespace ffr
