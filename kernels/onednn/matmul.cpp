#include "kernels/onednn/matmul.h"

#include "engine/error.h"
#include "kernels/onednn/context.h"

#include <cstdlib>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

namespace ffr::onednn {
namespace {

using dnnl::memory;

// Below this many multiply-adds (batch m n k) a GEMM stays on OpenBLAS, which runs such small
// products on the calling thread: oneDNN parallelises them over its OpenMP threads, and on the
// shared 2-core machine waking the second thread cost ~6 ms per call (ViT-B/32's attention bmm,
// 192 x 50x50x64, took 6.5 ms on oneDNN with 2 threads against 1.0-1.4 ms on OpenBLAS; the
// 800x768x768 projection 6.8 ms against 17.6 ms). FFR_ONEDNN_MATMUL_MIN_MACS overrides it (read
// once; 0 sends every float32 GEMM to oneDNN, a huge value none).
int64_t min_macs() {
  static const int64_t value = [] {
    const char* v = std::getenv("FFR_ONEDNN_MATMUL_MIN_MACS");
    if (v == nullptr || *v == '\0') return int64_t(1) << 25;
    char* end = nullptr;
    const long long parsed = std::strtoll(v, &end, 10);
    FFR_CHECK(end != v && *end == '\0' && parsed >= 0, "FFR_ONEDNN_MATMUL_MIN_MACS must be a count >= 0, got '", v,
              "'");
    return int64_t(parsed);
  }();
  return value;
}

// op(x) [rows, cols] of a stored row-major matrix (stored transposed when `transposed`), in a
// batch of `batch` matrices `batch_stride` apart; a zero stride is one matrix shared by all.
memory::desc operand(int64_t batch, int64_t rows, int64_t cols, bool transposed, int64_t batch_stride) {
  const memory::dims inner = transposed ? memory::dims{1, rows} : memory::dims{cols, 1};
  if (batch == 1) return memory::desc({rows, cols}, memory::data_type::f32, inner);
  const int64_t b = batch_stride == 0 ? 1 : batch;
  return memory::desc({b, rows, cols}, memory::data_type::f32, {batch_stride == 0 ? rows * cols : batch_stride, inner[0], inner[1]});
}

struct Entry {
  dnnl::matmul primitive;
  memory::desc a, b, c, bias;
};

Entry make_entry(const GemmProblem& p, bool bias, bool gelu) {
  Entry e;
  e.a = operand(p.batch, p.m, p.k, p.transpose_a, p.stride_a);
  e.b = operand(p.batch, p.k, p.n, p.transpose_b, p.stride_b);
  e.c = operand(p.batch, p.m, p.n, false, p.stride_c);
  dnnl::primitive_attr attr;
  if (gelu) {
    dnnl::post_ops ops;
    ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_gelu_erf, 0.0f, 0.0f);
    attr.set_post_ops(ops);
  }
  if (bias) {
    // One row [1, n] (or [1, 1, n]) broadcast over the rows (and the batch) of c.
    e.bias = p.batch == 1 ? memory::desc({1, p.n}, memory::data_type::f32, memory::format_tag::ab)
                          : memory::desc({1, 1, p.n}, memory::data_type::f32, memory::format_tag::abc);
    e.primitive =
        dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(e.a, e.b, e.bias, e.c), attr, cpu_engine()));
  } else {
    e.primitive = dnnl::matmul(dnnl::matmul::primitive_desc(dnnl::matmul::desc(e.a, e.b, e.c), attr, cpu_engine()));
  }
  return e;
}

const Entry& cached_entry(const GemmProblem& p, const GemmEpilogue& epilogue) {
  using Key = std::vector<int64_t>;
  thread_local std::map<Key, Entry> cache;
  const bool bias = epilogue.bias != nullptr;
  const Key key{p.batch,    p.m,        p.n,        p.k,        p.transpose_a, p.transpose_b,
                p.stride_a, p.stride_b, p.stride_c, int64_t(bias), int64_t(epilogue.gelu)};
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, make_entry(p, bias, epilogue.gelu)).first;
  return it->second;
}

}  // namespace

bool gemm_supported(const GemmProblem& p) {
  // c is written densely, one matrix after another; a and b may be shared (stride 0) or strided.
  if (p.m <= 0 || p.n <= 0 || p.k <= 0 || (p.batch > 1 && p.stride_c != p.m * p.n)) return false;
  // Overflow-safe: any factor alone at the threshold decides.
  const double macs = double(p.batch) * double(p.m) * double(p.n) * double(p.k);
  return macs >= double(min_macs());
}

void gemm(const GemmProblem& p, const float* a, const float* b, float* c, const GemmEpilogue& epilogue) {
  try {
    const Entry& e = cached_entry(p, epilogue);
    dnnl::stream& stream = cpu_stream();
    std::unordered_map<int, memory> args{
        {DNNL_ARG_SRC, wrap(e.a, a)}, {DNNL_ARG_WEIGHTS, wrap(e.b, b)}, {DNNL_ARG_DST, wrap(e.c, c)}};
    if (epilogue.bias != nullptr) args.emplace(DNNL_ARG_BIAS, wrap(e.bias, epilogue.bias));
    e.primitive.execute(stream, args);
    stream.wait();
  } catch (const dnnl::error& err) {
    rethrow(err, "matmul m=" + std::to_string(p.m) + " n=" + std::to_string(p.n) + " k=" + std::to_string(p.k) +
                     " batch=" + std::to_string(p.batch));
  }
}

}  // namespace ffr::onednn
