// kernels.cpp -- the recurrent layers' calls of the Python module (kernels.h): the arguments
// checked (args.h), the results allocated (arrays.h), the kernel run without the GIL. Forward
// hands backward its checked arguments and workspace (saved_layer.h).
//
// Legend: T time steps, B batch, I input features, H hidden units, P proj_size, G gates (1, 4, 3).
// T = 0 and B = 0 give empty outputs with h_n = h0.
#include "kernels.h"

#include <utility>

#include "args.h"
#include "arrays.h"
#include "lstm_proj.h"
#include "rnn.h"
#include "saved_layer.h"
#include "without_gil.h"

namespace minirnn::python {

namespace {

// The kernels write every element of the workspace, so it is not zeroed here. keep_workspace
// false (inference): the smaller inference layout, in scratch memory freed on return, and None is
// returned for the saved state.
template <typename scalar_t>
py::tuple forward(Inputs&& in, bool keep_workspace) {
  const Sizes s = in.sz;
  const bool lstm = in.mode == Mode::lstm;
  const int64_t n_ws = workspace_layout(in.mode, s, /*for_backward=*/keep_workspace).total;
  py::array y = empty<scalar_t>({s.T, s.B, s.H});
  py::array h_n = empty<scalar_t>({s.B, s.H});
  py::array c_n = lstm ? py::array(empty<scalar_t>({s.B, s.H})) : no_array();
  py::array ws = keep_workspace ? py::array(empty<scalar_t>({n_ws})) : no_array();
  Scratch<scalar_t> scratch(keep_workspace ? 0 : n_ws);
  scalar_t* workspace = keep_workspace ? mut<scalar_t>(ws) : scratch.data();  // (n_ws)
  ForwardArgs<scalar_t> a{mut<scalar_t>(y),       mut<scalar_t>(h_n),     mut<scalar_t>(c_n),
                          workspace,              ptr<scalar_t>(in.x),    ptr<scalar_t>(in.w_ih),
                          ptr<scalar_t>(in.w_hh), ptr<scalar_t>(in.b_ih), ptr<scalar_t>(in.b_hh),
                          ptr<scalar_t>(in.h0),   ptr<scalar_t>(in.c0),   in.lengths_ptr(),
                          s,                      keep_workspace};
  run_without_gil(a, [&](const auto& b) { minirnn::rnn_forward(in.mode, b); });
  return py::make_tuple(y, h_n, or_none(c_n), keep_workspace ? save_layer(std::move(in), ws) : py::none());
}

// dh_steps: None, or a writable C-contiguous (T, B, H) array of x's dtype, written in place (so no
// copy may stand in for it).
py::array dh_steps_arg(const Inputs& in, py::handle dh_steps) {
  py::array steps = in.float_arg(dh_steps, "dh_steps");
  if (!steps) return steps;
  check_shape(steps, "dh_steps", "(T, B, H)", {in.sz.T, in.sz.B, in.sz.H});
  if (!steps.is(py::reinterpret_borrow<py::object>(dh_steps)) || !steps.writeable())
    throw py::value_error("dh_steps: expected a writable C-contiguous array of x's dtype (filled in place)");
  return steps;
}

// gate_grads: instead of dw_ih and dw_hh, the gate gradients dg_ih and dg_hh (T*B, G*H) they are
// products of (dg_hh None unless gru).
template <typename scalar_t>
py::tuple backward(const SavedLayer& saved, const Grads& g, bool gate_grads, py::array steps) {
  const Inputs& in = saved.in;
  const Sizes s = in.sz;
  const int64_t GH = in.G * s.H;
  const bool lstm = in.mode == Mode::lstm, bias = bool(in.b_ih), split_dgh = in.mode == Mode::gru;
  py::array dx = empty<scalar_t>({s.T, s.B, s.I});
  py::array dw_ih = gate_grads ? no_array() : py::array(empty<scalar_t>({GH, s.I}));
  py::array dw_hh = gate_grads ? no_array() : py::array(empty<scalar_t>({GH, s.H}));
  py::array dg_ih = gate_grads ? py::array(empty<scalar_t>({s.T * s.B, GH})) : no_array();
  py::array dg_hh = gate_grads && split_dgh ? py::array(empty<scalar_t>({s.T * s.B, GH})) : no_array();
  py::array db_ih = bias ? py::array(empty<scalar_t>({GH})) : no_array();
  py::array db_hh = bias ? py::array(empty<scalar_t>({GH})) : no_array();
  py::array dh0 = empty<scalar_t>({s.B, s.H});
  py::array dc0 = lstm ? py::array(empty<scalar_t>({s.B, s.H})) : no_array();
  BackwardArgs<scalar_t> a{mut<scalar_t>(dx),          mut<scalar_t>(dw_ih),    mut<scalar_t>(dw_hh),
                           mut<scalar_t>(db_ih),       mut<scalar_t>(db_hh),    mut<scalar_t>(dh0),
                           mut<scalar_t>(dc0),         ptr<scalar_t>(in.x),     ptr<scalar_t>(in.w_ih),
                           ptr<scalar_t>(in.w_hh),     ptr<scalar_t>(saved.workspace), ptr<scalar_t>(g.dy),
                           ptr<scalar_t>(g.dh_n),      ptr<scalar_t>(g.dc_n),   in.lengths_ptr(),
                           s,                          mut<scalar_t>(dg_ih),    mut<scalar_t>(dg_hh)};
  a.dh_steps = mut<scalar_t>(steps);
  run_without_gil(a, [&](const auto& b) { minirnn::rnn_backward(in.mode, b); });
  if (gate_grads) return py::make_tuple(dx, dg_ih, or_none(dg_hh), or_none(db_ih), or_none(db_hh), dh0, or_none(dc0));
  return py::make_tuple(dx, dw_ih, dw_hh, or_none(db_ih), or_none(db_hh), dh0, or_none(dc0));
}

ProjSizes proj_sizes(const Inputs& in) { return {in.sz.T, in.sz.B, in.sz.I, in.sz.H, in.P}; }

template <typename scalar_t>
py::tuple proj_forward(Inputs&& in) {
  const ProjSizes s = proj_sizes(in);
  py::array y = empty<scalar_t>({s.T, s.B, s.P});
  py::array h_n = empty<scalar_t>({s.B, s.P});
  py::array c_n = empty<scalar_t>({s.B, s.H});
  py::array ws = empty<scalar_t>({lstm_proj_workspace_layout(s).total});
  ProjForwardArgs<scalar_t> a{mut<scalar_t>(y),       mut<scalar_t>(h_n),     mut<scalar_t>(c_n),
                              mut<scalar_t>(ws),      ptr<scalar_t>(in.x),    ptr<scalar_t>(in.w_ih),
                              ptr<scalar_t>(in.w_hh), ptr<scalar_t>(in.w_hr), ptr<scalar_t>(in.b_ih),
                              ptr<scalar_t>(in.b_hh), ptr<scalar_t>(in.h0),   ptr<scalar_t>(in.c0),
                              in.lengths_ptr(),       s};
  run_without_gil(a, [&](const auto& b) { minirnn::lstm_proj_forward(b); });
  return py::make_tuple(y, h_n, c_n, save_layer(std::move(in), ws));
}

template <typename scalar_t>
py::tuple proj_backward(const SavedLayer& saved, const Grads& g) {
  const Inputs& in = saved.in;
  const ProjSizes s = proj_sizes(in);
  const bool bias = bool(in.b_ih);
  py::array dx = empty<scalar_t>({s.T, s.B, s.I});
  py::array dw_ih = empty<scalar_t>({4 * s.H, s.I});
  py::array dw_hh = empty<scalar_t>({4 * s.H, s.P});
  py::array dw_hr = empty<scalar_t>({s.P, s.H});
  py::array db_ih = bias ? py::array(empty<scalar_t>({4 * s.H})) : no_array();
  py::array db_hh = bias ? py::array(empty<scalar_t>({4 * s.H})) : no_array();
  py::array dh0 = empty<scalar_t>({s.B, s.P});
  py::array dc0 = empty<scalar_t>({s.B, s.H});
  ProjBackwardArgs<scalar_t> a{
      mut<scalar_t>(dx),           mut<scalar_t>(dw_ih),   mut<scalar_t>(dw_hh),   mut<scalar_t>(dw_hr),
      mut<scalar_t>(db_ih),        mut<scalar_t>(db_hh),   mut<scalar_t>(dh0),     mut<scalar_t>(dc0),
      ptr<scalar_t>(in.x),         ptr<scalar_t>(in.w_ih), ptr<scalar_t>(in.w_hh), ptr<scalar_t>(in.w_hr),
      ptr<scalar_t>(saved.workspace), ptr<scalar_t>(g.dy),    ptr<scalar_t>(g.dh_n),  ptr<scalar_t>(g.dc_n),
      in.lengths_ptr(),            s};
  run_without_gil(a, [&](const auto& b) { minirnn::lstm_proj_backward(b); });
  return py::make_tuple(dx, dw_ih, dw_hh, dw_hr, or_none(db_ih), or_none(db_hh), dh0, dc0);
}

}  // namespace

py::tuple rnn_forward(const std::string& mode, py::handle x, py::handle w_ih, py::handle w_hh, py::handle b_ih,
                      py::handle b_hh, py::handle h0, py::handle c0, py::handle lengths, bool need_workspace) {
  Inputs in = parse_inputs(mode, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths);
  return in.is_double ? forward<double>(std::move(in), need_workspace) : forward<float>(std::move(in), need_workspace);
}

py::tuple rnn_backward(py::handle saved, py::handle dy, py::handle dh_n, py::handle dc_n, bool gate_grads,
                       py::handle dh_steps) {
  const SavedLayer& sv = saved_arg(saved, /*projected=*/false);
  const Inputs& in = sv.in;
  const Grads g = parse_grads(in, dy, dh_n, dc_n);
  if (gate_grads && in.lengths)
    throw py::value_error("lengths: expected None when the gate gradients are returned, got an array");
  if (gate_grads && in.mode == Mode::gru_reset_before)  // its dW_hn is no product with h_prev
    throw py::value_error("gate_grads: expected False for mode 'gru_reset_before', got True");
  py::array steps = dh_steps_arg(in, dh_steps);
  return in.is_double ? backward<double>(sv, g, gate_grads, steps) : backward<float>(sv, g, gate_grads, steps);
}

py::tuple lstm_proj_forward(py::handle x, py::handle w_ih, py::handle w_hh, py::handle w_hr, py::handle b_ih,
                            py::handle b_hh, py::handle h0, py::handle c0, py::handle lengths) {
  if (w_hr.is_none()) throw py::value_error("w_hr: expected an array (P, H), got None");
  Inputs in = parse_inputs("lstm", x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, w_hr);
  return in.is_double ? proj_forward<double>(std::move(in)) : proj_forward<float>(std::move(in));
}

py::tuple lstm_proj_backward(py::handle saved, py::handle dy, py::handle dh_n, py::handle dc_n) {
  const SavedLayer& sv = saved_arg(saved, /*projected=*/true);
  const Grads g = parse_grads(sv.in, dy, dh_n, dc_n);
  return sv.in.is_double ? proj_backward<double>(sv, g) : proj_backward<float>(sv, g);
}

int64_t workspace_size(const std::string& mode, int64_t T, int64_t B, int64_t H) {
  Mode md;
  if (!parse_mode(mode, &md)) throw py::value_error("mode: unknown mode '" + mode + "'");
  return workspace_layout(md, Sizes{T, B, 0, H}).total;
}

}  // namespace minirnn::python
