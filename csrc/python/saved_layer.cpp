// saved_layer.cpp -- forward's saved state for backward (saved_layer.h).
#include "saved_layer.h"

#include <string>
#include <utility>

#include "docstrings.h"

namespace minirnn::python {

namespace {

const char* forward_name(bool projected) { return projected ? "lstm_proj_forward" : "rnn_forward"; }

}  // namespace

std::vector<py::array> SavedLayer::arrays() const {
  std::vector<py::array> held;
  for (const py::array* a : {&in.x, &in.w_ih, &in.w_hh, &in.w_hr, &in.b_ih, &in.b_hh, &in.h0, &in.c0, &workspace})
    if (*a) held.push_back(*a);
  return held;
}

int64_t SavedLayer::nbytes() const {
  int64_t total = 0;
  for (const py::array& a : arrays()) total += int64_t(a.nbytes());
  return total;
}

py::object save_layer(Inputs&& in, py::array workspace) {
  return py::cast(SavedLayer{std::move(in), std::move(workspace)});
}

const SavedLayer& saved_arg(py::handle saved, bool projected) {
  const std::string forward = forward_name(projected);
  if (!py::isinstance<SavedLayer>(saved))
    throw py::type_error("saved: expected the SavedLayer returned by " + forward +
                         (projected ? "" : " (need_workspace=True)") + ", got " +
                         std::string(py::str(py::type::handle_of(saved))));
  const SavedLayer& s = saved.cast<const SavedLayer&>();
  if (s.projected() != projected)
    throw py::value_error("saved: expected the SavedLayer returned by " + forward + ", got one returned by " +
                          forward_name(s.projected()));
  return s;
}

// benchmarks/ab_builds.py loads two builds of this module into one process, and may load one file
// twice under two names (a second init of the same library): module_local keeps two builds'
// classes apart (each accepts only its own SavedLayer), and a second init reuses its class.
void register_saved_layer(py::module_& m) {
  if (py::detail::get_type_info(typeid(SavedLayer))) {
    m.attr("SavedLayer") = py::type::of<SavedLayer>();
    return;
  }
  py::class_<SavedLayer>(m, "SavedLayer", py::module_local(), doc::kSavedLayer)
      .def_property_readonly("mode", [](const SavedLayer& s) { return s.in.mode_name; },
                             "The layer's mode ('lstm' for the projected LSTM).")
      .def_property_readonly("x", [](const SavedLayer& s) { return s.in.x; },
                             "The input (T, B, I) as the kernels read it (contiguous).")
      .def_property_readonly("h0", [](const SavedLayer& s) { return s.in.h0; },
                             "The initial state (B, H), or (B, P) for the projected LSTM.")
      .def_property_readonly("workspace", [](const SavedLayer& s) { return s.workspace; },
                             "The 1-D workspace forward wrote for backward.")
      .def_property_readonly(
          "arrays",
          [](const SavedLayer& s) {
            const std::vector<py::array> held = s.arrays();
            py::tuple t(held.size());
            for (size_t k = 0; k < held.size(); k++) t[k] = held[k];
            return t;
          },
          "The arrays it keeps: x, w_ih, w_hh, w_hr, b_ih, b_hh, h0, c0 (those present), the workspace.")
      .def_property_readonly("nbytes", &SavedLayer::nbytes,
                             "Bytes of the arrays it keeps: x, weights, biases, h0, c0 and the workspace.");
}

}  // namespace minirnn::python
