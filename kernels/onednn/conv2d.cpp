#include "kernels/onednn/conv2d.h"

#include "engine/error.h"
#include "engine/tensor.h"
#include "kernels/onednn/context.h"

#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <vector>

namespace ffr::onednn {
namespace {

using dnnl::memory;
using tag = memory::format_tag;

enum class Direction : int { Forward, BackwardData, BackwardWeights };

// The plain descriptors of one problem: x/y NCHW, w OIHW (GOIHW with groups: the same bytes).
struct PlainDescs {
  memory::desc src, weights, dst;
};

PlainDescs plain_descs(const Conv2dGeometry& g) {
  PlainDescs d;
  d.src = memory::desc({g.batch, g.in_channels, g.in_height, g.in_width}, memory::data_type::f32, tag::nchw);
  d.dst = memory::desc({g.batch, g.out_channels, g.out_height, g.out_width}, memory::data_type::f32, tag::nchw);
  d.weights = g.groups == 1
                  ? memory::desc({g.out_channels, g.in_channels, g.kernel_height, g.kernel_width},
                                 memory::data_type::f32, tag::oihw)
                  : memory::desc({g.groups, g.out_channels_per_group(), g.in_channels_per_group(), g.kernel_height,
                                  g.kernel_width},
                                 memory::data_type::f32, tag::goihw);
  return d;
}

memory::desc any_like(const memory::desc& d) {
  return memory::desc(d.dims(), memory::data_type::f32, tag::any);
}

// One cached primitive with the layouts it wants for (src or diff_src, weights or diff_weights,
// dst or diff_dst); each equals the plain one in the plain layout.
struct Entry {
  dnnl::primitive primitive;
  memory::desc src, weights, dst;
};

Entry make_entry(const Conv2dGeometry& g, Direction dir, bool blocked) {
  const PlainDescs plain = plain_descs(g);
  const memory::desc src = blocked ? any_like(plain.src) : plain.src;
  const memory::desc weights = blocked ? any_like(plain.weights) : plain.weights;
  const memory::desc dst = blocked ? any_like(plain.dst) : plain.dst;
  // oneDNN counts dilation from 0 (no gaps); ours from 1.
  const memory::dims strides{g.stride_height, g.stride_width};
  const memory::dims dilation{g.dilation_height - 1, g.dilation_width - 1};
  const memory::dims padding{g.pad_height, g.pad_width};
  const auto alg = dnnl::algorithm::convolution_direct;
  dnnl::engine& engine = cpu_engine();
  // The forward primitive descriptor is also the backward ones' hint.
  dnnl::convolution_forward::primitive_desc forward(
      dnnl::convolution_forward::desc(dnnl::prop_kind::forward_training, alg, src, weights, dst, strides, dilation,
                                      padding, padding),
      engine);
  Entry e;
  switch (dir) {
    case Direction::Forward:
      e = {dnnl::convolution_forward(forward), forward.src_desc(), forward.weights_desc(), forward.dst_desc()};
      break;
    case Direction::BackwardData: {
      dnnl::convolution_backward_data::primitive_desc pd(
          dnnl::convolution_backward_data::desc(alg, src, weights, dst, strides, dilation, padding, padding), engine,
          forward);
      e = {dnnl::convolution_backward_data(pd), pd.diff_src_desc(), pd.weights_desc(), pd.diff_dst_desc()};
      break;
    }
    case Direction::BackwardWeights: {
      dnnl::convolution_backward_weights::primitive_desc pd(
          dnnl::convolution_backward_weights::desc(alg, src, weights, dst, strides, dilation, padding, padding),
          engine, forward);
      e = {dnnl::convolution_backward_weights(pd), pd.src_desc(), pd.diff_weights_desc(), pd.diff_dst_desc()};
      break;
    }
  }
  return e;
}

const Entry& cached_entry(const Conv2dGeometry& g, Direction dir, bool blocked) {
  using Key = std::vector<int64_t>;
  thread_local std::map<Key, Entry> cache;
  const Key key{int64_t(dir), int64_t(blocked), g.batch, g.in_channels, g.in_height, g.in_width,
                g.out_channels, g.kernel_height, g.kernel_width, g.stride_height, g.stride_width, g.pad_height,
                g.pad_width, g.dilation_height, g.dilation_width, g.groups};
  auto it = cache.find(key);
  if (it == cache.end()) it = cache.emplace(key, make_entry(g, dir, blocked)).first;
  return it->second;
}

// An operand in the layout the primitive wants: the caller's buffer, or a reordered copy in
// scratch from the CPU allocator (`keep` holds it until the primitive has run).
memory operand_in(const memory::desc& want, const memory::desc& plain, const void* data, Tensor& keep) {
  memory user = wrap(plain, data);
  if (want == plain) return user;
  keep = Tensor::empty({int64_t(want.get_size() / sizeof(float))}, DType::Float32, Device::cpu());
  memory m = wrap(want, keep.raw_data());
  dnnl::reorder(user, m).execute(cpu_stream(), {{DNNL_ARG_FROM, user}, {DNNL_ARG_TO, m}});
  return m;
}

memory operand_out(const memory::desc& want, const memory::desc& plain, void* data, Tensor& keep) {
  if (want == plain) return wrap(plain, data);
  keep = Tensor::empty({int64_t(want.get_size() / sizeof(float))}, DType::Float32, Device::cpu());
  return wrap(want, keep.raw_data());
}

void copy_out(const memory& result, const memory::desc& plain, void* data) {
  if (result.get_desc() == plain) return;
  memory user = wrap(plain, data);
  dnnl::reorder(result, user).execute(cpu_stream(), {{DNNL_ARG_FROM, result}, {DNNL_ARG_TO, user}});
}

// Runs one direction: `in_a`/`in_b` are the read operands and `out` the written one, each named
// by its oneDNN argument and its slot (src, weights, dst) in the entry.
enum class Slot { Src, Weights, Dst };

struct Operand {
  int arg;
  Slot slot;
  const void* data;
};

void run(const Conv2dGeometry& g, ConvFormat format, Direction dir, const char* op, Operand a, Operand b,
         Operand out) {
  try {
    const bool blocked = format == ConvFormat::Blocked ||
                         (format == ConvFormat::Mixed && dir == Direction::BackwardWeights) ||
                         (format == ConvFormat::Auto && (dir != Direction::Forward || g.batch > kPlainForwardBatch));
    const Entry& e = cached_entry(g, dir, blocked);
    const PlainDescs plain = plain_descs(g);
    auto want = [&](Slot s) -> const memory::desc& {
      return s == Slot::Src ? e.src : s == Slot::Weights ? e.weights : e.dst;
    };
    auto user = [&](Slot s) -> const memory::desc& {
      return s == Slot::Src ? plain.src : s == Slot::Weights ? plain.weights : plain.dst;
    };
    Tensor keep_a, keep_b, keep_out;
    memory ma = operand_in(want(a.slot), user(a.slot), a.data, keep_a);
    memory mb = operand_in(want(b.slot), user(b.slot), b.data, keep_b);
    memory mo = operand_out(want(out.slot), user(out.slot), const_cast<void*>(out.data), keep_out);
    dnnl::stream& stream = cpu_stream();
    e.primitive.execute(stream, {{a.arg, ma}, {b.arg, mb}, {out.arg, mo}});
    copy_out(mo, user(out.slot), const_cast<void*>(out.data));
    stream.wait();
  } catch (const dnnl::error& err) {
    rethrow(err, std::string(op) + " " + shape_str(g.input_shape()) + " * " + shape_str(g.weight_shape()));
  }
}

}  // namespace

ConvFormat default_conv_format() {
  static const ConvFormat format = [] {
    const char* v = std::getenv("FFR_ONEDNN_CONV_LAYOUT");
    if (v == nullptr || *v == '\0' || std::strcmp(v, "auto") == 0) return ConvFormat::Auto;
    if (std::strcmp(v, "blocked") == 0) return ConvFormat::Blocked;
    if (std::strcmp(v, "plain") == 0) return ConvFormat::Plain;
    FFR_CHECK(std::strcmp(v, "mixed") == 0, "FFR_ONEDNN_CONV_LAYOUT must be auto, plain, blocked or mixed, got '", v,
              "'");
    return ConvFormat::Mixed;
  }();
  return format;
}

void conv2d_forward(const float* x, const float* w, float* y, const Conv2dGeometry& g, ConvFormat format) {
  run(g, format, Direction::Forward, "conv2d forward", {DNNL_ARG_SRC, Slot::Src, x}, {DNNL_ARG_WEIGHTS, Slot::Weights, w},
      {DNNL_ARG_DST, Slot::Dst, y});
}

void conv2d_backward_input(const float* dy, const float* w, float* dx, const Conv2dGeometry& g, ConvFormat format) {
  run(g, format, Direction::BackwardData, "conv2d backward data", {DNNL_ARG_DIFF_DST, Slot::Dst, dy},
      {DNNL_ARG_WEIGHTS, Slot::Weights, w}, {DNNL_ARG_DIFF_SRC, Slot::Src, dx});
}

void conv2d_backward_weight(const float* dy, const float* x, float* dw, const Conv2dGeometry& g,
                            ConvFormat format) {
  run(g, format, Direction::BackwardWeights, "conv2d backward weights", {DNNL_ARG_DIFF_DST, Slot::Dst, dy},
      {DNNL_ARG_SRC, Slot::Src, x}, {DNNL_ARG_DIFF_WEIGHTS, Slot::Weights, dw});
}

}  // namespace ffr::onednn
