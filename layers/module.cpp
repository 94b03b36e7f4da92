#include "layers/module.h"

#include "engine/autograd.h"
#include "engine/error.h"

#include <map>
#include <sstream>

namespace ffr {

Tensor& Module::register_parameter(const std::string& name, Tensor& slot, Tensor value) {
  slot = std::move(value);
  if (slot.defined()) slot.set_requires_grad(true);
  parameters_.emplace_back(name, &slot);
  return slot;
}

Tensor& Module::register_buffer(const std::string& name, Tensor& slot, Tensor value) {
  slot = std::move(value);
  buffers_.emplace_back(name, &slot);
  return slot;
}

void Module::collect(const std::string& prefix, bool parameters, NamedTensors& out) const {
  for (const auto& [name, slot] : parameters ? parameters_ : buffers_)
    if (slot->defined()) out.emplace_back(prefix + name, *slot);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", parameters, out);
}

void Module::collect_slots(const std::string& prefix, bool parameters,
                           std::vector<std::pair<std::string, Tensor*>>& out) {
  for (auto& [name, slot] : parameters ? parameters_ : buffers_)
    if (slot->defined()) out.emplace_back(prefix + name, slot);
  for (auto& [name, child] : children_) child->collect_slots(prefix + name + ".", parameters, out);
}

NamedTensors Module::named_parameters() const {
  NamedTensors out;
  collect("", true, out);
  return out;
}

NamedTensors Module::named_buffers() const {
  for (const auto& [name, m] : named_modules()) m->on_state_read();
  NamedTensors out;
  collect("", false, out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, t] : named_parameters()) out.push_back(t);
  return out;
}

NamedTensors Module::state_dict() const {
  NamedTensors out = named_parameters();
  NamedTensors buffers = named_buffers();
  out.insert(out.end(), buffers.begin(), buffers.end());
  return out;
}

int64_t Module::parameter_count() const {
  int64_t n = 0;
  for (auto& [name, t] : named_parameters()) n += t.numel();
  return n;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::to(Device device) {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect_slots("", true, slots);
  for (auto& [name, slot] : slots) {
    if (slot->device() == device) continue;
    const bool requires = slot->requires_grad();
    *slot = slot->detach().to(device);
    slot->set_requires_grad(requires);
  }
  slots.clear();
  collect_slots("", false, slots);
  for (auto& [name, slot] : slots) *slot = slot->to(device);
}

std::vector<Module*> Module::modules() {
  std::vector<Module*> out{this};
  for (auto& [name, child] : children_) {
    std::vector<Module*> below = child->modules();
    out.insert(out.end(), below.begin(), below.end());
  }
  return out;
}

std::vector<std::pair<std::string, const Module*>> Module::named_modules() const {
  std::vector<std::pair<std::string, const Module*>> out{{"", this}};
  for (const auto& [name, child] : children_) {
    for (auto& [below, m] : child->named_modules()) out.emplace_back(below.empty() ? name : name + "." + below, m);
  }
  return out;
}

void Module::cast(DType dtype) {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect_slots("", true, slots);
  for (auto& [name, slot] : slots) {
    if (slot->dtype() == dtype) continue;
    const bool requires = slot->requires_grad();
    *slot = slot->detach().to(dtype);
    slot->set_requires_grad(requires);
  }
  slots.clear();
  collect_slots("", false, slots);
  for (auto& [name, slot] : slots)
    if (is_floating(slot->dtype())) *slot = slot->to(dtype);
}

void Module::zero_grad() {
  for (Tensor& p : parameters()) p.zero_grad();
}

void Module::load_state_dict(const NamedTensors& state, const std::string& source) {
  std::vector<std::pair<std::string, Tensor*>> slots;
  collect_slots("", true, slots);
  collect_slots("", false, slots);
  std::map<std::string, const Tensor*> given;
  for (const auto& [name, t] : state) given[name] = &t;

  std::ostringstream problems;
  int count = 0;
  for (const auto& [name, slot] : slots) {
    auto it = given.find(name);
    if (it == given.end()) {
      problems << "\n  missing: " << name << " " << shape_str(slot->shape());
      ++count;
      continue;
    }
    const Tensor& value = *it->second;
    if (value.shape() != slot->shape()) {
      problems << "\n  shape mismatch: " << name << " is " << shape_str(value.shape()) << ", the model has "
               << shape_str(slot->shape());
      ++count;
    } else if (is_floating(value.dtype()) != is_floating(slot->dtype())) {
      problems << "\n  dtype mismatch: " << name << " is " << dtype_name(value.dtype()) << ", the model has "
               << dtype_name(slot->dtype());
      ++count;
    }
    given.erase(it);
  }
  for (const auto& [name, t] : given) {
    problems << "\n  unexpected: " << name << " " << shape_str(t->shape());
    ++count;
  }
  if (count > 0) throw InputError(detail::concat(source, " does not match the model (", count, " problems):", problems.str()));

  NoGradGuard no_grad;
  std::map<std::string, const Tensor*> by_name;
  for (const auto& [name, t] : state) by_name[name] = &t;
  for (const auto& [name, slot] : slots) slot->copy_(*by_name.at(name));
  for (Module* m : modules()) m->on_state_loaded();
}

}  // namespace ffr
