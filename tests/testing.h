// The two helpers every op test uses:
//  - expect_gradients_match: autograd vs central finite differences, in float64 on the CPU.
//  - expect_cuda_matches_cpu: the op on CUDA vs its CPU reference (outputs and input gradients),
//    on the same random inputs. Tests using it start with FFR_REQUIRE_CUDA().
// An op's test is then a few lines: build random inputs, pass a lambda.
#pragma once

#include "engine/autograd.h"
#include "engine/device.h"
#include "engine/rng.h"
#include "engine/tensor.h"

#include <gtest/gtest.h>

#include <functional>
#include <string>
#include <vector>

namespace ffr::testing {

using OpFunction = std::function<Tensor(const std::vector<Tensor>&)>;

// Skips the calling test, saying why, on a machine without a usable GPU.
#define FFR_REQUIRE_CUDA()                                                                  \
  do {                                                                                      \
    if (!::ffr::cuda_available())                                                           \
      GTEST_SKIP() << "CUDA test skipped: " << ::ffr::cuda_unavailable_reason(); \
  } while (0)

struct GradCheckOptions {
  double eps = 1e-6;
  double rtol = 1e-5;
  double atol = 1e-7;
  int max_elements_per_input = 64;  // checked positions per input (chosen at random past that)
};

// Inputs: CPU float64 tensors (integer tensors pass through unchecked). The loss is
// sum(f(x) * w) for a fixed random w, so every output element matters.
void expect_gradients_match(const OpFunction& f, const std::vector<Tensor>& inputs,
                            const GradCheckOptions& options = {});

struct CompareOptions {
  double rtol = 1e-5;
  double atol = 1e-6;
  bool check_gradients = true;
};

// Inputs: CPU tensors (float32 for the floating ones). Runs f on CPU and on CUDA copies,
// compares the outputs and, with a shared random upstream gradient, every floating input's grad.
void expect_cuda_matches_cpu(const OpFunction& f, const std::vector<Tensor>& inputs,
                             const CompareOptions& options = {});

// Runs `op` in bfloat16 on CUDA; on the CPU, in float32 on the same bf16-rounded inputs, with
// the output rounded to bf16 as well, so both sides also see the same bf16-rounded upstream
// gradient. What expect_cuda_matches_cpu then measures is the kernel's own error: float32 vs
// double accumulation, plus one rounding of each output and gradient to bf16 (2^-8 relative at most).
OpFunction in_bfloat16(OpFunction op);

// max |a - b| / (atol + rtol |b|) <= 1, with the worst position reported on failure.
void expect_close(const Tensor& actual, const Tensor& expected, double rtol, double atol,
                  const std::string& what = "");

// The source tree (fixtures, corpora): $FFR_SOURCE_DIR when set (ctest sets it; so does
// scripts/gpu-check.sh, whose test binary may have been built in another checkout), else the
// tree the binary was built from.
std::string source_dir();

// Random inputs, never all zeros.
Tensor random_tensor(const Shape& shape, Rng& rng, DType dtype = DType::Float64, double low = -1.0,
                     double high = 1.0);

}  // namespace ffr::testing
