// elman.cpp -- the fused Elman RNN cell, tanh, relu or sigmoid (the lectures' Elman network).
//
// Legend: T time steps, B batch, I input features, H hidden units, G = 1 gate.
//
//   h' = act(W_ih x + b_ih + W_hh h + b_hh),   act = tanh, relu or sigmoid
//
// Backward, with dh = dL/dh':  dpre = dh * act'(h')  (from the output: 1 - h'^2, h' > 0, or h'(1 - h')),
//   dL/dh = dpre W_hh (the driver's GEMM).  Backward needs only h', so the workspace keeps
//   no gates: just the states.
#include "cell.h"
#include "recurrence.h"

namespace minirnn {

template <Mode kMode>
struct ElmanCell : CellTraits<kMode, 1, /*has_c=*/false, /*split_dgh=*/false> {
  template <typename scalar_t>
  static scalar_t act(scalar_t x) {
    return kMode == Mode::rnn_relu ? relu(x) : kMode == Mode::rnn_sigmoid ? sigmoid(x) : tanh_(x);
  }
  template <typename scalar_t>
  static scalar_t dact(scalar_t y) {
    return kMode == Mode::rnn_relu ? drelu(y) : kMode == Mode::rnn_sigmoid ? dsigmoid(y) : dtanh(y);
  }

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

MINIRNN_DEFINE_CELL_KERNELS(elman_tanh, ElmanCell<Mode::rnn_tanh>)
MINIRNN_DEFINE_CELL_KERNELS(elman_relu, ElmanCell<Mode::rnn_relu>)
MINIRNN_DEFINE_CELL_KERNELS(elman_sigmoid, ElmanCell<Mode::rnn_sigmoid>)

}  // namespace minirnn
