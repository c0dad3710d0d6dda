// test_knobs.cpp -- the module's functions only tests call (named with a leading underscore): they
// force a choice the kernels otherwise make by size or by CPU.
#include <pybind11/pybind11.h>

#include <stdexcept>
#include <string>

#include "packed_gemm.h"
#include "parallel.h"

namespace py = pybind11;

namespace minirnn::python {

namespace {

void set_step_sharing_by_name(const std::string& name) {
  if (name == "units") minirnn::set_step_sharing(StepSharing::units);
  else if (name == "rows") minirnn::set_step_sharing(StepSharing::rows);
  else if (name.empty()) minirnn::set_step_sharing(StepSharing::automatic);
  else throw py::value_error("_set_step_sharing: expected 'units', 'rows' or '', got '" + name + "'");
}

void set_packed_gemm_kernel_by_name(const std::string& name) {
  try {
    minirnn::set_packed_gemm_kernel(name);
  } catch (const std::invalid_argument& e) {
    throw py::value_error(e.what());
  }
}

}  // namespace

void register_test_knobs(py::module_& m) {
  m.def("_set_step_sharing", &set_step_sharing_by_name, py::arg("name"),
        "Tests only: make every time loop share its steps among threads by hidden units ('units') or by batch "
        "rows ('rows'; when there are at least as many rows as threads), or choose by size again ('').");
  m.def("_set_packed_gemm_kernel", &set_packed_gemm_kernel_by_name, py::arg("name"),
        "Tests only: force a micro-kernel by name ('' chooses by CPU again).");
}

}  // namespace minirnn::python
