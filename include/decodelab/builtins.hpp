#pragma once
// Built-in components without whole-archive linking.
//
// decodelab's decoders, samplers, constraints and model loaders register themselves from static
// objects in their own files. A linker pulls an object file out of a static library only when
// something refers to it, so a program that links the static libraries plainly would lose every
// registration nobody names (decodelab's own executables link the components whole: decodelab_link
// in CMake). register_builtins() names them all: each registering file carries an anchor,
// DECODELAB_BUILTIN(id), and register_builtins() (core/builtins/builtins.cpp, the component
// decodelab_builtins) refers to every anchor, so linking it pulls in every registering file and
// their static registrations run at start-up as usual. Calling it does nothing else and is
// idempotent; its point is the reference.
//
//   target_link_libraries(my_tool PRIVATE "$<LINK_GROUP:RESCAN,decodelab_builtins,decodelab_decoders,
//       decodelab_constraints,decodelab_samplers,decodelab_model,decodelab_text,decodelab_core>")
//   int main() { decodelab::register_builtins(); auto d = decodelab::make_decoder("spectr", {}); }
//
// A new registering file adds DECODELAB_BUILTIN(<its path with '_' for '/'>) at its end (outside
// any namespace) and the same id to builtins.cpp; tests/builtins checks that none is missing.

// Defines the anchor `id` (at namespace scope, outside any namespace).
#define DECODELAB_BUILTIN(id)     \
  namespace decodelab::builtins { \
  extern const int id;            \
  const int id = 0;               \
  }

namespace decodelab {

void register_builtins();

}  // namespace decodelab
