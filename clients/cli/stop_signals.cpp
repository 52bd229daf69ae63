#include "clients/cli/stop_signals.hpp"

#include <signal.h>

#include "decodelab/error.hpp"

namespace decodelab::cli {
namespace {

// Lock-free atomics are safe to store from a signal handler.
std::atomic<bool> g_stop{false};
std::atomic<int> g_signal{0};
static_assert(std::atomic<bool>::is_always_lock_free && std::atomic<int>::is_always_lock_free);

constexpr int kSignals[] = {SIGINT, SIGTERM};
struct sigaction g_previous[2];
bool g_installed[2] = {false, false};
bool g_active = false;

extern "C" void on_stop_signal(int signal) {
  int none = 0;
  g_signal.compare_exchange_strong(none, signal);
  g_stop.store(true);
}

}  // namespace

StopOnSignals::StopOnSignals() {
  if (g_active) fail(ErrorCode::internal, "StopOnSignals: one is active already");
  g_active = true;
  g_stop.store(false);
  g_signal.store(0);
  for (int i = 0; i < 2; ++i) {
    struct sigaction current {};
    sigaction(kSignals[i], nullptr, &current);
    if (current.sa_handler == SIG_IGN) continue;  // started ignoring it: keep ignoring it
    struct sigaction action {};
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    action.sa_flags = SA_RESETHAND | SA_RESTART;  // a second signal takes the default action
    g_installed[i] = sigaction(kSignals[i], &action, &g_previous[i]) == 0;
  }
}

StopOnSignals::~StopOnSignals() {
  for (int i = 0; i < 2; ++i) {
    if (g_installed[i]) sigaction(kSignals[i], &g_previous[i], nullptr);
    g_installed[i] = false;
  }
  g_active = false;
}

const std::atomic<bool>* StopOnSignals::flag() const { return &g_stop; }

int StopOnSignals::signal() const { return g_signal.load(); }

const char* signal_name(int signal) {
  switch (signal) {
    case SIGINT: return "SIGINT";
    case SIGTERM: return "SIGTERM";
    default: return "a signal";
  }
}

}  // namespace decodelab::cli
