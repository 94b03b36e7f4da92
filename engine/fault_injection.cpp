#include "engine/fault_injection.h"

#include "engine/error.h"

#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <sstream>
#include <tuple>
#include <utility>

namespace ffr::fault {

namespace {

int64_t parse_step(const std::string& key, const std::string& text) {
  char* end = nullptr;
  errno = 0;
  const long long v = std::strtoll(text.c_str(), &end, 10);
  if (text.empty() || errno != 0 || *end != '\0' || v < 1) {
    throw InputError("FFR_FAULT: " + key + " needs a positive integer, got '" + text + "'");
  }
  return v;
}

// "7@layer1.0.conv2" -> (7, "layer1.0.conv2").
std::pair<int64_t, std::string> step_at_name(const std::string& key, const std::string& text) {
  const size_t at = text.find('@');
  if (at == std::string::npos || at + 1 == text.size()) {
    throw InputError("FFR_FAULT: " + key + " needs STEP@NAME (e.g. " + key + "=7@layer1.0.conv2), got '" + text + "'");
  }
  return {parse_step(key, text.substr(0, at)), text.substr(at + 1)};
}

std::mutex g_mutex;
std::optional<Plan> g_plan;

}  // namespace

Plan parse_plan(const std::string& spec) {
  Plan p;
  std::istringstream items(spec);
  for (std::string item; std::getline(items, item, ',');) {
    if (item.empty()) continue;
    const size_t eq = item.find('=');
    const std::string key = item.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : item.substr(eq + 1);
    if (key == "kill-at-step") {
      p.kill_at_step = parse_step(key, value);
    } else if (key == "kill-after-epoch") {
      p.kill_after_epoch = parse_step(key, value);
    } else if (key == "oom-at-step") {
      p.oom_at_step = parse_step(key, value);
    } else if (key == "nan-at-step") {
      std::tie(p.nan_at_step, p.nan_layer) = step_at_name(key, value);
    } else if (key == "nan-grad-at-step") {
      std::tie(p.nan_grad_at_step, p.nan_grad_parameter) = step_at_name(key, value);
    } else {
      throw InputError("FFR_FAULT: unknown fault '" + key +
                       "' (expected kill-at-step, kill-after-epoch, oom-at-step, nan-at-step or nan-grad-at-step)");
    }
  }
  return p;
}

const Plan& plan() {
  std::lock_guard<std::mutex> lock(g_mutex);
  if (!g_plan) {
    const char* spec = std::getenv("FFR_FAULT");
    g_plan = parse_plan(spec ? spec : "");
  }
  return *g_plan;
}

void set_plan(const Plan& p) {
  std::lock_guard<std::mutex> lock(g_mutex);
  g_plan = p;
}

void kill_process(const std::string& why) {
  std::fprintf(stderr, "\nFFR_FAULT: %s: killing this process (SIGKILL)\n", why.c_str());
  std::fflush(stderr);
  ::kill(::getpid(), SIGKILL);
  std::abort();  // not reached
}

}  // namespace ffr::fault
