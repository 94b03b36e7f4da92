#include "engine/nvtx.h"

#include "engine/op_profile.h"

#ifdef FFR_WITH_CUDA
#include <nvtx3/nvToolsExt.h>
#endif

namespace ffr {

NvtxRange::NvtxRange(const char* name) {
#ifdef FFR_WITH_CUDA
  nvtxRangePushA(name);
#endif
  if (op_profile_on()) {
    detail::op_profile_push(name);
    profiled_ = true;
  }
}

NvtxRange::~NvtxRange() {
  if (profiled_) detail::op_profile_pop();
#ifdef FFR_WITH_CUDA
  nvtxRangePop();
#endif
}

}  // namespace ffr
