// kernels.h -- the Python module's kernel calls, as minirnn._C exposes them (module.cpp registers
// them; docstrings.h documents their arguments and results).
//
// Legend: T time steps, B batch, I input features, H hidden units, P proj_size, G gates (1, 4, 3).
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

namespace minirnn::python {

namespace py = pybind11;

// (y (T, B, H), h_n (B, H), c_n (B, H) or None, saved: a SavedLayer, or None when need_workspace
// is false).
py::tuple rnn_forward(const std::string& mode, py::handle x, py::handle w_ih, py::handle w_hh, py::handle b_ih,
                      py::handle b_hh, py::handle h0, py::handle c0, py::handle lengths, bool need_workspace);
// (dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0) from rnn_forward's saved; with gate_grads dg_ih, dg_hh
// in dw_ih's and dw_hh's places.
py::tuple rnn_backward(py::handle saved, py::handle dy, py::handle dh_n, py::handle dc_n, bool gate_grads,
                       py::handle dh_steps);
// The projected LSTM: (y (T, B, P), h_n (B, P), c_n (B, H), saved: a SavedLayer).
py::tuple lstm_proj_forward(py::handle x, py::handle w_ih, py::handle w_hh, py::handle w_hr, py::handle b_ih,
                            py::handle b_hh, py::handle h0, py::handle c0, py::handle lengths);
// (dx, dw_ih, dw_hh, dw_hr, db_ih, db_hh, dh0, dc0) from lstm_proj_forward's saved.
py::tuple lstm_proj_backward(py::handle saved, py::handle dy, py::handle dh_n, py::handle dc_n);
// Elements in the workspace rnn_forward returns.
int64_t workspace_size(const std::string& mode, int64_t T, int64_t B, int64_t H);
// C (M, N) = op(a) @ op(b).
py::array matmul(py::handle a, py::handle b, bool transpose_a, bool transpose_b);
// y = 1 / (1 + e^-x) elementwise.
py::array sigmoid(py::handle x);

}  // namespace minirnn::python
