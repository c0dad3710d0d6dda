// saved_layer.h -- what a recurrent layer's forward hands its backward (minirnn._C.SavedLayer):
// forward's arguments as it checked them and the kernels read them, and the workspace it wrote.
// Backward takes it in place of forward's arguments, so they are parsed once per training step.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <vector>

#include "args.h"

namespace minirnn::python {

namespace py = pybind11;

struct SavedLayer {
  Inputs in;            // checked: contiguous, x's dtype; lengths as int64; w_hr only when projected
  py::array workspace;  // (n_ws,) written by forward, read (not changed) by backward

  bool projected() const { return bool(in.w_hr); }
  // The arrays it keeps alive, for the tape's count of saved bytes: x, the weights, biases, h0,
  // c0 (those present) and the workspace (lengths, B integers, not counted).
  std::vector<py::array> arrays() const;
  int64_t nbytes() const;
};

// A new SavedLayer holding `in` and `workspace`, as Python sees it.
py::object save_layer(Inputs&& in, py::array workspace);

// `saved` as the SavedLayer of lstm_proj_forward (projected) or of rnn_forward: TypeError for
// anything else, ValueError for the other forward's.
const SavedLayer& saved_arg(py::handle saved, bool projected);

// The class minirnn._C.SavedLayer: read-only properties, not constructible from Python.
void register_saved_layer(py::module_& m);

}  // namespace minirnn::python
