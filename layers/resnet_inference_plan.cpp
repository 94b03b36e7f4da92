#include "layers/resnet_inference_plan.h"

#include "engine/error.h"
#include "engine/nvtx.h"

#ifdef FFR_WITH_ONEDNN
#include "kernels/onednn/context.h"

#include <array>
#include <cmath>
#include <map>
#include <unordered_map>
#include <vector>
#endif

namespace ffr {

#ifndef FFR_WITH_ONEDNN

std::unique_ptr<InferencePlan> make_resnet_inference_plan(const ResNet&) { return nullptr; }

#else

namespace {

using dnnl::memory;
using tag = memory::format_tag;
using dt = memory::data_type;

// A convolution with the batch norm after it folded in (plain OIHW), and its weights as
// prepared for the primitives that use them (one layout, as a rule).
struct FoldedConv {
  int64_t in_channels = 0, out_channels = 0, kernel = 0, stride = 1, padding = 0;
  std::vector<float> weight;  // OIHW
  std::vector<float> bias;    // [out_channels]
  std::vector<memory> prepared;
  memory bias_memory;
};

std::vector<double> values_or(const Tensor& t, size_t n, double fallback) {
  return t.defined() ? t.to_vector<double>() : std::vector<double>(n, fallback);
}

// y = bn(conv(x)) = conv(x) a + (conv_bias - mean) a + beta, a = gamma / sqrt(var + eps):
// the conv with weights w a and bias (conv_bias - mean) a + beta. Folded in double.
FoldedConv fold(const Conv2d& conv, const BatchNorm2d& bn) {
  const Tensor& w = conv.weight;
  const Conv2dParams& p = conv.params();
  FFR_CHECK(w.ndim() == 4 && w.size(2) == w.size(3) && p.groups == 1 && p.dilation[0] == 1 && p.dilation[1] == 1 &&
                p.stride[0] == p.stride[1] && p.padding[0] == p.padding[1],
            "ResNet inference plan: unsupported convolution ", w.str());
  FoldedConv f;
  f.out_channels = w.size(0);
  f.in_channels = w.size(1);
  f.kernel = w.size(2);
  f.stride = p.stride[0];
  f.padding = p.padding[0];
  const size_t out = size_t(f.out_channels), per_out = size_t(w.numel()) / out;
  const std::vector<double> weight = w.to_vector<double>();
  const std::vector<double> conv_bias = values_or(conv.bias, out, 0.0);
  const std::vector<double> gamma = values_or(bn.weight, out, 1.0), beta = values_or(bn.bias, out, 0.0);
  const std::vector<double> mean = bn.running_mean.to_vector<double>(), var = bn.running_var.to_vector<double>();
  f.weight.resize(weight.size());
  f.bias.resize(out);
  for (size_t c = 0; c < out; ++c) {
    const double a = gamma[c] / std::sqrt(var[c] + bn.eps());
    f.bias[c] = float((conv_bias[c] - mean[c]) * a + beta[c]);
    for (size_t i = 0; i < per_out; ++i) f.weight[c * per_out + i] = float(weight[c * per_out + i] * a);
  }
  f.bias_memory = onednn::wrap(memory::desc({f.out_channels}, dt::f32, tag::x), f.bias.data());
  return f;
}

// The folded weights in the layout `want`, reordered once and kept.
const memory& prepared_weights(FoldedConv& c, const memory::desc& want) {
  for (const memory& m : c.prepared)
    if (m.get_desc() == want) return m;
  memory plain = onednn::wrap(memory::desc({c.out_channels, c.in_channels, c.kernel, c.kernel}, dt::f32, tag::oihw),
                              c.weight.data());
  memory packed(want, onednn::cpu_engine());  // oneDNN owns this buffer
  dnnl::reorder(plain, packed).execute(onednn::cpu_stream(), plain, packed);
  onednn::cpu_stream().wait();
  c.prepared.push_back(packed);
  return c.prepared.back();
}

struct Step {
  dnnl::primitive primitive;
  std::unordered_map<int, memory> args;
};

// Everything one input shape runs: primitives in order, over activation buffers ("slots")
// reused as soon as the value in them is dead.
struct Program {
  std::vector<Step> steps;
  memory input;   // the caller's images, plain NCHW; the handle is set per call
  memory output;  // plain [N, C, 1, 1] features; the handle is set per call
  // The activations: each slot's size, and the values that live in it. Their storage comes from
  // the caching CPU allocator for the call alone (no mapping in a steady state, nothing kept).
  std::vector<size_t> slot_bytes;
  std::vector<std::pair<memory, int>> slot_values;
  std::vector<std::string> kernels;  // oneDNN's implementation of each primitive
};

class ProgramBuilder {
 public:
  static constexpr int kSlots = 5;
  struct Value {
    memory mem;
    int slot;  // -1: the caller's buffer
  };

