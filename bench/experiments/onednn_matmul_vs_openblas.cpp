// Experiment (not part of the product): float32 GEMM through oneDNN's matmul primitive against
// OpenBLAS's cblas_sgemm on ViT-B/32 shapes (batch 16, 224 px: 50 tokens, width 768, 12 heads),
// the forward product and both backward ones of each Linear, and attention's batched products.
// Build: g++ -O2 -std=c++17 bench/experiments/onednn_matmul_vs_openblas.cpp -I/usr/include/x86_64-linux-gnu/openblas-pthread \
//          -ldnnl -lopenblas -o /tmp/onednn_matmul
// Run:   OMP_NUM_THREADS=2 /tmp/onednn_matmul [reps]   (SKIP_BLAS=1: oneDNN alone)
//
// Measured (2-core AVX-512 AMD EPYC, shared, noisy), best of 3-5, ms, OpenBLAS (pthreads) vs oneDNN
// (brg:avx512_core):
//   1 thread each: Linear shapes ~1.6-2x faster on oneDNN (total 1200 vs 721), attention bmm
//     1.0-1.4 vs 0.4-1.05;
//   2 threads each: Linear shapes 2x faster (qkv fwd 39.6 vs 16.6, fc1 fwd 47.0 vs 23.0), but
//     every small product (attention bmm 192 x 50x50x64, the 16x1000x768 head) costs oneDNN a
//     6-8 ms floor (waking its second OpenMP thread on a busy core) against OpenBLAS's 1.0-1.4 ms
//     single-threaded small path. Hence kernels/onednn/matmul.cpp's 2^25 multiply-add threshold;
//     with it a ViT-B/32 training step (batch 16) took 5.75-5.82 s against 6.24-6.69 s without.
#include <cblas.h>
#include <dnnl.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

using namespace dnnl;

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

struct Problem { const char* name; int batch, m, n, k; bool ta, tb; };

memory::desc desc(int batch, int rows, int cols, bool t) {
  memory::dims inner = t ? memory::dims{1, rows} : memory::dims{cols, 1};
  if (batch == 1) return memory::desc({rows, cols}, memory::data_type::f32, inner);
  return memory::desc({batch, rows, cols}, memory::data_type::f32, {rows * cols, inner[0], inner[1]});
}

int main(int argc, char** argv) {
  const int reps = argc > 1 ? atoi(argv[1]) : 5;
  engine eng(engine::kind::cpu, 0);
  stream st(eng);
  const int M = 16 * 50;
  std::vector<Problem> problems = {
      {"qkv fwd", 1, M, 2304, 768, false, true},   {"qkv dA", 1, M, 768, 2304, false, false},
      {"qkv dW", 1, 2304, 768, M, true, false},    {"fc1 fwd", 1, M, 3072, 768, false, true},
      {"fc1 dA", 1, M, 768, 3072, false, false},   {"fc1 dW", 1, 3072, 768, M, true, false},
      {"fc2 fwd", 1, M, 768, 3072, false, true},   {"fc2 dW", 1, 768, 3072, M, true, false},
      {"proj fwd", 1, M, 768, 768, false, true},   {"attn qk^T", 192, 50, 50, 64, false, true},
      {"attn pv", 192, 50, 64, 50, false, false},  {"attn dP", 192, 50, 50, 64, false, true},
      {"attn dV", 192, 50, 64, 50, true, false},   {"head fwd", 1, 16, 1000, 768, false, true},
  };
  double tot_blas = 0, tot_dnnl = 0;
  for (const Problem& p : problems) {
    std::vector<float> a(size_t(p.batch) * p.m * p.k), b(size_t(p.batch) * p.k * p.n), c(size_t(p.batch) * p.m * p.n);
    for (auto& v : a) v = float(rand()) / RAND_MAX - 0.5f;
    for (auto& v : b) v = float(rand()) / RAND_MAX - 0.5f;
    auto blas = [&] {
      for (int i = 0; i < p.batch; ++i)
        cblas_sgemm(CblasRowMajor, p.ta ? CblasTrans : CblasNoTrans, p.tb ? CblasTrans : CblasNoTrans, p.m, p.n, p.k,
                    1.0f, a.data() + size_t(i) * p.m * p.k, p.ta ? p.m : p.k, b.data() + size_t(i) * p.k * p.n,
                    p.tb ? p.k : p.n, 0.0f, c.data() + size_t(i) * p.m * p.n, p.n);
    };
    memory::desc ad = desc(p.batch, p.m, p.k, p.ta), bd = desc(p.batch, p.k, p.n, p.tb), cd = desc(p.batch, p.m, p.n, false);
    matmul::primitive_desc pd(matmul::desc(ad, bd, cd), eng);
    matmul mm(pd);
    memory am(ad, eng, a.data()), bm(bd, eng, b.data()), cm(cd, eng, c.data());
    auto dnn = [&] {
      mm.execute(st, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
      st.wait();
    };
    double best_blas = 1e30, best_dnnl = 1e30;
    for (int r = 0; r < reps + 1; ++r) {  // interleaved; the first round warms up
      double t0 = now_ms();
      if (!getenv("SKIP_BLAS")) blas();
      double t1 = now_ms();
      dnn();
      double t2 = now_ms();
      if (r == 0) continue;
      best_blas = std::min(best_blas, t1 - t0);
      best_dnnl = std::min(best_dnnl, t2 - t1);
    }
    tot_blas += best_blas;
    tot_dnnl += best_dnnl;
    printf("%-10s b%-3d m%-5d n%-5d k%-5d  openblas %7.2f ms  onednn %7.2f ms  (%s)\n", p.name, p.batch, p.m, p.n, p.k,
           best_blas, best_dnnl, pd.impl_info_str());
  }
  printf("total openblas %.1f ms onednn %.1f ms\n", tot_blas, tot_dnnl);
}
