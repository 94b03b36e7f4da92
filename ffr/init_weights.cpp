#include "ffr/init_weights.h"

#include "engine/error.h"
#include "engine/safetensors.h"

#include <algorithm>
#include <map>
#include <sstream>

namespace ffr {

namespace {

// A wrong model gives hundreds of differences; the first few of each kind say what happened.
constexpr size_t kListedPerKind = 4;

bool starts_with(const std::string& s, const std::string& prefix) { return s.compare(0, prefix.size(), prefix) == 0; }

struct Problems {
  std::vector<std::string> missing, unexpected, mismatched;  // mismatched: shape or dtype
  size_t count() const { return missing.size() + unexpected.size() + mismatched.size(); }
  std::string listing() const {
    std::ostringstream out;
    auto kind = [&](const std::vector<std::string>& lines, const char* name) {
      if (lines.empty()) return;
      out << "\n  " << lines.size() << " " << name << (lines.size() > kListedPerKind ? ", the first:" : ":");
      for (size_t i = 0; i < std::min(lines.size(), kListedPerKind); ++i) out << "\n    " << lines[i];
    };
    kind(missing, "missing from the file");
    kind(unexpected, "unexpected in the file");
    kind(mismatched, "of another shape or dtype");
    return out.str();
  }
};

}  // namespace

std::string head_prefix(const Classifier& model) {
  const Module* head = &const_cast<Classifier&>(model).head();
  for (const auto& [name, module] : model.named_modules()) {
    if (module == head) return name + ".";
  }
  throw Error("classifier " + model.architecture() + ": its head is not one of its modules");
}

InitWeightsReport load_init_weights(Classifier& model, const std::string& path, bool keep_head) {
  const SafetensorsFile file = load_safetensors(path);
  InitWeightsReport report;
  report.head_prefix = head_prefix(model);
  const std::string& head = report.head_prefix;

  std::map<std::string, const Tensor*> in_file;
  for (const auto& [name, t] : file.tensors) in_file[name] = &t;
  const NamedTensors current = model.state_dict();

  Problems problems;
  NamedTensors state;  // what load_state_dict gets: the file's tensors, the model's own head
  for (const auto& [name, ours] : current) {
    const bool is_head = starts_with(name, head);
    auto it = in_file.find(name);
    if (is_head && !keep_head) {
      state.emplace_back(name, ours);  // freshly initialised for this data set's classes
      if (it != in_file.end()) in_file.erase(it);
      continue;
    }
    if (it == in_file.end()) {
      problems.missing.push_back((is_head ? "missing (--keep-head needs the file's head): " : "missing: ") + name +
                                 " " + shape_str(ours.shape()));
      continue;
    }
    const Tensor& theirs = *it->second;
    if (theirs.shape() != ours.shape()) {
      problems.mismatched.push_back(
          "shape: " + name + " is " + shape_str(theirs.shape()) + " in the file, " + shape_str(ours.shape()) +
          " in the model" +
          (is_head ? detail::concat(" (the file's head has another class count; without --keep-head it is "
                                    "re-initialised for the data set's ",
                                    model.num_classes(), " classes)")
                   : std::string()));
    } else if (theirs.dtype() != ours.dtype()) {
      problems.mismatched.push_back(std::string("dtype: ") + name + " is " + safetensors_dtype_name(theirs.dtype()) +
                                    " in the file, " + safetensors_dtype_name(ours.dtype()) + " in the model");
    } else {
      state.emplace_back(name, theirs);
    }
    in_file.erase(it);
  }
  for (const auto& [name, t] : in_file)
    problems.unexpected.push_back("unexpected: " + name + " " + shape_str(t->shape()));

  if (problems.count() > 0) {
    throw InputError(detail::concat(path, ": its tensors do not match model ", model.architecture(), " (",
                                    problems.count(), " differences):", problems.listing()) +
                     "\n(an init file must hold the model's own names, shapes and dtypes, as written by "
                     "tools/convert_weights.py or by a run of the same --model)");
  }
  model.load_state_dict(state, path);
  report.loaded = int64_t(state.size());
  report.head_from_file = keep_head;
  if (!keep_head) {
    for (const auto& [name, ours] : current) report.loaded -= starts_with(name, head) ? 1 : 0;
  }
  return report;
}

}  // namespace ffr
