#pragma once
// A failed decodelab_status as a Python exception carrying the library's message (module.cpp's
// header comment lists which status becomes which exception).
#include <nanobind/nanobind.h>

#include "decodelab/decodelab.h"

namespace decodelab_python {

inline void check(decodelab_status status) {
  if (status == DECODELAB_OK) return;
  PyObject* type = PyExc_RuntimeError;  // unsupported, internal, callback
  switch (status) {
    case DECODELAB_ERR_INVALID_ARGUMENT:
    case DECODELAB_ERR_BAD_FORMAT: type = PyExc_ValueError; break;
    case DECODELAB_ERR_NOT_FOUND: type = PyExc_LookupError; break;
    case DECODELAB_ERR_NUMERIC: type = PyExc_ArithmeticError; break;
    case DECODELAB_ERR_OUT_OF_MEMORY: type = PyExc_MemoryError; break;
    default: break;
  }
  PyErr_SetString(type, decodelab_last_error());
  throw nanobind::python_error();
}

}  // namespace decodelab_python