  explicit ProgramBuilder(Program& program) : program_(program) {}

  Value input(const memory::desc& desc) {
    program_.input = memory(desc, onednn::cpu_engine(), DNNL_MEMORY_NONE);
    return {program_.input, -1};
  }

  // conv(x) + bias, then [+ what `sum_into` holds], then [ReLU]; written into sum_into's slot,
  // or a free one. `live`: slots whose values are still needed.
  Value conv(const Value& x, FoldedConv& c, bool relu, const Value* sum_into, std::vector<int> live) {
    const memory::dims in = x.mem.get_desc().dims();
    const int64_t out_h = (in[2] + 2 * c.padding - c.kernel) / c.stride + 1;
    const int64_t out_w = (in[3] + 2 * c.padding - c.kernel) / c.stride + 1;
    const memory::desc src({in[0], c.in_channels, in[2], in[3]}, dt::f32, tag::any);
    const memory::desc weights({c.out_channels, c.in_channels, c.kernel, c.kernel}, dt::f32, tag::any);
    const memory::desc dst({in[0], c.out_channels, out_h, out_w}, dt::f32, tag::any);
    dnnl::post_ops ops;
    if (sum_into != nullptr) ops.append_sum(1.0f);
    if (relu) ops.append_eltwise(1.0f, dnnl::algorithm::eltwise_relu, 0.0f, 0.0f);
    dnnl::primitive_attr attr;
    attr.set_post_ops(ops);
    dnnl::convolution_forward::primitive_desc pd(
        dnnl::convolution_forward::desc(dnnl::prop_kind::forward_inference, dnnl::algorithm::convolution_direct, src,
                                        weights, c.bias_memory.get_desc(), dst, {c.stride, c.stride},
                                        {c.padding, c.padding}, {c.padding, c.padding}),
        attr, onednn::cpu_engine());
    live.push_back(x.slot);
    const Value in_value = in_layout(x, pd.src_desc(), live);
    live.push_back(in_value.slot);
    Value out = sum_into != nullptr ? in_layout(*sum_into, pd.dst_desc(), live)
                                    : fresh(pd.dst_desc(), live);
    add(dnnl::convolution_forward(pd), pd.impl_info_str(),
        {{DNNL_ARG_SRC, in_value.mem},
         {DNNL_ARG_WEIGHTS, prepared_weights(c, pd.weights_desc())},
         {DNNL_ARG_BIAS, c.bias_memory},
         {DNNL_ARG_DST, out.mem}});
    return out;
  }

