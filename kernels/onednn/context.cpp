#include "kernels/onednn/context.h"

#include "engine/error.h"

namespace ffr::onednn {

dnnl::engine& cpu_engine() {
  static dnnl::engine engine(dnnl::engine::kind::cpu, 0);
  return engine;
}

dnnl::stream& cpu_stream() {
  thread_local dnnl::stream stream(cpu_engine());
  return stream;
}

dnnl::memory wrap(const dnnl::memory::desc& desc, const void* data) {
  // oneDNN's handles are non-const; inputs are only read.
  return dnnl::memory(desc, cpu_engine(), const_cast<void*>(data));
}

void rethrow(const dnnl::error& e, const std::string& op) {
  FFR_FAIL("oneDNN ", op, ": ", e.what(), " (status ", int(e.status), ")");
}

}  // namespace ffr::onednn
