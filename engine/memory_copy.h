// Byte copies between devices. Device-involved copies are queued on this thread's stream
// (asynchronous with respect to the host unless `wait` is set or the source is pageable).
#pragma once

#include "engine/device.h"

#include <cstddef>

namespace ffr {

void copy_bytes(void* dst, Device dst_device, const void* src, Device src_device, size_t bytes, bool wait);

}  // namespace ffr
