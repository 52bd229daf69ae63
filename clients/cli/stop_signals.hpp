#pragma once
// StopOnSignals: while it lives, SIGINT and SIGTERM do not kill the process but set a flag that a
// decoder reads between steps and between prefill chunks (DecodeOptions::cancel), so an
// interrupted `decodelab generate` stops at the next step or chunk and still prints what it has.
//
//   StopOnSignals stop;
//   options.cancel = stop.flag();
//   decoder->generate(models, options, stream);   // stop reason "cancelled" after Ctrl-C
//   if (stop.signal()) return 128 + stop.signal();
//
// The first signal only sets the flag; the handler then reverts to the default action, so a
// second Ctrl-C ends a process whose model call does not return. A signal the process was started
// ignoring (a background job of a non-interactive shell ignores SIGINT) stays ignored. One
// StopOnSignals at a time; the destructor restores the previous handlers.

#include <atomic>

namespace decodelab::cli {

class StopOnSignals {
 public:
  StopOnSignals();
  ~StopOnSignals();
  StopOnSignals(const StopOnSignals&) = delete;
  StopOnSignals& operator=(const StopOnSignals&) = delete;

  const std::atomic<bool>* flag() const;
  // The signal that set the flag (SIGINT or SIGTERM), 0 when none came.
  int signal() const;
};

// "SIGINT", "SIGTERM", or "a signal".
const char* signal_name(int signal);

}  // namespace decodelab::cli
