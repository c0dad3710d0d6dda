// bindings.cpp -- the Python module minirnn._C.
#include <pybind11/pybind11.h>

#include "parallel.h"

namespace py = pybind11;

PYBIND11_MODULE(_C, m) {
  m.doc() = "minirnn fused RNN kernels (C++17, OpenMP, OpenBLAS)";
  minirnn::init_blas_threads();

  m.def("num_threads", &minirnn::num_threads, "Number of OpenMP threads the kernels use.");
  m.def(
      "set_num_threads",
      [](int n) {
        if (n < 1) throw py::value_error("set_num_threads: expected n >= 1, got " + std::to_string(n));
        minirnn::set_num_threads(n);
      },
      py::arg("n"), "Set the number of OpenMP threads the kernels use (n >= 1).");
}
