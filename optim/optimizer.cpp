#include "optim/optimizer.h"

#include "engine/error.h"

#include <cmath>
#include <unordered_set>

namespace ffr {

Optimizer::Optimizer(std::vector<Tensor> parameters, double lr, std::vector<std::string> names)
    : parameters_(std::move(parameters)), names_(std::move(names)), lr_(lr) {
  FFR_CHECK(lr >= 0, "learning rate must be >= 0, got ", lr);
  if (names_.empty()) {
    for (size_t i = 0; i < parameters_.size(); ++i) names_.push_back(std::to_string(i));
  }
  FFR_CHECK(names_.size() == parameters_.size(), names_.size(), " names for ", parameters_.size(), " parameters");
  std::unordered_set<const void*> seen_storage;
  std::unordered_set<std::string> seen_names;
  for (size_t i = 0; i < parameters_.size(); ++i) {
    const Tensor& p = parameters_[i];
    FFR_CHECK(p.defined(), "parameter ", names_[i], " is undefined");
    FFR_CHECK(is_floating(p.dtype()), "parameter ", names_[i], " is ", p.str(), ": parameters are floating");
    FFR_CHECK(p.requires_grad() && p.grad_fn() == nullptr, "parameter ", names_[i],
              " must be a leaf that requires grad");
    FFR_CHECK(seen_storage.insert(p.raw_data()).second, "parameter ", names_[i], " is given twice");
    FFR_CHECK(seen_names.insert(names_[i]).second, "parameter name ", names_[i], " is given twice");
  }
}

void Optimizer::zero_grad() {
  for (Tensor& p : parameters_) p.zero_grad();
}

int64_t Optimizer::parameter_index(const std::string& name) const {
  for (size_t i = 0; i < names_.size(); ++i)
    if (names_[i] == name) return int64_t(i);
  return -1;
}

NamedTensors Optimizer::state_tensors() const {
  Tensor step = Tensor::from_vector(std::vector<int64_t>{steps_taken_}, {});
  return {{"step", step}};
}

int64_t Optimizer::read_count(const std::string& name, const Tensor& tensor) {
  // PyTorch stores step counts as float32 scalars; integral floats are accepted for that reason.
  if (!tensor.defined() || tensor.numel() != 1)
    throw InputError("optimizer state \"" + name + "\" must hold one count, got " + tensor.str());
  const double value = tensor.to_vector<double>()[0];
  if (!(value >= 0) || value != std::floor(value))
    throw InputError("optimizer state \"" + name + "\" is not a count: " + std::to_string(value));
  return int64_t(value);
}

}  // namespace ffr
