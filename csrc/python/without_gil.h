// without_gil.h -- runs a kernel call without the GIL, still answering Ctrl-C.
#pragma once

#include <pybind11/pybind11.h>

#include "rnn.h"

namespace minirnn::python {

namespace py = pybind11;

// Asked by a kernel's time loop (from this, the calling thread) about every 50 ms: whether a
// signal handler raised (Ctrl-C: KeyboardInterrupt). The loops run without the GIL, so Python
// would otherwise act on the signal only when a many-second call returns. The exception stays set
// for raise_if_interrupted.
struct PythonInterrupt {
  Interrupt poll{&PythonInterrupt::requested, this};
  bool raised = false;

  static bool requested(void* self) {
    py::gil_scoped_acquire gil;
    auto* me = static_cast<PythonInterrupt*>(self);
    me->raised = me->raised || PyErr_CheckSignals() != 0;
    return me->raised;
  }
  void raise_if_interrupted() const {  // with the GIL held
    if (raised) throw py::error_already_set();
  }
};

// Runs kernel(a) without the GIL, asked about Ctrl-C as it goes (a.interrupt); raises
// KeyboardInterrupt if one came.
template <typename KernelArgs, typename Kernel>
void run_without_gil(KernelArgs& a, Kernel kernel) {
  PythonInterrupt interrupt;
  a.interrupt = &interrupt.poll;
  {
    py::gil_scoped_release release;
    kernel(a);
  }
  interrupt.raise_if_interrupted();
}

}  // namespace minirnn::python
