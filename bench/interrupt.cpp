#include "bench/interrupt.h"

#include <csignal>
#include <cstdio>
#include <cstring>

#include <unistd.h>

namespace ffr::bench {
namespace {

volatile std::sig_atomic_t g_requested = 0;
std::string g_message;

extern "C" void on_sigint(int) {
  if (g_requested != 0) {
    // The second Ctrl-C: stop now, as the default action would (exit status 130 in a shell).
    std::signal(SIGINT, SIG_DFL);
    std::raise(SIGINT);
    return;
  }
  g_requested = 1;
  const char note[] = "\nffr-bench: stopping at the next safe point (Ctrl-C again to stop at once)\n";
  [[maybe_unused]] const ssize_t written = ::write(STDERR_FILENO, note, sizeof note - 1);
}

}  // namespace

void install_interrupt_handler() {
  struct sigaction action;
  std::memset(&action, 0, sizeof action);
  action.sa_handler = on_sigint;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
}

bool interrupt_requested() { return g_requested != 0; }

void set_interrupt_requested(bool requested) {
  g_requested = requested ? 1 : 0;
  if (!requested) g_message.clear();
}

void stop_if_interrupted(const Progress& p) {
  if (g_requested == 0) return;
  // epoch_done comes after the epoch's resume point is written: a rerun starts with the next one.
  // Otherwise the epoch under way is lost and a rerun starts it again.
  const long long epoch = static_cast<long long>(p.epoch_done ? p.epoch + 1 : p.epoch);
  char text[160];
  if (p.epoch_done && p.epoch >= p.epochs) {
    std::snprintf(text, sizeof text, "interrupted: rerun the same command to resume after epoch %lld (%s's last)",
                  static_cast<long long>(p.epoch), p.stage.c_str());
  } else {
    std::snprintf(text, sizeof text, "interrupted: rerun the same command to resume from epoch %lld (%s)", epoch,
                  p.stage.c_str());
  }
  g_message = text;
  throw Interrupted(g_message);
}

const std::string& interrupt_message() { return g_message; }

}  // namespace ffr::bench
