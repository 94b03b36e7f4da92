// Element types. Float64 exists for the CPU backend only: gradient checks run ops in double
// precision against finite differences. BFloat16 is the GPU's mixed-precision type.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ffr {

enum class DType : uint8_t { Float32, Float64, BFloat16, Int32, Int64 };

size_t dtype_size(DType dtype);
const char* dtype_name(DType dtype);  // "float32", "bfloat16", ... (safetensors uses F32, BF16, ...)
bool is_floating(DType dtype);

// The DType of a C++ element type, for typed accessors.
template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::Float32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::Float64; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::Int32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::Int64; };

}  // namespace ffr
