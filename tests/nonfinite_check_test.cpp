#include "kernels/nonfinite_check.h"
#include "engine/bfloat16.h"
#include "engine/error.h"
#include "tests/testing.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace ffr {
namespace {

using testing::random_tensor;

constexpr int64_t kChunk = kNonFiniteChunkElements;
const double kNaN = std::numeric_limits<double>::quiet_NaN();
const double kInf = std::numeric_limits<double>::infinity();

// Writes one element of a CPU tensor, in its dtype.
void set_element(Tensor& t, int64_t i, double value) {
  switch (t.dtype()) {
    case DType::Float32: t.data<float>()[i] = float(value); break;
    case DType::Float64: t.data<double>()[i] = value; break;
    case DType::BFloat16: t.data<bfloat16>()[i] = float_to_bfloat16(float(value)); break;
    default: FAIL() << "set_element: " << t.str();
  }
}

double get_element(const Tensor& t, int64_t i) {
  switch (t.dtype()) {
    case DType::Float32: return t.data<float>()[i];
    case DType::Float64: return t.data<double>()[i];
    case DType::BFloat16: return bfloat16_to_float(t.data<bfloat16>()[i]);
    default: return 0.0;
  }
}

// The key the check should give, found the plain way: first tensor with a value std::isfinite rejects.
int64_t reference_key(const std::vector<Tensor>& tensors, int64_t step) {
  for (size_t k = 0; k < tensors.size(); ++k) {
    if (!tensors[k].defined()) continue;
    for (int64_t i = 0; i < tensors[k].numel(); ++i)
      if (!std::isfinite(get_element(tensors[k], i))) return encode_nonfinite_key(step, int64_t(k));
  }
  return kNoNonFinite;
}

// The raw bits: to_vector() converts through double, which cannot hold kNoNonFinite.
int64_t status_of(const Tensor& status) { return status.cpu().data<int64_t>()[0]; }

int64_t check_once(const std::vector<Tensor>& tensors, int64_t step, bool scalars_by_value = false) {
  Tensor status = make_nonfinite_status(tensors.front().device());
  record_first_nonfinite(NonFiniteCheckPlan(tensors, scalars_by_value), status, step);
  return status_of(status);
}

// Random values away from zero, as the guard sees in practice.
std::vector<Tensor> random_tensors(const std::vector<Shape>& shapes, const std::vector<DType>& dtypes, Rng& rng) {
  std::vector<Tensor> out;
  for (size_t k = 0; k < shapes.size(); ++k) out.push_back(random_tensor(shapes[k], rng, dtypes[k % dtypes.size()], 0.5, 4.0));
  return out;
}

TEST(NonFiniteCheck, KeyRoundTrips) {
  for (const auto& [step, index] : std::vector<std::pair<int64_t, int64_t>>{
           {0, 0}, {1, 0}, {0, 5}, {123456, 789}, {kMaxNonFiniteStep, kMaxNonFiniteTensors - 1}}) {
    const int64_t key = encode_nonfinite_key(step, index);
    EXPECT_LT(key, kNoNonFinite);
    EXPECT_EQ(decode_nonfinite_key(key).step, step);
    EXPECT_EQ(decode_nonfinite_key(key).tensor_index, index);
  }
  // Order of keys = order of (step, index).
  EXPECT_LT(encode_nonfinite_key(3, kMaxNonFiniteTensors - 1), encode_nonfinite_key(4, 0));
}

TEST(NonFiniteCheck, StatusStartsCleanAndResets) {
  Tensor status = make_nonfinite_status(Device::cpu());
  EXPECT_EQ(status.dtype(), DType::Int64);
  EXPECT_EQ(status.numel(), 1);
  EXPECT_EQ(status_of(status), kNoNonFinite);
  status.data<int64_t>()[0] = 42;
  reset_nonfinite_status(status);
  EXPECT_EQ(status_of(status), kNoNonFinite);
}

TEST(NonFiniteCheck, CleanTensorsLeaveTheStatusClean) {
  Rng rng(31);
  const std::vector<Tensor> tensors = random_tensors({{1}, {3, 7}, {kChunk + 9}, {2, 2, 5}},
                                                     {DType::Float32, DType::Float64, DType::BFloat16}, rng);
  EXPECT_EQ(check_once(tensors, 17), kNoNonFinite);
  // Large finite values are not flagged: the largest float32 and bfloat16, and float64 beyond float32's range.
  Tensor big = Tensor::full({3}, 3.0e38, DType::Float32);
  Tensor big_bf16 = Tensor::full({3}, 3.0e38, DType::BFloat16);
  Tensor big_double = Tensor::full({3}, 1e300, DType::Float64);
  EXPECT_EQ(check_once({big}, 1), kNoNonFinite);
  EXPECT_EQ(check_once({big_bf16}, 1), kNoNonFinite);
  EXPECT_EQ(check_once({big_double}, 1), kNoNonFinite);
}

TEST(NonFiniteCheck, FindsNaNAndInfAnywhereInAnyDtype) {
  Rng rng(32);
  for (DType dtype : {DType::Float32, DType::Float64, DType::BFloat16}) {
    SCOPED_TRACE(dtype_name(dtype));
    // Tensor 2 spans three chunks; tensor 3 ends a chunk exactly.
    std::vector<Tensor> tensors = random_tensors({{1}, {3, 7}, {2 * kChunk + 5}, {kChunk}, {17}}, {dtype}, rng);
    for (double bad : {kNaN, kInf, -kInf}) {
      for (size_t k = 0; k < tensors.size(); ++k) {
        const int64_t n = tensors[k].numel();
        std::vector<int64_t> positions = {0, n - 1, int64_t(rng.next_u64() % uint64_t(n))};
        if (n > kChunk) positions.insert(positions.end(), {kChunk - 1, kChunk, 2 * kChunk - 1, 2 * kChunk});
        for (int64_t at : positions) {
          SCOPED_TRACE("value " + std::to_string(bad) + " in tensor " + std::to_string(k) + " at " +
                       std::to_string(at));
          const double before = get_element(tensors[k], at);
          set_element(tensors[k], at, bad);
          const int64_t step = 1 + int64_t(rng.next_u64() % 1000);
          EXPECT_EQ(check_once(tensors, step), encode_nonfinite_key(step, int64_t(k)));
          EXPECT_EQ(check_once(tensors, step), reference_key(tensors, step));
          set_element(tensors[k], at, before);
        }
      }
    }
    EXPECT_EQ(check_once(tensors, 5), kNoNonFinite);  // every value put back
  }
}

TEST(NonFiniteCheck, StatusIsTheMinimumOverStepsAndTensors) {
  Rng rng(33);
  std::vector<Tensor> tensors = random_tensors({{4}, {kChunk + 3}, {6}, {9}}, {DType::Float32}, rng);
  const NonFiniteCheckPlan plan(tensors);
  Tensor status = make_nonfinite_status(Device::cpu());
  record_first_nonfinite(plan, status, 1);
  EXPECT_EQ(status_of(status), kNoNonFinite);
  // Step 2: tensors 3 and 1 go bad; the lower index wins.
  set_element(tensors[3], 8, kNaN);
  set_element(tensors[1], kChunk + 1, kInf);
  record_first_nonfinite(plan, status, 2);
  EXPECT_EQ(status_of(status), encode_nonfinite_key(2, 1));
  // Step 3: tensor 0 too, but step 2 came first and stays.
  set_element(tensors[0], 0, -kInf);
  record_first_nonfinite(plan, status, 3);
  EXPECT_EQ(status_of(status), encode_nonfinite_key(2, 1));
  // A status from elsewhere with a later key is lowered; an earlier one is kept.
  status.data<int64_t>()[0] = encode_nonfinite_key(2, 2);
  record_first_nonfinite(plan, status, 2);
  EXPECT_EQ(status_of(status), encode_nonfinite_key(2, 0));
  status.data<int64_t>()[0] = encode_nonfinite_key(1, 3);
  record_first_nonfinite(plan, status, 2);
  EXPECT_EQ(status_of(status), encode_nonfinite_key(1, 3));
}

TEST(NonFiniteCheck, EmptyAndUndefinedTensorsKeepTheirIndex) {
  Rng rng(34);
  Tensor a = random_tensor({0}, rng, DType::Float32), b = random_tensor({3, 0}, rng, DType::Float32);
  Tensor c = random_tensor({5}, rng, DType::Float32, 0.5, 2.0);
  const std::vector<Tensor> tensors = {a, Tensor(), b, c};
  const NonFiniteCheckPlan plan(tensors);
  EXPECT_EQ(plan.num_tensors(), 4);
  EXPECT_EQ(plan.num_chunks(), 1);
  EXPECT_EQ(plan.numel(), 5);
  EXPECT_EQ(check_once(tensors, 3), kNoNonFinite);
  set_element(c, 4, kNaN);
  EXPECT_EQ(check_once(tensors, 3), encode_nonfinite_key(3, 3));
  // Nothing to scan at all: the status is untouched.
  Tensor status = make_nonfinite_status(Device::cpu());
  record_first_nonfinite(NonFiniteCheckPlan({a, b}), status, 1);
  record_first_nonfinite(NonFiniteCheckPlan(std::vector<Tensor>{}), status, 1);
  EXPECT_EQ(status_of(status), kNoNonFinite);
}

TEST(NonFiniteCheck, PlanChunksLargeTensorsAndIsReusedOnlyForTheSameBuffers) {
  Rng rng(35);
  const std::vector<Tensor> tensors = random_tensors({{2 * kChunk + 5}, {1}, {kChunk}}, {DType::BFloat16}, rng);
  const NonFiniteCheckPlan plan(tensors);
  ASSERT_EQ(plan.num_chunks(), 3 + 1 + 1);
  const std::vector<NonFiniteChunk>& chunks = plan.host_chunks();
  EXPECT_EQ(chunks[0].numel, kChunk);
  EXPECT_EQ(chunks[2].numel, 5);
  EXPECT_EQ(chunks[2].tensor_index, 0);
  EXPECT_EQ(static_cast<const char*>(chunks[2].data) - static_cast<const char*>(tensors[0].raw_data()),
            2 * kChunk * 2);
  EXPECT_EQ(chunks[3].tensor_index, 1);
  EXPECT_EQ(chunks[4].tensor_index, 2);
  EXPECT_TRUE(plan.matches(tensors));
  EXPECT_FALSE(plan.matches({tensors[0], tensors[1]}));
  EXPECT_FALSE(plan.matches({tensors[0], tensors[1].clone(), tensors[2]}));
  // Same bytes seen as another dtype: another layout.
  EXPECT_FALSE(plan.matches({tensors[0], tensors[1], Tensor::from_blob(tensors[2].raw_data(), {kChunk / 2},
                                                                        DType::Float32, Device::cpu())}));
}

// The guard's loss is a new tensor every step: with scalars by value, one plan serves them all,
// and the check reads the scalar bound last, not the one the plan was built with.
TEST(NonFiniteCheck, ScalarsByValueStayOutOfTheKeyAndFollowTheBoundTensor) {
  Rng rng(39);
  std::vector<Tensor> built = random_tensors({{1}, {2 * kChunk + 3}, {}, {7}}, {DType::Float32}, rng);
  NonFiniteCheckPlan plan(built, /*scalars_by_value=*/true);
  EXPECT_EQ(plan.num_chunks(), 3 + 1);  // the two scalars are not in the uploaded array
  EXPECT_EQ(plan.numel(), 2 * kChunk + 3 + 7 + 2);
  ASSERT_EQ(plan.scalars().count, 2);
  EXPECT_EQ(plan.scalars().chunks[0].tensor_index, 0);
  EXPECT_EQ(plan.scalars().chunks[1].tensor_index, 2);

  std::vector<Tensor> next = built;
  next[0] = random_tensor({1}, rng, DType::Float32, 0.5, 2.0);  // another buffer
  next[2] = random_tensor({}, rng, DType::Float32, 0.5, 2.0);
  EXPECT_TRUE(plan.matches(next));
  EXPECT_FALSE(NonFiniteCheckPlan(built).matches(next));  // without: addresses are the key
  std::vector<Tensor> other_dtype = next;
  other_dtype[2] = random_tensor({}, rng, DType::Float64, 0.5, 2.0);
  EXPECT_FALSE(plan.matches(other_dtype));
  std::vector<Tensor> moved_grad = next;
  moved_grad[3] = built[3].clone();
  EXPECT_FALSE(plan.matches(moved_grad));  // the large tensors' addresses still are

  plan.bind_scalars(next);
  Tensor status = make_nonfinite_status(Device::cpu());
  set_element(built[2], 0, kNaN);  // the old scalar: no longer looked at
  record_first_nonfinite(plan, status, 5);
  EXPECT_EQ(status_of(status), kNoNonFinite);
  set_element(next[2], 0, kInf);
  set_element(built[3], 6, kNaN);  // later in the list: the scalar's index 2 is the smaller key
  record_first_nonfinite(plan, status, 5);
  EXPECT_EQ(status_of(status), encode_nonfinite_key(5, 2));
  EXPECT_EQ(check_once(next, 5, true), encode_nonfinite_key(5, 2));
  set_element(next[2], 0, 1.0);
  EXPECT_EQ(check_once(next, 5, true), encode_nonfinite_key(5, 3));
}

TEST(NonFiniteCheck, RejectsBadInputs) {
  Rng rng(36);
  Tensor x = random_tensor({4}, rng, DType::Float32);
  EXPECT_THROW(NonFiniteCheckPlan({x, Tensor::zeros({2}, DType::Int64)}), Error);
  Tensor status = make_nonfinite_status(Device::cpu());
  const NonFiniteCheckPlan plan({x});
  EXPECT_THROW(record_first_nonfinite(plan, status, -1), Error);
  EXPECT_THROW(record_first_nonfinite(plan, status, kMaxNonFiniteStep + 1), Error);
  Tensor wrong_dtype = Tensor::zeros({1}, DType::Float32);
  EXPECT_THROW(record_first_nonfinite(plan, wrong_dtype, 1), Error);
  Tensor two = Tensor::zeros({2}, DType::Int64);
  EXPECT_THROW(record_first_nonfinite(plan, two, 1), Error);
  record_first_nonfinite(plan, status, kMaxNonFiniteStep);  // the last step that fits
  EXPECT_EQ(status_of(status), kNoNonFinite);
}

// ---- CUDA ----

TEST(NonFiniteCheckCuda, MatchesCpuOnRandomPlacements) {
  FFR_REQUIRE_CUDA();
  Rng rng(37);
  const std::vector<Shape> shapes = {{1}, {3, 7}, {2 * kChunk + 5}, {kChunk}, {1000, 3}, {0}, {kChunk + 1}};
  for (DType dtype : {DType::Float32, DType::BFloat16}) {
    SCOPED_TRACE(dtype_name(dtype));
    std::vector<Tensor> cpu = random_tensors(shapes, {dtype}, rng);
    for (int trial = 0; trial < 60; ++trial) {
      // 0 to 3 bad values in random tensors at random positions, or at the edges of a chunk.
      std::vector<std::pair<size_t, int64_t>> placed;
      const int count = trial % 4;
      for (int j = 0; j < count; ++j) {
        size_t k = size_t(rng.next_u64() % shapes.size());
        while (cpu[k].numel() == 0) k = (k + 1) % shapes.size();
        const int64_t n = cpu[k].numel();
        const int64_t edges[] = {0, n - 1, std::min(kChunk, n - 1), std::min(kChunk - 1, n - 1)};
        const int64_t at = trial % 2 == 0 ? edges[rng.next_u64() % 4] : int64_t(rng.next_u64() % uint64_t(n));
        const double values[] = {kNaN, kInf, -kInf};
        set_element(cpu[k], at, values[rng.next_u64() % 3]);
        placed.emplace_back(k, at);
      }
      std::vector<Tensor> gpu;
      for (const Tensor& t : cpu) gpu.push_back(t.cuda());
      const int64_t step = int64_t(rng.next_u64() % 100000);
      const int64_t expected = reference_key(cpu, step);
      EXPECT_EQ(check_once(cpu, step), expected) << "trial " << trial;
      EXPECT_EQ(check_once(gpu, step), expected) << "trial " << trial;
      EXPECT_EQ(check_once(gpu, step, true), expected) << "trial " << trial << ", scalars by value";
      for (const auto& [k, at] : placed) set_element(cpu[k], at, 1.0);
    }
  }
}

TEST(NonFiniteCheckCuda, MixedDtypesMisalignedViewsAndARunningStatus) {
  FFR_REQUIRE_CUDA();
  Rng rng(38);
  Tensor f = random_tensor({kChunk + 7}, rng, DType::Float32, 0.5, 2.0);
  Tensor h = random_tensor({kChunk + 9}, rng, DType::BFloat16, 0.5, 2.0);
  set_element(h, kChunk + 8, kInf);  // the last element of the misaligned bf16 view below
  set_element(f, 3, kNaN);           // inside the misaligned float32 view below
  Tensor fg = f.cuda(), hg = h.cuda();
  // Views starting one element in: the kernel's 16-byte loads must fall back to the scalar loop.
  Tensor f_view = Tensor::from_blob(fg.data<float>() + 1, {kChunk + 6}, DType::Float32, fg.device());
  Tensor h_view = Tensor::from_blob(static_cast<char*>(hg.raw_data()) + 2, {kChunk + 8}, DType::BFloat16, hg.device());
  Tensor clean = random_tensor({33}, rng, DType::Float32, 0.5, 2.0).cuda();
  const NonFiniteCheckPlan plan({clean, h_view, f_view});
  Tensor status = make_nonfinite_status(fg.device());
  record_first_nonfinite(plan, status, 9);
  EXPECT_EQ(status_of(status), encode_nonfinite_key(9, 1));
  record_first_nonfinite(plan, status, 4);  // an earlier key lowers it, a later one does not
  record_first_nonfinite(plan, status, 12);
  EXPECT_EQ(status_of(status), encode_nonfinite_key(4, 1));
  reset_nonfinite_status(status);
  EXPECT_EQ(status_of(status), kNoNonFinite);
  record_first_nonfinite(NonFiniteCheckPlan({clean, f_view}), status, 2);
  EXPECT_EQ(status_of(status), encode_nonfinite_key(2, 1));
}

TEST(NonFiniteCheckCuda, RejectsFloat64AndMixedDevices) {
  FFR_REQUIRE_CUDA();
  EXPECT_THROW(NonFiniteCheckPlan({Tensor::zeros({4}, DType::Float64, Device::cuda(0))}), Error);
  EXPECT_THROW(NonFiniteCheckPlan({Tensor::zeros({4}), Tensor::zeros({4}, DType::Float32, Device::cuda(0))}), Error);
  const NonFiniteCheckPlan plan({Tensor::ones({4}, DType::Float32, Device::cuda(0))});
  Tensor cpu_status = make_nonfinite_status(Device::cpu());
  EXPECT_THROW(record_first_nonfinite(plan, cpu_status, 1), Error);
}

}  // namespace
}  // namespace ffr
