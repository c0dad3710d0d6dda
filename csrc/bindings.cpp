// bindings.cpp -- the Python module minirnn._C: argument validation, then the kernels.
//
// Every argument is checked BEFORE any memory is touched; a bad one raises TypeError
// (wrong dtype) or ValueError (wrong rank / shape / value) naming the argument and
// saying "expected X, got Y". Non-contiguous (or byte-swapped) arrays are copied to
// contiguous native ones. T = 0 and B = 0 give empty outputs with h_n = h0.
// NaN in any input propagates as NaN into the outputs; nothing is checked for finiteness.
//
// Legend: T time steps, B batch, I input features, H hidden units, G gates (1, 1, 4, 3).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <omp.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "matmul.h"
#include "packed_gemm.h"
#include "parallel.h"
#include "pointwise.h"
#include "lstm_proj.h"
#include "rnn.h"
#include "scratch.h"

namespace py = pybind11;
using minirnn::Mode;
using minirnn::Sizes;

namespace {

// "(6, 5)", "(3,)" as numpy prints shapes. Plain strings, no <sstream>: on a 16-core Ubuntu 24.04
// machine (GCC 13, Python 3.12) whose build of this module listed no libstdc++ in ldd, every
// message built with a string stream crashed the interpreter (SIGSEGV) instead of raising.
std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t k = 0; k < shape.size(); k++) s += (k ? ", " : "") + std::to_string(shape[k]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

std::vector<int64_t> shape_of(const py::array& a) { return std::vector<int64_t>(a.shape(), a.shape() + a.ndim()); }

// An absent optional array (None): a null handle, false in a boolean test.
// (py::array() is NOT that: it is an empty float64 array.)
py::array no_array() { return py::reinterpret_steal<py::array>(py::handle()); }

// obj -> numpy array of any dtype (no copy when it already is one); None -> empty handle.
// numpy writes a native byte order as '=' (or '|'); '<' or '>' means byte-swapped. The kernels read
// raw memory, so a byte-swapped array is converted to native order. (No attribute lookup by a fresh
// name string here: CPython's type cache would keep each one alive.)
py::array native_byte_order(py::array a) {
  const char order = a.dtype().byteorder();
  if (order == '<' || order == '>') return a.attr("astype")(a.dtype().attr("newbyteorder")("="));
  return a;
}

py::array as_array(py::handle obj, const std::string& name) {
  if (obj.is_none()) return no_array();
  // An ndarray needs no conversion: skipping ensure's dtype and shape discovery saves a
  // microsecond a call where the tape calls a kernel per time step.
  if (py::isinstance<py::array>(obj)) return native_byte_order(py::reinterpret_borrow<py::array>(obj));
  py::array a = py::array::ensure(obj);
  if (!a) throw py::type_error(name + ": expected a numpy array, got " + std::string(py::str(py::type::handle_of(obj))));
  return native_byte_order(a);
}

// `a` itself when it is C-contiguous (ensure's conversion costs a microsecond even when there is
// nothing to convert, and the tape calls a kernel per time step), else a contiguous copy of it.
py::array c_contiguous(const py::array& a) {
  return (a.flags() & py::array::c_style) ? a : py::array::ensure(a, py::array::c_style);
}

// The dtype number of the float32 or float64 array argument that fixes a call's dtype; TypeError
// naming it for any other dtype.
int float_dtype_num(const py::array& a, const std::string& name) {
  const int num = a.dtype().num();
  if (num != py::dtype::num_of<float>() && num != py::dtype::num_of<double>())
    throw py::type_error(name + ": expected dtype float32 or float64, got " + std::string(py::str(a.dtype())));
  return num;
}

void check_shape(const py::array& a, const std::string& name, const std::string& letters,
                 const std::vector<int64_t>& expected) {
  if (shape_of(a) != expected)
    throw py::value_error(name + ": expected " + letters + " = " + shape_str(expected) + ", got " +
                          shape_str(shape_of(a)));
}

// The arguments shared by rnn_forward and rnn_backward, validated.
struct Inputs {
  Mode mode = Mode::rnn_tanh;
  int64_t G = 1;
  Sizes sz;
  int64_t P = 0;  // proj_size (the width of h) when w_hr is given, else 0 (h has H features)
  bool is_double;
  py::array x, w_ih, w_hh, b_ih, b_hh, h0, c0;  // contiguous, x's dtype; b_*, c0 may be null (no_array)
  py::array w_hr = no_array();                  // (P, H) the projected LSTM's, else null
  py::array lengths = no_array();              // int64 (B,), null handle when None
  std::string mode_name;

  // A float array argument that must have x's dtype; converted to contiguous.
  py::array float_arg(py::handle obj, const std::string& name) const {
    py::array a = as_array(obj, name);
    if (!a) return a;
    const int want = is_double ? py::dtype::num_of<double>() : py::dtype::num_of<float>();
    if (a.dtype().num() != want)
      throw py::type_error(name + ": expected dtype " + (is_double ? "float64" : "float32") +
                           " (the dtype of x), got " + std::string(py::str(a.dtype())));
    return c_contiguous(a);
  }
};

// w_hr: None, or (lstm only) the projection (P, H) of a projected LSTM: then w_hh is (4H, P) and h0 (B, P).
Inputs parse_inputs(const std::string& mode, py::handle x, py::handle w_ih, py::handle w_hh, py::handle b_ih,
                    py::handle b_hh, py::handle h0, py::handle c0, py::handle lengths,
                    py::handle w_hr = py::none()) {
  Inputs in;
  in.mode_name = mode;
  if (!minirnn::parse_mode(mode, &in.mode))
    throw py::value_error("mode: expected one of 'rnn_tanh', 'rnn_relu', 'rnn_sigmoid', 'lstm', 'gru', 'gru_reset_before', got '" + mode + "'");
  in.G = minirnn::num_gates(in.mode);
  const bool lstm = in.mode == Mode::lstm;

  py::array xa = as_array(x, "x");
  if (!xa) throw py::type_error("x: expected a float32 or float64 array (T, B, I), got None");
  in.is_double = float_dtype_num(xa, "x") == py::dtype::num_of<double>();
  if (xa.ndim() != 3)
    throw py::value_error("x: expected a 3-D array (T, B, I), got shape " + shape_str(shape_of(xa)));
  in.x = c_contiguous(xa);
  const int64_t T = xa.shape(0), B = xa.shape(1), I = xa.shape(2);

  in.w_hr = in.float_arg(w_hr, "w_hr");
  if (in.w_hr && !lstm) throw py::value_error("w_hr: expected None for mode '" + mode + "', got an array");
  if (in.w_hr && (in.w_hr.ndim() != 2 || in.w_hr.shape(0) < 1 || in.w_hr.shape(0) >= in.w_hr.shape(1)))
    throw py::value_error("w_hr: expected a 2-D array (P, H) with 0 < P < H, got shape " +
                          shape_str(shape_of(in.w_hr)));
  const char* h_letter = in.w_hr ? "P" : "H";  // the width of the state h
  in.w_hh = in.float_arg(w_hh, "w_hh");
  if (!in.w_hh) throw py::value_error(std::string("w_hh: expected an array (G*H, ") + h_letter + "), got None");
  if (in.w_hh.ndim() != 2)
    throw py::value_error(std::string("w_hh: expected a 2-D array (G*H, ") + h_letter + "), got shape " +
                          shape_str(shape_of(in.w_hh)));
  const int64_t H = in.w_hr ? in.w_hr.shape(1) : in.w_hh.shape(1), G = in.G;
  const int64_t R = in.w_hr ? in.w_hr.shape(0) : H;  // the width of h
  in.P = in.w_hr ? R : 0;
  const std::string gh = std::string("(G*H, ") + h_letter + ") with G = " + std::to_string(G) + " for mode '" + mode + "'";
  check_shape(in.w_hh, "w_hh", gh, {G * H, R});
  in.w_ih = in.float_arg(w_ih, "w_ih");
  if (!in.w_ih) throw py::value_error("w_ih: expected an array (G*H, I), got None");
  check_shape(in.w_ih, "w_ih", "(G*H, I)", {G * H, I});

  in.b_ih = in.float_arg(b_ih, "b_ih");
  in.b_hh = in.float_arg(b_hh, "b_hh");
  if (bool(in.b_ih) != bool(in.b_hh))
    throw py::value_error(std::string("b_ih, b_hh: expected both arrays or both None, got ") +
                          (in.b_ih ? "b_hh=None" : "b_ih=None"));
  if (in.b_ih) {
    check_shape(in.b_ih, "b_ih", "(G*H,)", {G * H});
    check_shape(in.b_hh, "b_hh", "(G*H,)", {G * H});
  }

  in.h0 = in.float_arg(h0, "h0");
  if (!in.h0) throw py::value_error(std::string("h0: expected an array (B, ") + h_letter + "), got None");
  check_shape(in.h0, "h0", std::string("(B, ") + h_letter + ")", {B, R});
  in.c0 = in.float_arg(c0, "c0");
  if (lstm && !in.c0) throw py::value_error("c0: expected an array (B, H) for mode 'lstm', got None");
  if (!lstm && in.c0) throw py::value_error("c0: expected None for mode '" + mode + "', got an array");
  if (in.c0) check_shape(in.c0, "c0", "(B, H)", {B, H});

  if (!lengths.is_none()) {
    py::array la = as_array(lengths, "lengths");
    const char kind = la.dtype().kind();
    if (kind != 'i' && kind != 'u')
      throw py::type_error("lengths: expected an integer array (B,), got dtype " + std::string(py::str(la.dtype())));
    check_shape(la, "lengths", "(B,)", {B});
    if (B > 0) {
      // Compare in numpy's exact integer arithmetic before any cast (uint64 included).
      py::module_ np = py::module_::import("numpy");
      py::array bad = np.attr("flatnonzero")(np.attr("logical_or")(la.attr("__lt__")(0), la.attr("__gt__")(T)));
      if (bad.size() > 0) {
        const py::object idx = bad.attr("__getitem__")(0);
        throw py::value_error("lengths: expected values in [0, T] = [0, " + std::to_string(T) + "], got " +
                              std::string(py::str(la.attr("__getitem__")(idx))) + " at index " +
                              std::string(py::str(idx)));
      }
    }
    in.lengths = py::array_t<int64_t, py::array::c_style>::ensure(la.attr("astype")(py::dtype::of<int64_t>()));
  }

  // BLAS takes 32-bit sizes and leading dimensions.
  if (T * B > INT_MAX || G * H > INT_MAX || I > INT_MAX)
    throw py::value_error("x, w_ih: sizes too large for 32-bit BLAS: T*B = " + std::to_string(T * B) +
                          ", G*H = " + std::to_string(G * H) + ", I = " + std::to_string(I));
  in.sz = Sizes{T, B, I, H};
  return in;
}

template <typename scalar_t>
const scalar_t* ptr(const py::array& a) { return a ? static_cast<const scalar_t*>(a.data()) : nullptr; }
template <typename scalar_t>
scalar_t* mut(py::array& a) { return a ? static_cast<scalar_t*>(a.mutable_data()) : nullptr; }

// An uninitialised array. One of 1 MB or more lives in Scratch memory (scratch.h), given back to
// the cache when numpy frees the array: a training step's workspace, y, dx and matmul products
// are reused from the previous step's instead of faulting in fresh pages.
template <typename scalar_t>
py::array_t<scalar_t> empty(const std::vector<int64_t>& shape) {
  const std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (n * int64_t(sizeof(scalar_t)) < int64_t(minirnn::kMinCachedBytes)) return py::array_t<scalar_t>(dims);
  auto block = std::make_unique<minirnn::Scratch<scalar_t>>(n);
  scalar_t* data = block->data();
  py::capsule owner(block.get(), [](void* p) { delete static_cast<minirnn::Scratch<scalar_t>*>(p); });
  block.release();  // the capsule owns it now
  return py::array_t<scalar_t>(dims, data, owner);
}

const int64_t* lengths_ptr(const Inputs& in) { return in.lengths ? static_cast<const int64_t*>(in.lengths.data()) : nullptr; }

// Asked by a kernel's time loop (from this, the calling thread) about every 50 ms: whether a
// signal handler raised (Ctrl-C: KeyboardInterrupt). The loops run without the GIL, so Python
// would otherwise act on the signal only when a many-second call returns. The exception stays set
// for raise_if_interrupted.
struct PythonInterrupt {
  minirnn::Interrupt poll{&PythonInterrupt::requested, this};
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

// The kernels write every element of the workspace, so it is not zeroed here. keep_workspace
// false (inference): the smaller inference layout, in scratch memory freed on return, and None is
// returned instead.
template <typename scalar_t>
py::tuple forward(const Inputs& in, bool keep_workspace) {
  const Sizes s = in.sz;
  const bool lstm = in.mode == Mode::lstm;
  const int64_t n_ws = minirnn::workspace_layout(in.mode, s, /*for_backward=*/keep_workspace).total;
  py::array y = empty<scalar_t>({s.T, s.B, s.H});
  py::array h_n = empty<scalar_t>({s.B, s.H});
  py::array c_n = lstm ? py::array(empty<scalar_t>({s.B, s.H})) : no_array();
  py::array ws = keep_workspace ? py::array(empty<scalar_t>({n_ws})) : no_array();
  minirnn::Scratch<scalar_t> scratch(keep_workspace ? 0 : n_ws);
  scalar_t* workspace = keep_workspace ? mut<scalar_t>(ws) : scratch.data();  // (n_ws)
  minirnn::ForwardArgs<scalar_t> a{mut<scalar_t>(y),         mut<scalar_t>(h_n),      mut<scalar_t>(c_n),
                                   workspace,                ptr<scalar_t>(in.x),     ptr<scalar_t>(in.w_ih),
                                   ptr<scalar_t>(in.w_hh),   ptr<scalar_t>(in.b_ih),  ptr<scalar_t>(in.b_hh),
                                   ptr<scalar_t>(in.h0),     ptr<scalar_t>(in.c0),    lengths_ptr(in),
                                   s,                        keep_workspace};
  run_without_gil(a, [&](const auto& b) { minirnn::rnn_forward(in.mode, b); });
  return py::make_tuple(y, h_n, lstm ? py::object(c_n) : py::none(), keep_workspace ? py::object(ws) : py::none());
}

// gate_grads: instead of dw_ih and dw_hh, return the gate gradients dg_ih and dg_hh (T*B, G*H) they
// are products of (dg_hh None unless gru): (dx, dg_ih, dg_hh, db_ih, db_hh, dh0, dc0).
template <typename scalar_t>
py::tuple backward(const Inputs& in, py::handle y, py::handle workspace, py::handle dy, py::handle dh_n,
                   py::handle dc_n, bool gate_grads, py::handle dh_steps) {
  const Sizes s = in.sz;
  const bool lstm = in.mode == Mode::lstm, bias = bool(in.b_ih);
  py::array ya = in.float_arg(y, "y");  // not needed by the kernels; checked when given
  if (ya) check_shape(ya, "y", "(T, B, H)", {s.T, s.B, s.H});
  py::array ws = in.float_arg(workspace, "workspace");
  const int64_t n_ws = minirnn::workspace_layout(in.mode, s).total;
  if (!ws) throw py::value_error("workspace: expected the array returned by rnn_forward, got None");
  check_shape(ws, "workspace", "(size from rnn_forward with the same arguments,)", {n_ws});
  py::array dya = in.float_arg(dy, "dy");
  if (dya) check_shape(dya, "dy", "(T, B, H)", {s.T, s.B, s.H});
  py::array dhn = in.float_arg(dh_n, "dh_n");
  if (dhn) check_shape(dhn, "dh_n", "(B, H)", {s.B, s.H});
  py::array dcn = in.float_arg(dc_n, "dc_n");
  if (dcn && !lstm) throw py::value_error("dc_n: expected None for mode '" + in.mode_name + "', got an array");
  if (dcn) check_shape(dcn, "dc_n", "(B, H)", {s.B, s.H});

  if (gate_grads && in.lengths)
    throw py::value_error("lengths: expected None when the gate gradients are returned, got an array");
  if (gate_grads && in.mode == Mode::gru_reset_before)  // its dW_hn is no product with h_prev
    throw py::value_error("gate_grads: expected False for mode 'gru_reset_before', got True");
  const bool split_dgh = in.mode == Mode::gru;
  py::array dx = empty<scalar_t>({s.T, s.B, s.I});
  py::array dw_ih = gate_grads ? no_array() : py::array(empty<scalar_t>({in.G * s.H, s.I}));
  py::array dw_hh = gate_grads ? no_array() : py::array(empty<scalar_t>({in.G * s.H, s.H}));
  py::array dg_ih = gate_grads ? py::array(empty<scalar_t>({s.T * s.B, in.G * s.H})) : no_array();
  py::array dg_hh = gate_grads && split_dgh ? py::array(empty<scalar_t>({s.T * s.B, in.G * s.H})) : no_array();
  py::array db_ih = bias ? py::array(empty<scalar_t>({in.G * s.H})) : no_array();
  py::array db_hh = bias ? py::array(empty<scalar_t>({in.G * s.H})) : no_array();
  py::array dh0 = empty<scalar_t>({s.B, s.H});
  py::array dc0 = lstm ? py::array(empty<scalar_t>({s.B, s.H})) : no_array();
  minirnn::BackwardArgs<scalar_t> a{mut<scalar_t>(dx),     mut<scalar_t>(dw_ih),  mut<scalar_t>(dw_hh),
                                    mut<scalar_t>(db_ih),  mut<scalar_t>(db_hh),  mut<scalar_t>(dh0),
                                    mut<scalar_t>(dc0),    ptr<scalar_t>(in.x),   ptr<scalar_t>(in.w_ih),
                                    ptr<scalar_t>(in.w_hh), ptr<scalar_t>(ws),    ptr<scalar_t>(dya),
                                    ptr<scalar_t>(dhn),    ptr<scalar_t>(dcn),    lengths_ptr(in),
                                    s,                     mut<scalar_t>(dg_ih),  mut<scalar_t>(dg_hh)};
  py::array steps = in.float_arg(dh_steps, "dh_steps");  // written in place: no copy may stand in for it
  if (steps) {
    check_shape(steps, "dh_steps", "(T, B, H)", {s.T, s.B, s.H});
    if (!steps.is(py::reinterpret_borrow<py::object>(dh_steps)) || !steps.writeable())
      throw py::value_error("dh_steps: expected a writable C-contiguous array of x's dtype (filled in place)");
    a.dh_steps = mut<scalar_t>(steps);
  }
  run_without_gil(a, [&](const auto& b) { minirnn::rnn_backward(in.mode, b); });
  auto or_none = [](const py::array& arr) { return arr ? py::object(arr) : py::object(py::none()); };
  if (gate_grads) return py::make_tuple(dx, dg_ih, or_none(dg_hh), or_none(db_ih), or_none(db_hh), dh0, or_none(dc0));
  return py::make_tuple(dx, dw_ih, dw_hh, or_none(db_ih), or_none(db_hh), dh0, or_none(dc0));
}

minirnn::ProjSizes proj_sizes(const Inputs& in) { return {in.sz.T, in.sz.B, in.sz.I, in.sz.H, in.P}; }

// The projected LSTM (lstm_proj.h): (y (T, B, P), h_n (B, P), c_n (B, H), workspace).
template <typename scalar_t>
py::tuple proj_forward(const Inputs& in) {
  const minirnn::ProjSizes s = proj_sizes(in);
  py::array y = empty<scalar_t>({s.T, s.B, s.P});
  py::array h_n = empty<scalar_t>({s.B, s.P});
  py::array c_n = empty<scalar_t>({s.B, s.H});
  py::array ws = empty<scalar_t>({minirnn::lstm_proj_workspace_layout(s).total});
  minirnn::ProjForwardArgs<scalar_t> a{mut<scalar_t>(y),       mut<scalar_t>(h_n),     mut<scalar_t>(c_n),
                                       mut<scalar_t>(ws),      ptr<scalar_t>(in.x),    ptr<scalar_t>(in.w_ih),
                                       ptr<scalar_t>(in.w_hh), ptr<scalar_t>(in.w_hr), ptr<scalar_t>(in.b_ih),
                                       ptr<scalar_t>(in.b_hh), ptr<scalar_t>(in.h0),   ptr<scalar_t>(in.c0),
                                       lengths_ptr(in),        s};
  run_without_gil(a, [&](const auto& b) { minirnn::lstm_proj_forward(b); });
  return py::make_tuple(y, h_n, c_n, ws);
}

// (dx, dw_ih, dw_hh, dw_hr, db_ih, db_hh, dh0, dc0) of the projected LSTM; db_* None without bias.
template <typename scalar_t>
py::tuple proj_backward(const Inputs& in, py::handle workspace, py::handle dy, py::handle dh_n, py::handle dc_n) {
  const minirnn::ProjSizes s = proj_sizes(in);
  const bool bias = bool(in.b_ih);
  py::array ws = in.float_arg(workspace, "workspace");
  if (!ws) throw py::value_error("workspace: expected the array returned by lstm_proj_forward, got None");
  check_shape(ws, "workspace", "(size from lstm_proj_forward with the same arguments,)",
              {minirnn::lstm_proj_workspace_layout(s).total});
  py::array dya = in.float_arg(dy, "dy");
  if (dya) check_shape(dya, "dy", "(T, B, P)", {s.T, s.B, s.P});
  py::array dhn = in.float_arg(dh_n, "dh_n");
  if (dhn) check_shape(dhn, "dh_n", "(B, P)", {s.B, s.P});
  py::array dcn = in.float_arg(dc_n, "dc_n");
  if (dcn) check_shape(dcn, "dc_n", "(B, H)", {s.B, s.H});
  py::array dx = empty<scalar_t>({s.T, s.B, s.I});
  py::array dw_ih = empty<scalar_t>({4 * s.H, s.I});
  py::array dw_hh = empty<scalar_t>({4 * s.H, s.P});
  py::array dw_hr = empty<scalar_t>({s.P, s.H});
  py::array db_ih = bias ? py::array(empty<scalar_t>({4 * s.H})) : no_array();
  py::array db_hh = bias ? py::array(empty<scalar_t>({4 * s.H})) : no_array();
  py::array dh0 = empty<scalar_t>({s.B, s.P});
  py::array dc0 = empty<scalar_t>({s.B, s.H});
  minirnn::ProjBackwardArgs<scalar_t> a{
      mut<scalar_t>(dx),      mut<scalar_t>(dw_ih),   mut<scalar_t>(dw_hh),   mut<scalar_t>(dw_hr),
      mut<scalar_t>(db_ih),   mut<scalar_t>(db_hh),   mut<scalar_t>(dh0),     mut<scalar_t>(dc0),
      ptr<scalar_t>(in.x),    ptr<scalar_t>(in.w_ih), ptr<scalar_t>(in.w_hh), ptr<scalar_t>(in.w_hr),
      ptr<scalar_t>(ws),      ptr<scalar_t>(dya),     ptr<scalar_t>(dhn),     ptr<scalar_t>(dcn),
      lengths_ptr(in),        s};
  run_without_gil(a, [&](const auto& b) { minirnn::lstm_proj_backward(b); });
  auto or_none = [](const py::array& arr) { return arr ? py::object(arr) : py::object(py::none()); };
  return py::make_tuple(dx, dw_ih, dw_hh, dw_hr, or_none(db_ih), or_none(db_hh), dh0, dc0);
}

// A 2-D operand of matmul as BLAS reads it: a C-contiguous array, its leading dimension,
// and whether BLAS transposes it. An F-contiguous array (a transpose view) is read as
// its C-contiguous transpose with the flag flipped, so it is never copied.
struct Operand {
  py::array arr;
  minirnn::Trans t;
  int64_t ld;
};

Operand matmul_operand(const py::array& a, bool transpose) {
  const bool flip = !(a.flags() & py::array::c_style) && (a.flags() & py::array::f_style);
  // `a` came through as_array, so it is already in native byte order.
  const py::array c = flip ? py::array(a.attr("T")) : c_contiguous(a);
  const bool t = transpose != flip;
  return {c, t ? minirnn::Trans::yes : minirnn::Trans::no, std::max<int64_t>(1, c.shape(1))};
}

template <typename T>
py::array matmul_typed(const Operand& a, const Operand& b, int64_t M, int64_t N, int64_t K) {
  py::array_t<T> out = empty<T>({M, N});
  {
    py::gil_scoped_release release;
    minirnn::matmul<T>(a.t, b.t, M, N, K, static_cast<const T*>(a.arr.data()), a.ld,
                       static_cast<const T*>(b.arr.data()), b.ld, out.mutable_data());
  }
  return out;
}

py::array matmul(py::handle a_obj, py::handle b_obj, bool transpose_a, bool transpose_b) {
  py::array a = as_array(a_obj, "a"), b = as_array(b_obj, "b");
  if (!a) throw py::type_error("a: expected a float32 or float64 array, got None");
  if (!b) throw py::type_error("b: expected a float32 or float64 array, got None");
  const int num = float_dtype_num(a, "a");
  if (b.dtype().num() != num)
    throw py::type_error("b: expected dtype " + std::string(py::str(a.dtype())) + " (the dtype of a), got " +
                         std::string(py::str(b.dtype())));
  if (a.ndim() != 2) throw py::value_error("a: expected a 2-D array, got shape " + shape_str(shape_of(a)));
  if (b.ndim() != 2) throw py::value_error("b: expected a 2-D array, got shape " + shape_str(shape_of(b)));
  const int64_t M = a.shape(transpose_a ? 1 : 0), K = a.shape(transpose_a ? 0 : 1);
  const int64_t Kb = b.shape(transpose_b ? 1 : 0), N = b.shape(transpose_b ? 0 : 1);
  if (Kb != K)
    throw py::value_error("b: expected " + std::string(transpose_b ? "b.shape[1]" : "b.shape[0]") +
                          " == K = " + std::to_string(K) + " (a's " + (transpose_a ? "rows" : "columns") +
                          "), got shape " + shape_str(shape_of(b)));
  if (M > INT_MAX || N > INT_MAX || K > INT_MAX)
    throw py::value_error("a, b: sizes too large for 32-bit BLAS: M = " + std::to_string(M) + ", N = " +
                          std::to_string(N) + ", K = " + std::to_string(K));
  const Operand oa = matmul_operand(a, transpose_a), ob = matmul_operand(b, transpose_b);
  return num == py::dtype::num_of<double>() ? matmul_typed<double>(oa, ob, M, N, K)
                                            : matmul_typed<float>(oa, ob, M, N, K);
}

template <typename T>
py::array sigmoid_typed(const py::array& x) {
  const py::array xc = c_contiguous(x);
  py::array_t<T> y = empty<T>(shape_of(xc));
  {
    py::gil_scoped_release release;
    minirnn::sigmoid<T>(static_cast<const T*>(xc.data()), y.mutable_data(), xc.size());
  }
  return y;
}

py::array sigmoid(py::handle x_obj) {
  py::array x = as_array(x_obj, "x");
  if (!x) throw py::type_error("x: expected a float32 or float64 array, got None");
  return float_dtype_num(x, "x") == py::dtype::num_of<double>() ? sigmoid_typed<double>(x) : sigmoid_typed<float>(x);
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "minirnn fused RNN kernels (C++17, OpenMP, OpenBLAS). Layout and gate order are PyTorch's.";
  minirnn::init_blas_threads();

  m.def("num_threads", &minirnn::num_threads, "Number of OpenMP threads the kernels use.");
  m.def(
      "set_num_threads",
      [](int n) {
        if (n < 1) throw py::value_error("set_num_threads: expected n >= 1, got " + std::to_string(n));
        // More threads than cores only wait on each other at every time step: capped at 4x the
        // cores, with a warning.
        const int cap = 4 * std::max(1, omp_get_num_procs());
        if (n > cap) {
          const std::string msg = "set_num_threads: " + std::to_string(n) + " threads on " +
                                  std::to_string(omp_get_num_procs()) + " cores; using " + std::to_string(cap) +
                                  " (4x the cores)";
          if (PyErr_WarnEx(PyExc_RuntimeWarning, msg.c_str(), 1) != 0) throw py::error_already_set();
          n = cap;
        }
        minirnn::set_num_threads(n);
      },
      py::arg("n"), "Set the number of OpenMP threads the kernels use (n >= 1; above 4x the cores: 4x the cores, with a RuntimeWarning).");

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

  m.def(
      "_set_step_sharing",
      [](const std::string& name) {
        if (name == "units") minirnn::set_step_sharing(minirnn::StepSharing::units);
        else if (name == "rows") minirnn::set_step_sharing(minirnn::StepSharing::rows);
        else if (name.empty()) minirnn::set_step_sharing(minirnn::StepSharing::automatic);
        else throw py::value_error("_set_step_sharing: expected 'units', 'rows' or '', got '" + name + "'");
      },
      py::arg("name"),
      "Tests only: make every time loop share its steps among threads by hidden units ('units') or by batch "
      "rows ('rows'; when there are at least as many rows as threads), or choose by size again ('').");
  m.def("packed_gemm_kernel", &minirnn::packed_gemm_kernel,
        "The micro-kernel of the per-step products: 'avx512', 'avx2' or 'portable' (chosen by CPU).");
  m.def("packed_gemm_kernels", &minirnn::packed_gemm_kernels,
        "The micro-kernels this CPU can run, portable first.");
  m.def(
      "_set_packed_gemm_kernel",
      [](const std::string& name) {
        try {
          minirnn::set_packed_gemm_kernel(name);
        } catch (const std::invalid_argument& e) {
          throw py::value_error(e.what());
        }
      },
      py::arg("name"), "Tests only: force a micro-kernel by name ('' chooses by CPU again).");
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

  m.def("matmul", &matmul, py::arg("a"), py::arg("b"), py::kw_only(), py::arg("transpose_a") = false,
        py::arg("transpose_b") = false,
        R"doc(C (M, N) = op(a) @ op(b) on the kernels' OpenMP team (single-threaded BLAS per block of C).

a (M, K), or (K, M) with transpose_a; b (K, N), or (N, K) with transpose_b; both float32 or both
float64, any strides (transpose views are read without a copy). K = 0 gives zeros. One thread when
the product is small (as the kernels' big GEMMs).)doc");

  m.def("sigmoid", &sigmoid, py::arg("x"),
        "y = 1 / (1 + e^-x) elementwise, for a float32 or float64 array of any shape (a new array; "
        "the fused cells' activation, overflow-free, NaN propagates).");

  m.def(
      "workspace_size",
      [](const std::string& mode, int64_t T, int64_t B, int64_t H) {
        Mode md;
        if (!minirnn::parse_mode(mode, &md)) throw py::value_error("mode: unknown mode '" + mode + "'");
        return minirnn::workspace_layout(md, Sizes{T, B, 0, H}).total;
      },
      py::arg("mode"), py::arg("T"), py::arg("B"), py::arg("H"),
      "Elements in the workspace rnn_forward returns for these sizes.");

  m.def(
      "rnn_forward",
      [](const std::string& mode, py::handle x, py::handle w_ih, py::handle w_hh, py::handle b_ih, py::handle b_hh,
         py::handle h0, py::handle c0, py::handle lengths, bool need_workspace) {
        const Inputs in = parse_inputs(mode, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths);
        return in.is_double ? forward<double>(in, need_workspace) : forward<float>(in, need_workspace);
      },
      py::arg("mode"), py::arg("x"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"),
      py::arg("h0"), py::arg("c0"), py::arg("lengths"), py::arg("need_workspace") = true,
      R"doc(Fused forward pass of one single-direction recurrent layer over all T steps.

mode: 'rnn_tanh' | 'rnn_relu' | 'rnn_sigmoid' | 'lstm' | 'gru' | 'gru_reset_before' (G = 1, 1, 1, 4, 3, 3
gates; PyTorch's gate order; gru_reset_before: n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)).
x (T, B, I); w_ih (G*H, I); w_hh (G*H, H); b_ih, b_hh (G*H,) or both None; h0 (B, H);
c0 (B, H) for 'lstm', else None; lengths None or integer (B,) in [0, T], any order.
All float arrays float32 or all float64.

Returns (y (T, B, H), h_n (B, H), c_n (B, H) or None, workspace (1-D, for rnn_backward)).
need_workspace=False (inference): workspace is None (not kept), and the kernel keeps
two steps of states instead of every step's and the gates of a chunk of C = min(T, ceil(2048 / B))
steps (LSTM: (4*C + 5)*B*H elements, not 7*T*B*H + 2*B*H).
y[t, b] = 0 for t >= lengths[b]; h_n[b] is the state after step lengths[b] - 1 (h0 if 0).
NaN inputs propagate as NaN.)doc");

  m.def(
      "rnn_backward",
      [](const std::string& mode, py::handle x, py::handle w_ih, py::handle w_hh, py::handle b_ih, py::handle b_hh,
         py::handle h0, py::handle c0, py::handle lengths, py::handle y, py::handle workspace, py::handle dy,
         py::handle dh_n, py::handle dc_n, bool gate_grads, py::handle dh_steps) {
        const Inputs in = parse_inputs(mode, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths);
        return in.is_double ? backward<double>(in, y, workspace, dy, dh_n, dc_n, gate_grads, dh_steps)
                            : backward<float>(in, y, workspace, dy, dh_n, dc_n, gate_grads, dh_steps);
      },
      py::arg("mode"), py::arg("x"), py::arg("w_ih"), py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"),
      py::arg("h0"), py::arg("c0"), py::arg("lengths"), py::arg("y"), py::arg("workspace"), py::arg("dy"),
      py::arg("dh_n"), py::arg("dc_n"), py::arg("gate_grads") = false, py::arg("dh_steps") = py::none(),
      R"doc(Fused backward-through-time of rnn_forward (same first nine arguments).

y: the forward output (checked, not used; may be None); workspace: from rnn_forward;
dy (T, B, H), dh_n (B, H), dc_n (B, H, lstm only): gradients of the loss, each may be None (zero).
dy at padded positions (t >= lengths[b]) is ignored.

Returns (dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0); db_* are None without bias, dc0 None unless lstm.
gate_grads=True (lengths must be None): dw_ih and dw_hh are not computed; in their
places come the gate gradients dg_ih and dg_hh (T*B, G*H), with dw_ih = dg_ih^T x and
dw_hh = dg_hh^T h_prev (dg_hh is None, i.e. equal to dg_ih, unless mode is 'gru'), so a caller
that sums weight gradients over many calls can do it in one GEMM. Not for 'gru_reset_before'.
dh_steps: None, or a writable C-contiguous (T, B, H) array of x's dtype, filled in place with every
step's dL/dh_t (dy_t included; zero where t >= lengths[b]).)doc");

  m.def(
      "lstm_proj_forward",
      [](py::handle x, py::handle w_ih, py::handle w_hh, py::handle w_hr, py::handle b_ih, py::handle b_hh,
         py::handle h0, py::handle c0, py::handle lengths) {
        if (w_hr.is_none()) throw py::value_error("w_hr: expected an array (P, H), got None");
        const Inputs in = parse_inputs("lstm", x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, w_hr);
        return in.is_double ? proj_forward<double>(in) : proj_forward<float>(in);
      },
      py::arg("x"), py::arg("w_ih"), py::arg("w_hh"), py::arg("w_hr"), py::arg("b_ih"), py::arg("b_hh"),
      py::arg("h0"), py::arg("c0"), py::arg("lengths"),
      R"doc(Fused forward pass of one single-direction projected LSTM layer (PyTorch's proj_size = P).

m_t = o * tanh(c_t) as the LSTM's h_t, then h_t = m_t w_hr^T. x (T, B, I); w_ih (4H, I); w_hh (4H, P);
w_hr (P, H) with 0 < P < H; b_ih, b_hh (4H,) or both None; h0 (B, P); c0 (B, H); lengths as rnn_forward.
Returns (y (T, B, P), h_n (B, P), c_n (B, H), workspace (1-D, for lstm_proj_backward)).)doc");

  m.def(
      "lstm_proj_backward",
      [](py::handle x, py::handle w_ih, py::handle w_hh, py::handle w_hr, py::handle b_ih, py::handle b_hh,
         py::handle h0, py::handle c0, py::handle lengths, py::handle workspace, py::handle dy, py::handle dh_n,
         py::handle dc_n) {
        if (w_hr.is_none()) throw py::value_error("w_hr: expected an array (P, H), got None");
        const Inputs in = parse_inputs("lstm", x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, w_hr);
        return in.is_double ? proj_backward<double>(in, workspace, dy, dh_n, dc_n)
                            : proj_backward<float>(in, workspace, dy, dh_n, dc_n);
      },
      py::arg("x"), py::arg("w_ih"), py::arg("w_hh"), py::arg("w_hr"), py::arg("b_ih"), py::arg("b_hh"),
      py::arg("h0"), py::arg("c0"), py::arg("lengths"), py::arg("workspace"), py::arg("dy"), py::arg("dh_n"),
      py::arg("dc_n"),
      R"doc(Fused backward-through-time of lstm_proj_forward (same first nine arguments).

workspace: from lstm_proj_forward; dy (T, B, P), dh_n (B, P), dc_n (B, H): each may be None (zero); dy
at padded positions is ignored. Returns (dx, dw_ih, dw_hh, dw_hr, db_ih, db_hh, dh0, dc0); db_* None
without bias.)doc");
}
