// Reverse-mode autograd.
//
// Each op whose inputs require grad records a Node on its output: the inputs' gradient edges and
// a backward function. backward() runs the nodes in reverse topological order, summing the
// gradients that meet at a node, and leaves (parameters) accumulate into their grad().
//
// Writing an op's backward:
//   Tensor y = ...forward...;
//   record_op("relu", y, {x}, [x = x.detach(), y_saved = y.detach()](const Tensor& gy) {
//     return std::vector<Tensor>{relu_backward(gy, y_saved)};
//   });
// Save detached tensors: a node that holds its own output with grad_fn would never be freed.
// The backward function returns one gradient per input (an undefined Tensor where none flows).
#pragma once

#include "engine/tensor.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace ffr {

class Node {
 public:
  virtual ~Node() = default;
  virtual const char* name() const = 0;
  // Gradients w.r.t. the inputs, one per entry of next_edges().
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  // Drops saved tensors once backward has used them.
  virtual void release() {}

  // One per input: the node that produced it (or its leaf accumulator), null where no grad flows.
  std::vector<std::shared_ptr<Node>>& next_edges() { return next_; }

 private:
  std::vector<std::shared_ptr<Node>> next_;
};

using BackwardFunction = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

bool grad_enabled();

// Turns graph recording off for a scope (evaluation, optimizer updates, inference).
class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

// True when grad is enabled and some input requires grad: the op must record a node.
bool needs_grad(std::initializer_list<const Tensor*> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Records `backward` as the grad_fn of `output` if needs_grad(inputs); no-op otherwise.
void record_op(const char* name, Tensor& output, const std::vector<Tensor>& inputs,
               BackwardFunction backward);

// Runs backpropagation from `root` with upstream gradient `grad_root` (same shape as root).
void run_backward(const Tensor& root, const Tensor& grad_root);

}  // namespace ffr
