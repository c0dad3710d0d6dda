// args.h -- the Python module's argument checks: every argument is checked BEFORE any memory is
// touched; a bad one raises TypeError (wrong dtype) or ValueError (wrong rank / shape / value)
// naming the argument and saying "expected X, got Y". Non-contiguous (or byte-swapped) arrays are
// copied to contiguous native ones. NaN is not checked for: it propagates into the outputs.
//
// Legend: T time steps, B batch, I input features, H hidden units, P proj_size, G gates (1, 4, 3).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>
#include <vector>

#include "rnn.h"

namespace minirnn::python {

namespace py = pybind11;

// "(6, 5)", "(3,)" as numpy prints shapes.
std::string shape_str(const std::vector<int64_t>& shape);
std::vector<int64_t> shape_of(const py::array& a);

// An absent optional array (None): a null handle, false in a boolean test.
// (py::array() is NOT that: it is an empty float64 array.)
py::array no_array();
// obj -> numpy array of any dtype in native byte order (no copy when it already is one); None -> no_array().
py::array as_array(py::handle obj, const std::string& name);
// `a` itself when it is C-contiguous, else a contiguous copy of it.
py::array c_contiguous(const py::array& a);
// The dtype number of the float32 or float64 array argument that fixes a call's dtype; TypeError
// naming it for any other dtype.
int float_dtype_num(const py::array& a, const std::string& name);
// ValueError "name: expected letters = (expected), got (shape)" unless a has that shape.
void check_shape(const py::array& a, const std::string& name, const std::string& letters,
                 const std::vector<int64_t>& expected);

// The arguments shared by the recurrent kernels' forward and backward, validated.
struct Inputs {
  Mode mode = Mode::rnn_tanh;
  int64_t G = 1;
  Sizes sz;
  int64_t P = 0;  // proj_size (the width of h) when w_hr is given, else 0 (h has H features)
  bool is_double;
  // Contiguous, x's dtype; b_*, c0 may be null. (Null until parsed: a default py::array would be a
  // new empty numpy array, a cost on every call.)
  py::array x = no_array(), w_ih = no_array(), w_hh = no_array(), b_ih = no_array(), b_hh = no_array(),
            h0 = no_array(), c0 = no_array();
  py::array w_hr = no_array();     // (P, H) the projected LSTM's, else null
  py::array lengths = no_array();  // int64 (B,), null handle when None
  std::string mode_name;

  // A float array argument that must have x's dtype; converted to contiguous.
  py::array float_arg(py::handle obj, const std::string& name) const;
  const int64_t* lengths_ptr() const {
    return lengths ? static_cast<const int64_t*>(lengths.data()) : nullptr;
  }
};

// w_hr: None, or (lstm only) the projection (P, H) of a projected LSTM: then w_hh is (4H, P) and h0 (B, P).
Inputs parse_inputs(const std::string& mode, py::handle x, py::handle w_ih, py::handle w_hh, py::handle b_ih,
                    py::handle b_hh, py::handle h0, py::handle c0, py::handle lengths,
                    py::handle w_hr = py::none());

// A backward call's gradient arguments, checked against its forward's inputs: dy (T, B, R),
// dh_n (B, R), dc_n (B, H) (lstm only), each may be None (zero); R is the width of h (P with w_hr,
// else H).
struct Grads {
  py::array dy = no_array(), dh_n = no_array(), dc_n = no_array();
};
Grads parse_grads(const Inputs& in, py::handle dy, py::handle dh_n, py::handle dc_n);

}  // namespace minirnn::python
