// tape_ops.cpp -- the tape's own kernel calls in the Python module (kernels.h): matmul on the
// kernels' OpenMP team, and the cells' sigmoid.
//
// Legend: a (M, K), b (K, N), C (M, N) (each operand possibly transposed).
#include <algorithm>
#include <climits>

#include "args.h"
#include "arrays.h"
#include "kernels.h"
#include "matmul.h"
#include "pointwise.h"

namespace minirnn::python {

namespace {

// A 2-D operand of matmul as BLAS reads it: a C-contiguous array, its leading dimension,
// and whether BLAS transposes it. An F-contiguous array (a transpose view) is read as
// its C-contiguous transpose with the flag flipped, so it is never copied.
struct Operand {
  py::array arr;
  Trans t;
  int64_t ld;
};

Operand matmul_operand(const py::array& a, bool transpose) {
  const bool flip = !(a.flags() & py::array::c_style) && (a.flags() & py::array::f_style);
  // `a` came through as_array, so it is already in native byte order.
  const py::array c = flip ? py::array(a.attr("T")) : c_contiguous(a);
  const bool t = transpose != flip;
  return {c, t ? Trans::yes : Trans::no, std::max<int64_t>(1, c.shape(1))};
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

// a and b: 2-D float arrays of one dtype; returns that dtype's number.
int check_matmul_operands(const py::array& a, const py::array& b) {
  if (!a) throw py::type_error("a: expected a float32 or float64 array, got None");
  if (!b) throw py::type_error("b: expected a float32 or float64 array, got None");
  const int num = float_dtype_num(a, "a");
  if (b.dtype().num() != num)
    throw py::type_error("b: expected dtype " + std::string(py::str(a.dtype())) + " (the dtype of a), got " +
                         std::string(py::str(b.dtype())));
  if (a.ndim() != 2) throw py::value_error("a: expected a 2-D array, got shape " + shape_str(shape_of(a)));
  if (b.ndim() != 2) throw py::value_error("b: expected a 2-D array, got shape " + shape_str(shape_of(b)));
  return num;
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

}  // namespace

py::array matmul(py::handle a_obj, py::handle b_obj, bool transpose_a, bool transpose_b) {
  py::array a = as_array(a_obj, "a"), b = as_array(b_obj, "b");
  const int num = check_matmul_operands(a, b);
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

py::array sigmoid(py::handle x_obj) {
  py::array x = as_array(x_obj, "x");
  if (!x) throw py::type_error("x: expected a float32 or float64 array, got None");
  return float_dtype_num(x, "x") == py::dtype::num_of<double>() ? sigmoid_typed<double>(x) : sigmoid_typed<float>(x);
}

}  // namespace minirnn::python
