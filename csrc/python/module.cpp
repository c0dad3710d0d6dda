// module.cpp -- the Python module minirnn._C: its functions registered by group. The kernel calls
// are in kernels.h, their docstrings in docstrings.h, the knobs only tests turn in test_knobs.cpp.
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <omp.h>

#include <algorithm>
#include <string>

#include "docstrings.h"
#include "kernels.h"
#include "packed_gemm.h"
#include "parallel.h"
#include "saved_layer.h"
#include "scratch.h"

namespace py = pybind11;

namespace minirnn::python {

void register_test_knobs(py::module_& m);  // test_knobs.cpp

namespace {

// More threads than cores only wait on each other at every time step: capped at 4x the cores,
// with a warning.
void set_num_threads_capped(int n) {
  if (n < 1) throw py::value_error("set_num_threads: expected n >= 1, got " + std::to_string(n));
  const int cap = 4 * std::max(1, omp_get_num_procs());
  if (n > cap) {
    const std::string msg = "set_num_threads: " + std::to_string(n) + " threads on " +
                            std::to_string(omp_get_num_procs()) + " cores; using " + std::to_string(cap) +
                            " (4x the cores)";
    if (PyErr_WarnEx(PyExc_RuntimeWarning, msg.c_str(), 1) != 0) throw py::error_already_set();
    n = cap;
  }
  minirnn::set_num_threads(n);
}

void register_threads(py::module_& m) {
  m.def("num_threads", &minirnn::num_threads, "Number of OpenMP threads the kernels use.");
  m.def("set_num_threads", &set_num_threads_capped, py::arg("n"),
        "Set the number of OpenMP threads the kernels use (n >= 1; above 4x the cores: 4x the cores, with a "
        "RuntimeWarning).");
  m.def("min_step_work", &minirnn::min_step_work,
        "Multiply-adds per thread of one step's recurrent GEMM below which a time loop uses fewer threads.");
  m.def(
      "set_min_step_work",
      [](int64_t macs) {
        if (macs < 0) throw py::value_error("set_min_step_work: expected macs >= 0, got " + std::to_string(macs));
        minirnn::set_min_step_work(macs);
      },
      py::arg("macs"),
      "Set min_step_work (0: every time loop uses num_threads() threads, as the tests of thread agreement need).");
  m.def("packed_gemm_kernel", &minirnn::packed_gemm_kernel,
        "The micro-kernel of the per-step products: 'avx512', 'avx2' or 'portable' (chosen by CPU).");
  m.def("packed_gemm_kernels", &minirnn::packed_gemm_kernels, "The micro-kernels this CPU can run, portable first.");
}

void register_scratch(py::module_& m) {
  m.def("cached_scratch_bytes", &minirnn::cached_scratch_bytes,
        "Bytes of kernel memory (temporaries and freed large results) kept for reuse by later calls.");
  m.def("scratch_bytes_in_use", &minirnn::scratch_bytes_in_use,
        "Bytes of kernel memory in use now: temporaries of running calls and live result arrays of 1 MB or more.");
  m.def("reset_scratch_peak", &minirnn::reset_scratch_peak,
        "The most kernel memory in use at once since the last reset (bytes); starts a new count from now.");
  m.def("scratch_cache_limit", &minirnn::scratch_cache_limit,
        "The most bytes of freed kernel memory kept for reuse (default 512 MiB).");
  m.def(
      "set_scratch_cache_limit",
      [](int64_t bytes) {
        if (bytes < 0)
          throw py::value_error("set_scratch_cache_limit: expected bytes >= 0, got " + std::to_string(bytes));
        minirnn::set_scratch_cache_limit(static_cast<size_t>(bytes));
      },
      py::arg("bytes"),
      "Keep at most `bytes` of freed kernel memory for reuse (0: keep none); frees cached blocks, "
      "oldest first, down to it.");
  m.def("release_cached_scratch", &minirnn::release_cached_scratch,
        "Free the temporary kernel memory kept for reuse; returns the bytes freed.");
}

void register_tape_ops(py::module_& m) {
  m.def("matmul", &matmul, py::arg("a"), py::arg("b"), py::kw_only(), py::arg("transpose_a") = false,
        py::arg("transpose_b") = false, doc::kMatmul);
  m.def("sigmoid", &sigmoid, py::arg("x"),
        "y = 1 / (1 + e^-x) elementwise, for a float32 or float64 array of any shape (a new array; "
        "the fused cells' activation, overflow-free, NaN propagates).");
}

void register_layers(py::module_& m) {
  register_saved_layer(m);
  m.def("workspace_size", &workspace_size, py::arg("mode"), py::arg("T"), py::arg("B"), py::arg("H"),
        "Elements in the workspace rnn_forward returns for these sizes.");
  m.def("rnn_forward", &rnn_forward, py::arg("mode"), py::arg("x"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"),
        py::arg("b_hh"), py::arg("h0"), py::arg("c0"), py::arg("lengths"), py::arg("need_workspace") = true,
        doc::kRnnForward);
  m.def("rnn_backward", &rnn_backward, py::arg("saved"), py::arg("dy"), py::arg("dh_n"), py::arg("dc_n"),
        py::arg("gate_grads") = false, py::arg("dh_steps") = py::none(), doc::kRnnBackward);
  m.def("lstm_proj_forward", &lstm_proj_forward, py::arg("x"), py::arg("w_ih"), py::arg("w_hh"), py::arg("w_hr"),
        py::arg("b_ih"), py::arg("b_hh"), py::arg("h0"), py::arg("c0"), py::arg("lengths"), doc::kLstmProjForward);
  m.def("lstm_proj_backward", &lstm_proj_backward, py::arg("saved"), py::arg("dy"), py::arg("dh_n"),
        py::arg("dc_n"), doc::kLstmProjBackward);
}

}  // namespace

}  // namespace minirnn::python

PYBIND11_MODULE(_C, m) {
  m.doc() = "minirnn fused RNN kernels (C++17, OpenMP, OpenBLAS). Layout and gate order are PyTorch's.";
  minirnn::init_blas_threads();
  minirnn::python::register_threads(m);
  minirnn::python::register_scratch(m);
  minirnn::python::register_tape_ops(m);
  minirnn::python::register_layers(m);
  minirnn::python::register_test_knobs(m);
}
