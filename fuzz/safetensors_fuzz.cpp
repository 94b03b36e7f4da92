// libFuzzer target for the safetensors reader (see fuzz/README.md for the build line).
//
// The contract under test: any byte string either parses, or is refused with ffr::InputError.
// Anything else (a crash, a sanitizer report, another exception type, a tensor larger than the
// input) is a bug. Only InputError is caught, so every other exception aborts the run.
#include "engine/error.h"
#include "engine/safetensors.h"

#include <cstdint>
#include <cstdlib>
#include <cstring>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  try {
    const ffr::SafetensorsFile file = ffr::parse_safetensors(data, size, "fuzz input");
    // Tensor data can only come from the input's bytes: never allocate more than was given.
    size_t total = 0;
    for (const auto& [name, tensor] : file.tensors) total += tensor.nbytes();
    if (total > size) std::abort();
  } catch (const ffr::InputError&) {
    // refused with a message: the expected outcome for malformed input
  }
  return 0;
}
