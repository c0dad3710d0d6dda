// lstm_cell.h -- the fused LSTM cell (PyTorch's gate order i, f, g, o): its pointwise step, shared by
// the LSTM (lstm.cpp) and the projected LSTM (lstm_proj.cpp).
//
// Legend: T time steps, B batch, I input features, H hidden units, G = 4 gates.
//
//   i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)      f, o: the same with their rows
//   g = tanh(W_ig x + b_ig + W_hg h + b_hg)
//   c' = f * c + i * g
//   h' = o * tanh(c')
//
// Backward, with dh = dL/dh', dc = dL/dc' (from later steps):
//   dc  += dh * o * (1 - tanh(c')^2)
//   do_ = dh * tanh(c') * o (1 - o)       (gradients w.r.t. pre-activations)
//   di  = dc * g * i (1 - i)
//   df  = dc * c * f (1 - f)
//   dg  = dc * i * (1 - g^2)
//   dL/dc = dc * f,   dL/dh = [di df dg do_] W_hh (added by the driver's GEMM)
#pragma once

#include "cell.h"

namespace minirnn {

struct LstmCell : CellTraits<Mode::lstm, 4, /*has_c=*/true, /*split_dgh=*/false> {
  template <typename scalar_t>
  MINIRNN_POINTWISE static void forward_rows(const ForwardStep<scalar_t>& s, Range rows, Range u) {
    const int64_t H = s.H;
    for (int64_t b = rows.begin; b < rows.begin + rows.size; b++) {
      scalar_t* a = s.gates + b * G * H;          // (4*H) pre-activations in, activations out
      const scalar_t* c_prev = s.c_prev + b * H;  // (H)
      scalar_t* h = s.h + b * H;                  // (H)
      scalar_t* c = s.c + b * H;                  // (H)
      scalar_t* tanh_c = s.tanh_c + b * H;        // (H)
      #pragma omp simd  // units are independent: no loop-carried dependence, no aliasing
      for (int64_t k = 0; k < u.size; k++) {
        const int64_t j = u.begin + k;
        const scalar_t i = sigmoid(s.pre(b, 0, u, k));
        const scalar_t f = sigmoid(s.pre(b, 1, u, k));
        const scalar_t g = tanh_(s.pre(b, 2, u, k));
        const scalar_t o = sigmoid(s.pre(b, 3, u, k));
        a[0 * H + j] = i;
        a[1 * H + j] = f;
        a[2 * H + j] = g;
        a[3 * H + j] = o;
        c[j] = f * c_prev[j] + i * g;
        tanh_c[j] = tanh_(c[j]);
        h[j] = o * tanh_c[j];
      }
    }
  }

  template <typename scalar_t>
  MINIRNN_POINTWISE static void backward_rows(const BackwardStep<scalar_t>& s, Range rows, Range u) {
    const int64_t H = s.H;
    for (int64_t b = rows.begin; b < rows.begin + rows.size; b++) {
      const scalar_t* a = s.gates + b * G * H;    // (4*H) activated i f g o
      const scalar_t* c_prev = s.c_prev + b * H;  // (H)
      const scalar_t* tanh_c = s.tanh_c + b * H;  // (H)
      const scalar_t* dh = s.dh + b * H;          // (H)
      const scalar_t* dc_next = s.dc + b * H;     // (H)
      scalar_t* dg = s.dgx + b * G * H;           // (4*H)
      scalar_t* dh_prev = s.dh_prev + b * H;      // (H)
      scalar_t* dc_prev = s.dc_prev + b * H;      // (H)
      #pragma omp simd  // units are independent: no loop-carried dependence, no aliasing
      for (int64_t j = u.begin; j < u.begin + u.size; j++) {
        const scalar_t i = a[0 * H + j], f = a[1 * H + j], g = a[2 * H + j], o = a[3 * H + j];
        const scalar_t dc = dc_next[j] + dh[j] * o * dtanh(tanh_c[j]);
        dg[0 * H + j] = dc * g * dsigmoid(i);
        dg[1 * H + j] = dc * c_prev[j] * dsigmoid(f);
        dg[2 * H + j] = dc * i * dtanh(g);
        dg[3 * H + j] = dh[j] * tanh_c[j] * dsigmoid(o);
        dc_prev[j] = dc * f;
        dh_prev[j] = scalar_t(0);  // all of dL/dh_{t-1} goes through W_hh
      }
    }
  }
};

}  // namespace minirnn
