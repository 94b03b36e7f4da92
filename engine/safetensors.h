// Checkpoints in the safetensors format, so weights move to and from PyTorch (safetensors.torch).
//
// Layout: 8 bytes little-endian header length N; N bytes of JSON
//   {"__metadata__": {"key": "value", ...},                        (optional, string -> string)
//    "name": {"dtype": "F32", "shape": [2, 3], "data_offsets": [begin, end]}, ...}
// padded with spaces to a multiple of 8; then the data buffer, which the entries' [begin, end)
// ranges (relative to the buffer) tile exactly. Elements are little-endian, row-major.
//
// dtypes: F32, F64, BF16, I32, I64 map to ffr DTypes. Other safetensors dtypes (F16, U8, BOOL, ...)
// are refused by name: there is no ffr DType to load them into.
//
// The reader refuses a malformed file with one ffr::InputError naming the file and the problem,
// and never allocates more than the file's size for tensor data (see fuzz/ for the fuzzer).
#pragma once

#include "engine/tensor.h"

#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace ffr {


struct SafetensorsFile {
  std::map<std::string, std::string> metadata;  // "__metadata__"
  NamedTensors tensors;                         // in the header's order
};

// Writes `tensors` (any device: copied to the host one at a time) atomically to `path`.
// The header lists them in the given order; loading gives them back in that order. The data
// buffer places larger elements first (I64, F64, F32, I32, BF16, as the reference implementation
// does), keeping the given order within a dtype, so every tensor starts at a multiple of its
// element size. With names given in the reference's order (that dtype order, then by name) the
// file is byte-identical to what safetensors.torch.save_file writes. Empty metadata writes no
// "__metadata__" entry. Throws InputError for duplicate names or a name "__metadata__".
void save_safetensors(const std::string& path, const NamedTensors& tensors,
                      const std::map<std::string, std::string>& metadata = {});

// Reads a whole file onto `device`. Tensor bytes go straight from the file into host tensors.
SafetensorsFile load_safetensors(const std::string& path, Device device = Device::cpu());

// The same, from bytes in memory (the fuzzer's entry). `name_for_errors` is used in messages.
SafetensorsFile parse_safetensors(const uint8_t* data, size_t size, const std::string& name_for_errors,
                                  Device device = Device::cpu());

// The safetensors spelling of a DType ("F32", "BF16", ...).
const char* safetensors_dtype_name(DType dtype);

// (name, (shape, dtype)) that a model expects to find.
using ExpectedTensors = std::vector<std::pair<std::string, std::pair<Shape, DType>>>;

// Checks that `loaded` (read from `file`) holds exactly the `expected` names with their shapes
// and dtypes. Throws one InputError listing every missing name, every unexpected name and every
// shape/dtype mismatch.
void check_tensor_set(const NamedTensors& loaded, const ExpectedTensors& expected, const std::string& file);

}  // namespace ffr
