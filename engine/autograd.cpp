#include "engine/autograd.h"

#include "engine/error.h"
#include "engine/nvtx.h"
#include "kernels/elementwise.h"

#include <unordered_map>

namespace ffr {

namespace {

thread_local bool grad_mode = true;

// The node an op records: the backward closure, dropped after use (frees saved activations).
class FunctionNode : public Node {
 public:
  FunctionNode(const char* name, BackwardFunction fn) : name_(name), fn_(std::move(fn)) {}
  const char* name() const override { return name_; }
  std::vector<Tensor> apply(const Tensor& grad_output) override {
    FFR_CHECK(fn_ != nullptr, "backward through ", name_, " a second time (its saved tensors are freed)");
    return fn_(grad_output);
  }
  void release() override { fn_ = nullptr; }

 private:
  const char* name_;
  BackwardFunction fn_;
};

// A leaf's sink: adds the incoming gradient into leaf.grad (weak: the leaf owns this node).
class AccumulateGrad : public Node {
 public:
  explicit AccumulateGrad(std::weak_ptr<TensorImpl> leaf) : leaf_(std::move(leaf)) {}
  const char* name() const override { return "accumulate_grad"; }
  std::vector<Tensor> apply(const Tensor& grad) override {
    auto leaf = leaf_.lock();
    if (!leaf) return {};
    FFR_CHECK(grad.shape() == leaf->shape, "gradient of shape ", shape_str(grad.shape()),
              " for a leaf of shape ", shape_str(leaf->shape));
    if (!leaf->grad) {
      // Own the buffer: the incoming gradient may alias another tensor's (e.g. add's backward
      // passes the same gradient to both inputs), and later accumulation writes in place.
      const bool exclusive = grad.impl_ptr().use_count() <= 2 && grad.impl()->storage.use_count() == 1;
      leaf->grad = (exclusive ? grad : grad.clone()).impl_ptr();
    } else if (leaf->grad_zeroed) {
      // The first gradient since zero_grad(): written over the stale buffer, which keeps its
      // address (a fill then an add would be two launches and twice the traffic).
      leaf->grad_zeroed = false;
      Tensor(leaf->grad).copy_(grad);
    } else {
      Tensor existing(leaf->grad);
      add_(existing, grad);
    }
    return {};
  }

 private:
  std::weak_ptr<TensorImpl> leaf_;
};

std::shared_ptr<Node> gradient_edge(const Tensor& t) {
  if (!t.defined()) return nullptr;
  TensorImpl* impl = t.impl();
  if (impl->grad_fn) return impl->grad_fn;
  if (!impl->requires_grad) return nullptr;
  if (!impl->grad_accumulator) impl->grad_accumulator = std::make_shared<AccumulateGrad>(t.impl_ptr());
  return impl->grad_accumulator;
}

bool tensor_needs_grad(const Tensor& t) {
  return t.defined() && (t.impl()->requires_grad || t.impl()->grad_fn != nullptr);
}

}  // namespace

bool grad_enabled() { return grad_mode; }

NoGradGuard::NoGradGuard() : previous_(grad_mode) { grad_mode = false; }
NoGradGuard::~NoGradGuard() { grad_mode = previous_; }

bool needs_grad(std::initializer_list<const Tensor*> inputs) {
  if (!grad_mode) return false;
  for (const Tensor* t : inputs)
    if (tensor_needs_grad(*t)) return true;
  return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!grad_mode) return false;
  for (const Tensor& t : inputs)
    if (tensor_needs_grad(t)) return true;
  return false;
}

void record_op(const char* name, Tensor& output, const std::vector<Tensor>& inputs, BackwardFunction backward) {
  if (!needs_grad(inputs)) return;
  auto node = std::make_shared<FunctionNode>(name, std::move(backward));
  node->next_edges().reserve(inputs.size());
  for (const Tensor& input : inputs) node->next_edges().push_back(gradient_edge(input));
  output.impl()->grad_fn = std::move(node);
  output.impl()->requires_grad = true;
}

void run_backward(const Tensor& root, const Tensor& grad_root) {
  FFR_CHECK(root.defined() && grad_root.defined(), "backward of an undefined tensor");
  FFR_CHECK(grad_root.shape() == root.shape(), "backward: gradient ", grad_root.str(), " for output ", root.str());
  std::shared_ptr<Node> start = gradient_edge(root);
  FFR_CHECK(start != nullptr, "backward() on a tensor that does not require grad");
  NvtxRange range("backward");
  NoGradGuard no_grad;  // backward functions build no graph (no double backward)

  // Count, for every node, how many edges lead into it, so a node runs once all of the
  // gradients that flow into it have been summed.
  std::unordered_map<Node*, int> pending;
  std::vector<Node*> stack{start.get()};
  pending[start.get()] = 0;
  while (!stack.empty()) {
    Node* node = stack.back();
    stack.pop_back();
    for (const auto& next : node->next_edges()) {
      if (!next) continue;
      auto [it, inserted] = pending.try_emplace(next.get(), 0);
      it->second += 1;
      if (inserted) stack.push_back(next.get());
    }
  }

  std::unordered_map<Node*, Tensor> grads;
  grads[start.get()] = grad_root;
  std::vector<std::shared_ptr<Node>> ready{start};
  while (!ready.empty()) {
    std::shared_ptr<Node> node = std::move(ready.back());
    ready.pop_back();
    Tensor grad = std::move(grads[node.get()]);
    grads.erase(node.get());
    std::vector<Tensor> input_grads;
    {
      // "<op> backward": in Nsight and the op profile, apart from the op's forward range.
      const std::string range_name = std::string(node->name()) + " backward";
      NvtxRange node_range(range_name.c_str());
      OpScope scope(range_name);
      if (grad.defined()) input_grads = node->apply(grad);
    }
    node->release();
    auto& edges = node->next_edges();
    FFR_CHECK(input_grads.empty() || input_grads.size() == edges.size(), node->name(), " backward returned ",
              input_grads.size(), " gradients for ", edges.size(), " inputs");
    for (size_t i = 0; i < edges.size(); ++i) {
      const auto& next = edges[i];
      if (!next) continue;
      if (i < input_grads.size() && input_grads[i].defined()) {
        auto it = grads.find(next.get());
        if (it == grads.end()) {
          grads.emplace(next.get(), std::move(input_grads[i]));
        } else {
          it->second = add(it->second, input_grads[i]);
        }
      }
      // Once every edge into `next` is done it runs; if no gradient reached it, it still runs
      // (with an undefined gradient) so that it is released and the nodes behind it are counted.
      if (--pending[next.get()] == 0) ready.push_back(next);
    }
  }
}

}  // namespace ffr
