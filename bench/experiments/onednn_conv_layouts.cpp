// Experiment (not part of the product): oneDNN convolution on ResNet-50 shapes with the engine's
// plain NCHW tensors, either executed on plain NCHW memory descriptors or with format_tag::any
// (blocked layouts chosen by oneDNN) plus the reorders from and to NCHW that each call then needs.
// Build: g++ -O2 -std=c++17 bench/experiments/onednn_conv_layouts.cpp -ldnnl -o /tmp/onednn_conv_layouts
// Run:   OMP_NUM_THREADS=2 /tmp/onednn_conv_layouts [batch] [reps]
//
// Measured (2-core AVX-512 AMD EPYC shared with other builds, so noisy; batch 32; totals over the
// 12 shapes, ms, forward / backward-data / backward-weights, reorders included):
//   1 thread:  plain 405 / 588 / 719   blocked 371 / 587 / 538   weights-only any 377 / 498 / 696
//   2 threads: plain 169 / 161 / 965   blocked 332 / 422 / 390   weights-only any 165 / 192 / 1238
// Plain's gemm-based backward-weights (x64:gemm:jit) is slow and very sensitive to a busy second
// core; blocked picks jit:avx512_core / jit_1x1 everywhere. Inside a whole ResNet-50 training step
// (ffr-bench perf, DNNL_VERBOSE=1 sums) blocked won: 1.45-1.59 s against plain's 1.64-1.70 s.
#include <dnnl.hpp>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <vector>

using namespace dnnl;
using tag = memory::format_tag;
using dt = memory::data_type;

struct Shape { int n, ic, oc, h, k, s, p; };

