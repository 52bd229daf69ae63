// The one source of libdecodelab_cpp.so that is not a component's: it makes sure the library's
// registrations are all there when it loads, whatever the linker kept (include/CMakeLists.txt).
#include "decodelab/builtins.hpp"

namespace {
const bool registered = (decodelab::register_builtins(), true);
}  // namespace
