// Errors: one exception type family, and one checked-call macro per library (CUDA, cuBLAS, cuDNN
// in engine/cuda/check.h). Every message names where it came from; inside an op, the op's name
// and input shapes are added (see OpScope), so a failing cuBLAS call reads like
//   "cublasSgemm failed: CUBLAS_STATUS_INVALID_VALUE in op matmul([64,128], [128,10]) at kernels/matmul.cu:88".
#pragma once

#include <sstream>
#include <stdexcept>
#include <string>

namespace ffr {

class Error : public std::runtime_error {
 public:
  explicit Error(const std::string& message) : std::runtime_error(message) {}
};

// Bad input from a user: a file, a flag, a shape. Messages name the file/line or flag.
class InputError : public Error {
 public:
  using Error::Error;
};

// Device or host allocation failure: says how much was requested and how much is free.
class OutOfMemoryError : public Error {
 public:
  OutOfMemoryError(const std::string& message, size_t requested_bytes, size_t free_bytes)
      : Error(message), requested_bytes(requested_bytes), free_bytes(free_bytes) {}
  size_t requested_bytes;
  size_t free_bytes;
};

// Training diverged: a NaN or Inf in the loss or a gradient. The message names the step and the
// first layer where it appeared.
class NumericalError : public Error {
 public:
  using Error::Error;
};

// The op being run on this thread ("matmul([2,3], [3,4])"), or "" outside any op.
const std::string& current_op_description();

// Names the op (and its shapes) for every error raised while it runs. Nested scopes: innermost wins.
class OpScope {
 public:
  explicit OpScope(std::string description);
  ~OpScope();
  OpScope(const OpScope&) = delete;
  OpScope& operator=(const OpScope&) = delete;

 private:
  std::string previous_;
};

[[noreturn]] void throw_error(const std::string& message, const char* file, int line);

namespace detail {
template <typename... Args>
std::string concat(const Args&... args) {
  std::ostringstream out;
  (out << ... << args);
  return out.str();
}
}  // namespace detail

}  // namespace ffr

// FFR_CHECK(cond, "message parts", value, ...): throws ffr::Error naming the op, file and line.
#define FFR_CHECK(cond, ...)                                                              \
  do {                                                                                    \
    if (!(cond)) ::ffr::throw_error(::ffr::detail::concat(__VA_ARGS__), __FILE__, __LINE__); \
  } while (0)

#define FFR_FAIL(...) ::ffr::throw_error(::ffr::detail::concat(__VA_ARGS__), __FILE__, __LINE__)
