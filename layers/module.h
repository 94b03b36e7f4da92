// Module: a node of a model tree with named parameters and buffers, named as PyTorch names them
// ("layer1.0.conv1.weight", "blocks.3.attn.qkv.bias"), so a state dict moves to and from
// torchvision/timm checkpoints unchanged.
//
// A subclass keeps its tensors and children as members and registers them once in its
// constructor; modules are not copyable, so the registered addresses stay valid.
#pragma once

#include "engine/device.h"
#include "engine/dtype.h"
#include "engine/tensor.h"

#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace ffr {


class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  NamedTensors named_parameters() const;
  NamedTensors named_buffers() const;
  std::vector<Tensor> parameters() const;
  // Parameters then buffers: what a checkpoint holds.
  NamedTensors state_dict() const;
  // Copies values in (converting dtype, moving device); every name, shape and dtype-kind must
  // match, otherwise one error lists everything that does not (missing, unexpected, shapes).
  void load_state_dict(const NamedTensors& state, const std::string& source = "state dict");
  int64_t parameter_count() const;

  // Training mode (BatchNorm batch statistics, Dropout active) for this module and its children.
  virtual void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Moves (and casts floating) parameters and buffers; parameters stay leaves requiring grad.
  void to(Device device);
  // Casts floating parameters and buffers (float64 for gradient checks; bfloat16 copies).
  void cast(DType dtype);
  void zero_grad();
  // Called on every module after load_state_dict has copied the values in: for host-side copies
  // of a buffer (BatchNorm2d's batch counter).
  virtual void on_state_loaded() {}
  // Called on every module before named_buffers() (and so state_dict()) hands its buffers out: for
  // buffers kept on the host and written to the device only when read (BatchNorm2d's counter).
  virtual void on_state_read() const {}
  // This module and all its descendants, depth first.
  std::vector<Module*> modules();
  // The same, each with its qualified name ("" for this module, "layer1.0.conv1", ...).
  std::vector<std::pair<std::string, const Module*>> named_modules() const;

 protected:
  Tensor& register_parameter(const std::string& name, Tensor& slot, Tensor value);
  Tensor& register_buffer(const std::string& name, Tensor& slot, Tensor value);
  template <typename M>
  M& register_module(const std::string& name, std::unique_ptr<M>& slot, std::unique_ptr<M> module) {
    slot = std::move(module);
    children_.emplace_back(name, slot.get());
    return *slot;
  }
  // For children held in a vector (blocks.0, blocks.1, ...).
  void register_child(const std::string& name, Module* child) { children_.emplace_back(name, child); }

 private:
  void collect(const std::string& prefix, bool parameters, NamedTensors& out) const;
  void collect_slots(const std::string& prefix, bool parameters,
                     std::vector<std::pair<std::string, Tensor*>>& out);

  std::vector<std::pair<std::string, Tensor*>> parameters_;
  std::vector<std::pair<std::string, Tensor*>> buffers_;
  std::vector<std::pair<std::string, Module*>> children_;
  bool training_ = true;
};

}  // namespace ffr