  Value pool(const Value& x, dnnl::algorithm alg, int64_t kernel, int64_t stride, int64_t padding,
             std::vector<int> live) {
    const memory::dims in = x.mem.get_desc().dims();
    const int64_t out_h = (in[2] + 2 * padding - kernel) / stride + 1;
    const int64_t out_w = (in[3] + 2 * padding - kernel) / stride + 1;
    const memory::desc dst({in[0], in[1], out_h, out_w}, dt::f32, tag::any);
    dnnl::pooling_forward::primitive_desc pd(
        dnnl::pooling_forward::desc(dnnl::prop_kind::forward_inference, alg, x.mem.get_desc(), dst, {stride, stride},
                                    {kernel, kernel}, {padding, padding}, {padding, padding}),
        onednn::cpu_engine());
    live.push_back(x.slot);
    Value out = fresh(pd.dst_desc(), live);
    add(dnnl::pooling_forward(pd), pd.impl_info_str(), {{DNNL_ARG_SRC, x.mem}, {DNNL_ARG_DST, out.mem}});
    return out;
  }

  // The pooled features, reordered into the plain output the caller's tensor provides.
  void output(const Value& pooled) {
    const memory::dims d = pooled.mem.get_desc().dims();
    program_.output = memory(memory::desc(d, dt::f32, tag::nchw), onednn::cpu_engine(), DNNL_MEMORY_NONE);
    copy(pooled, program_.output);
  }

  // Each slot as large as the largest value it holds.
  void finish() {
    program_.slot_bytes = slot_bytes_;
    program_.slot_values = values_;
  }

 private:
  int free_slot(const std::vector<int>& live) const {
    for (int s = 0; s < kSlots; ++s) {
      bool taken = false;
      for (int l : live) taken = taken || l == s;
      if (!taken) return s;
    }
    FFR_FAIL("ResNet inference plan: out of activation slots");
  }

  Value fresh(const memory::desc& desc, const std::vector<int>& live) {
    const int slot = free_slot(live);
    memory m(desc, onednn::cpu_engine(), DNNL_MEMORY_NONE);
    values_.push_back({m, slot});
    if (slot_bytes_.size() <= size_t(slot)) slot_bytes_.resize(size_t(slot) + 1, 0);
    slot_bytes_[size_t(slot)] = std::max(slot_bytes_[size_t(slot)], desc.get_size());
    return {m, slot};
  }

  // x itself when it is already in layout `want`, else a reordered copy in a free slot.
  Value in_layout(const Value& x, const memory::desc& want, const std::vector<int>& live) {
    if (x.mem.get_desc() == want) return x;
    std::vector<int> busy = live;
    busy.push_back(x.slot);
    Value out = fresh(want, busy);
    copy(x, out.mem);
    return out;
  }

  void copy(const Value& from, const memory& to) {
    dnnl::reorder::primitive_desc pd(from.mem, to);
    add(dnnl::reorder(pd), pd.impl_info_str(), {{DNNL_ARG_FROM, from.mem}, {DNNL_ARG_TO, to}});
  }

  void add(dnnl::primitive p, const char* kernel, std::unordered_map<int, memory> args) {
    program_.steps.push_back({std::move(p), std::move(args)});
    program_.kernels.push_back(kernel);
  }

  Program& program_;
  std::vector<std::pair<memory, int>> values_;
  std::vector<size_t> slot_bytes_;
};

class ResNetPlan : public InferencePlan {
 public:
  explicit ResNetPlan(const ResNet& model) : max_pool_(!model.config().small_input_stem) {
    convs_.push_back(fold(model.stem_conv(), model.stem_bn()));
    for (const Bottleneck* block : model.blocks()) {
      const Bottleneck::Layers l = block->layers();
      BlockConvs b;
      b.conv1 = add_conv(*l.conv1, *l.bn1);
      b.conv2 = add_conv(*l.conv2, *l.bn2);
      b.conv3 = add_conv(*l.conv3, *l.bn3);
      if (l.downsample_conv != nullptr) b.downsample = int64_t(add_conv(*l.downsample_conv, *l.downsample_bn));
      blocks_.push_back(b);
    }
    feature_dim_ = convs_[blocks_.empty() ? 0 : blocks_.back().conv3].out_channels;
  }