double now_ms() {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// Runs fwd, bwd-data, bwd-weights; returns ms per (fwd, bwd_data, bwd_weights) as a triple.
struct Times { double fwd, bwd_data, bwd_weights; };

Times run(engine& eng, stream& st, const Shape& sh, bool blocked, bool weights_any_only, int reps) {
  const int oh = (sh.h + 2 * sh.p - sh.k) / sh.s + 1;
  memory::dims src_d{sh.n, sh.ic, sh.h, sh.h}, wei_d{sh.oc, sh.ic, sh.k, sh.k}, dst_d{sh.n, sh.oc, oh, oh};
  memory::dims strides{sh.s, sh.s}, dil{0, 0}, pad{sh.p, sh.p};
  memory::desc src_plain(src_d, dt::f32, tag::nchw), wei_plain(wei_d, dt::f32, tag::oihw),
      dst_plain(dst_d, dt::f32, tag::nchw);
  memory::desc src_any = blocked && !weights_any_only ? memory::desc(src_d, dt::f32, tag::any) : src_plain;
  memory::desc wei_any = blocked ? memory::desc(wei_d, dt::f32, tag::any) : wei_plain;
  memory::desc dst_any = blocked && !weights_any_only ? memory::desc(dst_d, dt::f32, tag::any) : dst_plain;
  auto fwd_pd = convolution_forward::primitive_desc(
      convolution_forward::desc(prop_kind::forward_training, algorithm::convolution_direct, src_any, wei_any,
                                dst_any, strides, dil, pad, pad),
      eng);
  auto bwd_d_pd = convolution_backward_data::primitive_desc(
      convolution_backward_data::desc(algorithm::convolution_direct, src_any, wei_any, dst_any, strides, dil, pad, pad),
      eng, fwd_pd);
  auto bwd_w_pd = convolution_backward_weights::primitive_desc(
      convolution_backward_weights::desc(algorithm::convolution_direct, src_any, wei_any, dst_any, strides, dil, pad,
                                         pad),
      eng, fwd_pd);
  std::vector<float> x(src_plain.get_size() / 4), w(wei_plain.get_size() / 4), y(dst_plain.get_size() / 4);
  for (auto& v : x) v = float(rand()) / RAND_MAX - 0.5f;
  for (auto& v : w) v = float(rand()) / RAND_MAX - 0.5f;
  for (auto& v : y) v = float(rand()) / RAND_MAX - 0.5f;
  memory xm(src_plain, eng, x.data()), wm(wei_plain, eng, w.data()), ym(dst_plain, eng, y.data());
  std::vector<float> dx(x.size()), dw(w.size());
  memory dxm(src_plain, eng, dx.data()), dwm(wei_plain, eng, dw.data());
  // Converts `plain` into the primitive's layout (or passes it through) and back after.
  auto in = [&](const memory& plain, const memory::desc& want) {
    if (want == plain.get_desc()) return plain;
    memory m(want, eng);
    reorder(plain, m).execute(st, {{DNNL_ARG_FROM, plain}, {DNNL_ARG_TO, m}});
    return m;
  };
  auto out_mem = [&](const memory& plain, const memory::desc& want) {
    return want == plain.get_desc() ? plain : memory(want, eng);
  };
  auto back = [&](const memory& m, const memory& plain) {
    if (m.get_desc() != plain.get_desc()) reorder(m, plain).execute(st, {{DNNL_ARG_FROM, m}, {DNNL_ARG_TO, plain}});
  };
  auto fwd = convolution_forward(fwd_pd);
  auto bd = convolution_backward_data(bwd_d_pd);
  auto bw = convolution_backward_weights(bwd_w_pd);
  Times t{1e30, 1e30, 1e30};
  for (int r = 0; r < reps + 1; ++r) {
    double t0 = now_ms();
    {
      memory xs = in(xm, fwd_pd.src_desc()), ws = in(wm, fwd_pd.weights_desc()), yd = out_mem(ym, fwd_pd.dst_desc());
      fwd.execute(st, {{DNNL_ARG_SRC, xs}, {DNNL_ARG_WEIGHTS, ws}, {DNNL_ARG_DST, yd}});
      back(yd, ym);
      st.wait();
    }
    double t1 = now_ms();
    {
      memory dys = in(ym, bwd_d_pd.diff_dst_desc()), ws = in(wm, bwd_d_pd.weights_desc()),
             dxs = out_mem(dxm, bwd_d_pd.diff_src_desc());
      bd.execute(st, {{DNNL_ARG_DIFF_DST, dys}, {DNNL_ARG_WEIGHTS, ws}, {DNNL_ARG_DIFF_SRC, dxs}});
      back(dxs, dxm);
      st.wait();
    }
    double t2 = now_ms();
    {
      memory dys = in(ym, bwd_w_pd.diff_dst_desc()), xs = in(xm, bwd_w_pd.src_desc()),
             dws = out_mem(dwm, bwd_w_pd.diff_weights_desc());
      bw.execute(st, {{DNNL_ARG_DIFF_DST, dys}, {DNNL_ARG_SRC, xs}, {DNNL_ARG_DIFF_WEIGHTS, dws}});
      back(dws, dwm);
      st.wait();
    }
    double t3 = now_ms();
    if (r == 0) continue;
    t.fwd = std::min(t.fwd, t1 - t0);
    t.bwd_data = std::min(t.bwd_data, t2 - t1);
    t.bwd_weights = std::min(t.bwd_weights, t3 - t2);
  }
  if (getenv("SHOW_IMPL"))
    printf("    impl fwd %s bwd_d %s bwd_w %s\n", fwd_pd.impl_info_str(), bwd_d_pd.impl_info_str(),
           bwd_w_pd.impl_info_str());
  return t;
}

int main(int argc, char** argv) {
  const int n = argc > 1 ? atoi(argv[1]) : 32;
  const int reps = argc > 2 ? atoi(argv[2]) : 3;
  engine eng(engine::kind::cpu, 0);
  stream st(eng);
  // ResNet-50 at 112 px: conv1, then one of each bottleneck conv per stage (28, 14, 7, 4 px).
  std::vector<Shape> shapes = {{n, 3, 64, 112, 7, 2, 3},   {n, 64, 64, 28, 1, 1, 0},   {n, 64, 64, 28, 3, 1, 1},
                               {n, 64, 256, 28, 1, 1, 0},  {n, 256, 64, 28, 1, 1, 0},  {n, 128, 128, 28, 3, 2, 1},
                               {n, 512, 128, 14, 1, 1, 0}, {n, 128, 128, 14, 3, 1, 1}, {n, 256, 256, 7, 3, 1, 1},
                               {n, 1024, 256, 7, 1, 1, 0}, {n, 512, 512, 4, 3, 1, 1},  {n, 2048, 512, 4, 1, 1, 0}};
  double tot[3][3] = {};
  const char* names[3] = {"plain", "blocked", "w_any"};
  for (const Shape& s : shapes) {
    printf("%4d->%4d k%d s%d h%3d:", s.ic, s.oc, s.k, s.s, s.h);
    for (int mode = 0; mode < 3; ++mode) {
      Times t = run(eng, st, s, mode >= 1, mode == 2, reps);
      tot[mode][0] += t.fwd;
      tot[mode][1] += t.bwd_data;
      tot[mode][2] += t.bwd_weights;
      printf("  %s %.1f/%.1f/%.1f", names[mode], t.fwd, t.bwd_data, t.bwd_weights);
    }
    printf("\n");
    fflush(stdout);
  }
  for (int mode = 0; mode < 3; ++mode)
    printf("total %-8s fwd %.1f bwd_data %.1f bwd_weights %.1f ms\n", names[mode], tot[mode][0], tot[mode][1], tot[mode][2]);
}
