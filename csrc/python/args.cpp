// args.cpp -- the Python module's argument checks (args.h).
#include "args.h"

#include <algorithm>
#include <climits>
#include <type_traits>

namespace minirnn::python {

// Plain strings, no <sstream>: this module may be loaded without libstdc++'s stream symbols.
std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "(";
  for (size_t k = 0; k < shape.size(); k++) s += (k ? ", " : "") + std::to_string(shape[k]);
  return s + (shape.size() == 1 ? ",)" : ")");
}

std::vector<int64_t> shape_of(const py::array& a) { return std::vector<int64_t>(a.shape(), a.shape() + a.ndim()); }

py::array no_array() { return py::reinterpret_steal<py::array>(py::handle()); }

// numpy writes a native byte order as '=' (or '|'); '<' or '>' means byte-swapped. The kernels read
// raw memory, so a byte-swapped array is converted to native order. (No attribute lookup by a fresh
// name string here: CPython's type cache would keep each one alive.)
static py::array native_byte_order(py::array a) {
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

// (ensure's conversion costs a microsecond even when there is nothing to convert.)
py::array c_contiguous(const py::array& a) {
  return (a.flags() & py::array::c_style) ? a : py::array::ensure(a, py::array::c_style);
}

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

py::array Inputs::float_arg(py::handle obj, const std::string& name) const {
  py::array a = as_array(obj, name);
  if (!a) return a;
  const int want = is_double ? py::dtype::num_of<double>() : py::dtype::num_of<float>();
  if (a.dtype().num() != want)
    throw py::type_error(name + ": expected dtype " + (is_double ? "float64" : "float32") +
                         " (the dtype of x), got " + std::string(py::str(a.dtype())));
  return c_contiguous(a);
}

namespace {

void parse_mode_arg(Inputs* in, const std::string& mode) {
  in->mode_name = mode;
  if (!parse_mode(mode, &in->mode))
    throw py::value_error("mode: expected one of 'rnn_tanh', 'rnn_relu', 'rnn_sigmoid', 'lstm', 'gru', 'gru_reset_before', got '" + mode + "'");
  in->G = num_gates(in->mode);
}

// x fixes the dtype of every float argument and T, B, I.
void parse_x(Inputs* in, py::handle x) {
  py::array xa = as_array(x, "x");
  if (!xa) throw py::type_error("x: expected a float32 or float64 array (T, B, I), got None");
  in->is_double = float_dtype_num(xa, "x") == py::dtype::num_of<double>();
  if (xa.ndim() != 3)
    throw py::value_error("x: expected a 3-D array (T, B, I), got shape " + shape_str(shape_of(xa)));
  in->x = c_contiguous(xa);
  in->sz = Sizes{xa.shape(0), xa.shape(1), xa.shape(2), 0};
}

void parse_w_hr(Inputs* in, py::handle w_hr) {
  in->w_hr = in->float_arg(w_hr, "w_hr");
  if (in->w_hr && in->mode != Mode::lstm)
    throw py::value_error("w_hr: expected None for mode '" + in->mode_name + "', got an array");
  if (in->w_hr && (in->w_hr.ndim() != 2 || in->w_hr.shape(0) < 1 || in->w_hr.shape(0) >= in->w_hr.shape(1)))
    throw py::value_error("w_hr: expected a 2-D array (P, H) with 0 < P < H, got shape " +
                          shape_str(shape_of(in->w_hr)));
}

// w_hh fixes H (w_hr's H when given) and the width of h, R (P with w_hr, else H); then w_ih.
void parse_weights(Inputs* in, py::handle w_ih, py::handle w_hh, const std::string& h_letter) {
  in->w_hh = in->float_arg(w_hh, "w_hh");
  if (!in->w_hh) throw py::value_error("w_hh: expected an array (G*H, " + h_letter + "), got None");
  if (in->w_hh.ndim() != 2)
    throw py::value_error("w_hh: expected a 2-D array (G*H, " + h_letter + "), got shape " +
                          shape_str(shape_of(in->w_hh)));
  const int64_t H = in->w_hr ? in->w_hr.shape(1) : in->w_hh.shape(1), G = in->G;
  const int64_t R = in->w_hr ? in->w_hr.shape(0) : H;
  in->sz.H = H;
  in->P = in->w_hr ? R : 0;
  check_shape(in->w_hh, "w_hh",
              "(G*H, " + h_letter + ") with G = " + std::to_string(G) + " for mode '" + in->mode_name + "'",
              {G * H, R});
  in->w_ih = in->float_arg(w_ih, "w_ih");
  if (!in->w_ih) throw py::value_error("w_ih: expected an array (G*H, I), got None");
  check_shape(in->w_ih, "w_ih", "(G*H, I)", {G * H, in->sz.I});
}

void parse_biases(Inputs* in, py::handle b_ih, py::handle b_hh) {
  in->b_ih = in->float_arg(b_ih, "b_ih");
  in->b_hh = in->float_arg(b_hh, "b_hh");
  if (bool(in->b_ih) != bool(in->b_hh))
    throw py::value_error(std::string("b_ih, b_hh: expected both arrays or both None, got ") +
                          (in->b_ih ? "b_hh=None" : "b_ih=None"));
  if (in->b_ih) {
    check_shape(in->b_ih, "b_ih", "(G*H,)", {in->G * in->sz.H});
    check_shape(in->b_hh, "b_hh", "(G*H,)", {in->G * in->sz.H});
  }
}

void parse_states(Inputs* in, py::handle h0, py::handle c0, const std::string& h_letter) {
  const int64_t B = in->sz.B, H = in->sz.H;
  in->h0 = in->float_arg(h0, "h0");
  if (!in->h0) throw py::value_error("h0: expected an array (B, " + h_letter + "), got None");
  check_shape(in->h0, "h0", "(B, " + h_letter + ")", {B, in->P > 0 ? in->P : H});
  const bool lstm = in->mode == Mode::lstm;
  in->c0 = in->float_arg(c0, "c0");
  if (lstm && !in->c0) throw py::value_error("c0: expected an array (B, H) for mode 'lstm', got None");
  if (!lstm && in->c0) throw py::value_error("c0: expected None for mode '" + in->mode_name + "', got an array");
  if (in->c0) check_shape(in->c0, "c0", "(B, H)", {B, H});
}

// lengths (B,) of integer type Int, read as Int and compared exactly (uint64 and int8 alike), then
// copied as int64 (exact: every value is in [0, T]). A copy, so that no other Python thread can
// change the values the kernel indexes with once they are checked.
template <typename Int>
py::array checked_lengths(const py::array& la, int64_t T) {
  const py::array values = c_contiguous(la);
  const Int* v = static_cast<const Int*>(values.data());
  const int64_t B = values.size();
  for (int64_t b = 0; b < B; b++) {
    bool below = false;
    if constexpr (std::is_signed_v<Int>) below = v[b] < 0;
    if (below || static_cast<uint64_t>(v[b]) > static_cast<uint64_t>(T))
      throw py::value_error("lengths: expected values in [0, T] = [0, " + std::to_string(T) + "], got " +
                            std::to_string(v[b]) + " at index " + std::to_string(b));
  }
  py::array_t<int64_t> out(B);
  std::copy(v, v + B, out.mutable_data());
  return out;
}

void parse_lengths(Inputs* in, py::handle lengths) {
  if (lengths.is_none()) return;
  py::array la = as_array(lengths, "lengths");
  const char kind = la.dtype().kind();
  const py::ssize_t size = la.dtype().itemsize();
  if ((kind != 'i' && kind != 'u') || (size != 1 && size != 2 && size != 4 && size != 8))
    throw py::type_error("lengths: expected an integer array (B,), got dtype " + std::string(py::str(la.dtype())));
  check_shape(la, "lengths", "(B,)", {in->sz.B});
  const int64_t T = in->sz.T;
  const bool s = kind == 'i';
  in->lengths = size == 1 ? (s ? checked_lengths<int8_t>(la, T) : checked_lengths<uint8_t>(la, T))
              : size == 2 ? (s ? checked_lengths<int16_t>(la, T) : checked_lengths<uint16_t>(la, T))
              : size == 4 ? (s ? checked_lengths<int32_t>(la, T) : checked_lengths<uint32_t>(la, T))
                          : (s ? checked_lengths<int64_t>(la, T) : checked_lengths<uint64_t>(la, T));
}

// BLAS takes 32-bit sizes and leading dimensions.
void check_blas_sizes(const Inputs& in) {
  const int64_t TB = in.sz.T * in.sz.B, GH = in.G * in.sz.H, I = in.sz.I;
  if (TB > INT_MAX || GH > INT_MAX || I > INT_MAX)
    throw py::value_error("x, w_ih: sizes too large for 32-bit BLAS: T*B = " + std::to_string(TB) +
                          ", G*H = " + std::to_string(GH) + ", I = " + std::to_string(I));
}

}  // namespace

Inputs parse_inputs(const std::string& mode, py::handle x, py::handle w_ih, py::handle w_hh, py::handle b_ih,
                    py::handle b_hh, py::handle h0, py::handle c0, py::handle lengths, py::handle w_hr) {
  Inputs in;
  parse_mode_arg(&in, mode);
  parse_x(&in, x);
  parse_w_hr(&in, w_hr);
  const std::string h_letter = in.w_hr ? "P" : "H";  // the width of the state h
  parse_weights(&in, w_ih, w_hh, h_letter);
  parse_biases(&in, b_ih, b_hh);
  parse_states(&in, h0, c0, h_letter);
  parse_lengths(&in, lengths);
  check_blas_sizes(in);
  return in;
}

Grads parse_grads(const Inputs& in, py::handle dy, py::handle dh_n, py::handle dc_n) {
  const Sizes s = in.sz;
  const int64_t R = in.P > 0 ? in.P : s.H;
  const std::string r = in.P > 0 ? "P" : "H";
  Grads g;
  g.dy = in.float_arg(dy, "dy");
  if (g.dy) check_shape(g.dy, "dy", "(T, B, " + r + ")", {s.T, s.B, R});
  g.dh_n = in.float_arg(dh_n, "dh_n");
  if (g.dh_n) check_shape(g.dh_n, "dh_n", "(B, " + r + ")", {s.B, R});
  g.dc_n = in.float_arg(dc_n, "dc_n");
  if (g.dc_n && in.mode != Mode::lstm)
    throw py::value_error("dc_n: expected None for mode '" + in.mode_name + "', got an array");
  if (g.dc_n) check_shape(g.dc_n, "dc_n", "(B, H)", {s.B, s.H});
  return g;
}

}  // namespace minirnn::python