  Tensor features(const Tensor& images) override {
    NvtxRange range("ResNetInferencePlan");
    FFR_CHECK(images.device().is_cpu() && images.dtype() == DType::Float32 && images.ndim() == 4 &&
                  images.size(1) == 3,
              "ResNet inference plan: expects [N, 3, H, W] float32 CPU images, got ", images.str());
    const std::array<int64_t, 3> key{images.size(0), images.size(2), images.size(3)};
    auto it = programs_.find(key);
    try {
      if (it == programs_.end()) it = programs_.emplace(key, build(key)).first;
      Program& program = it->second;
      std::vector<Tensor> slots;
      for (size_t bytes : program.slot_bytes)
        slots.push_back(Tensor::empty({int64_t((bytes + sizeof(float) - 1) / sizeof(float))}, DType::Float32));
      for (auto& [mem, slot] : program.slot_values) mem.set_data_handle(slots[size_t(slot)].raw_data());
      Tensor out = Tensor::empty({key[0], feature_dim_}, DType::Float32);
      program.input.set_data_handle(images.raw_data());
      program.output.set_data_handle(out.raw_data());
      dnnl::stream& stream = onednn::cpu_stream();
      for (Step& step : program.steps) step.primitive.execute(stream, step.args);
      stream.wait();
      return out;
    } catch (const dnnl::error& e) {
      onednn::rethrow(e, "ResNet inference plan on " + images.str());
    }
  }

  std::string describe() const override {
    std::map<std::string, int> counts;
    for (const auto& [key, program] : programs_)
      for (const std::string& k : program.kernels) ++counts[k];
    std::string s = "ResNet inference plan (oneDNN, batch norm folded, weights prepacked); kernels:";
    for (const auto& [k, n] : counts) s += " " + k + " x" + std::to_string(n) + ";";
    return s;
  }

 private:
  struct BlockConvs {
    size_t conv1 = 0, conv2 = 0, conv3 = 0;
    int64_t downsample = -1;
  };

  size_t add_conv(const Conv2d& conv, const BatchNorm2d& bn) {
    convs_.push_back(fold(conv, bn));
    return convs_.size() - 1;
  }

  Program build(const std::array<int64_t, 3>& key) {
    Program program;
    ProgramBuilder b(program);
    using Value = ProgramBuilder::Value;
    Value x = b.input(memory::desc({key[0], 3, key[1], key[2]}, dt::f32, tag::nchw));
    x = b.conv(x, convs_[0], true, nullptr, {});
    if (max_pool_) x = b.pool(x, dnnl::algorithm::pooling_max, 3, 2, 1, {});
    for (const BlockConvs& block : blocks_) {
      const Value h1 = b.conv(x, convs_[block.conv1], true, nullptr, {x.slot});
      const Value h2 = b.conv(h1, convs_[block.conv2], true, nullptr, {x.slot});
      const Value identity =
          block.downsample >= 0 ? b.conv(x, convs_[size_t(block.downsample)], false, nullptr, {h2.slot}) : x;
      // The skip path is added in place: identity's buffer becomes the block's output.
      x = b.conv(h2, convs_[block.conv3], true, &identity, {identity.slot});
    }
    const memory::dims d = x.mem.get_desc().dims();
    FFR_CHECK(d[2] == d[3], "ResNet inference plan: non-square final map ", d[2], "x", d[3]);
    x = b.pool(x, dnnl::algorithm::pooling_avg_exclude_padding, d[2], 1, 0, {});
    b.output(x);
    b.finish();
    return program;
  }

  std::vector<FoldedConv> convs_;  // stem first; never resized after construction
  std::vector<BlockConvs> blocks_;
  bool max_pool_;
  int64_t feature_dim_ = 0;
  std::map<std::array<int64_t, 3>, Program> programs_;
};

}  // namespace

std::unique_ptr<InferencePlan> make_resnet_inference_plan(const ResNet& model) {
  const Tensor& w = model.stem_conv().weight;
  if (!w.device().is_cpu() || w.dtype() != DType::Float32) return nullptr;
  return std::make_unique<ResNetPlan>(model);
}

#endif

}  // namespace ffr
