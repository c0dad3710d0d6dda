// elman.cpp -- the fused Elman RNN cell, tanh or relu.
//
// Legend: T time steps, B batch, I input features, H hidden units, G = 1 gate.
//
//   h' = act(W_ih x + b_ih + W_hh h + b_hh),   act = tanh or relu
//
// Backward, with dh = dL/dh':  dpre = dh * act'(h')  (from the output: 1 - h'^2, or h' > 0),
//   dL/dh = dpre W_hh (the driver's GEMM).  Backward needs only h', so the workspace keeps
//   no gates: just the states.
#include "recurrence.h"

namespace minirnn {

template <bool Relu>
struct ElmanCell : CellTraits<Relu ? Mode::rnn_relu : Mode::rnn_tanh, 1, /*has_c=*/false, /*split_dgh=*/false> {
  template <typename scalar_t>
  static scalar_t act(scalar_t x) { return Relu ? relu(x) : tanh_(x); }
  template <typename scalar_t>
  static scalar_t dact(scalar_t y) { return Relu ? drelu(y) : dtanh(y); }

  template <typename scalar_t>
  MINIRNN_POINTWISE static void forward_rows(const ForwardStep<scalar_t>& s, Range rows, Range u) {
    for (int64_t b = rows.begin; b < rows.begin + rows.size; b++) {
      scalar_t* h = s.h + b * s.H;  // (H)
      #pragma omp simd  // units are independent: no loop-carried dependence, no aliasing
      for (int64_t k = 0; k < u.size; k++) h[u.begin + k] = act(s.pre(b, 0, u, k));
    }
  }

  template <typename scalar_t>
  MINIRNN_POINTWISE static void backward_rows(const BackwardStep<scalar_t>& s, Range rows, Range u) {
    for (int64_t b = rows.begin; b < rows.begin + rows.size; b++) {
      const scalar_t* h = s.h + b * s.H;    // (H)
      const scalar_t* dh = s.dh + b * s.H;  // (H)
      scalar_t* dpre = s.dgx + b * s.H;     // (H)
      scalar_t* dh_prev = s.dh_prev + b * s.H;  // (H)
      #pragma omp simd  // units are independent: no loop-carried dependence, no aliasing
      for (int64_t j = u.begin; j < u.begin + u.size; j++) {
        dpre[j] = dh[j] * dact(h[j]);
        dh_prev[j] = scalar_t(0);  // all of dL/dh_{t-1} goes through W_hh
      }
    }
  }
};

MINIRNN_DEFINE_CELL_KERNELS(elman_tanh, ElmanCell<false>)
MINIRNN_DEFINE_CELL_KERNELS(elman_relu, ElmanCell<true>)

}  // namespace minirnn
