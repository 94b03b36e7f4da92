// A numbered list of children ("blocks.0", "blocks.1", ... / "layer1.0", ...), as torch's
// nn.ModuleList and nn.Sequential name them.
#pragma once

#include "layers/module.h"

#include <memory>
#include <string>
#include <vector>

namespace ffr {

template <typename M>
class ModuleList : public Module {
 public:
  M& append(std::unique_ptr<M> module) {
    items_.push_back(std::move(module));
    register_child(std::to_string(items_.size() - 1), items_.back().get());
    return *items_.back();
  }
  size_t size() const { return items_.size(); }
  M& operator[](size_t i) const { return *items_[i]; }
  auto begin() const { return items_.begin(); }
  auto end() const { return items_.end(); }

 private:
  std::vector<std::unique_ptr<M>> items_;
};

}  // namespace ffr
