#include "engine/error.h"

namespace ffr {

namespace {
thread_local std::string op_description;
}

const std::string& current_op_description() { return op_description; }

OpScope::OpScope(std::string description) : previous_(std::move(op_description)) {
  op_description = std::move(description);
}

OpScope::~OpScope() { op_description = std::move(previous_); }

void throw_error(const std::string& message, const char* file, int line) {
  std::ostringstream out;
  out << message;
  if (!op_description.empty()) out << " in op " << op_description;
  out << " (" << file << ":" << line << ")";
  throw Error(out.str());
}

}  // namespace ffr
