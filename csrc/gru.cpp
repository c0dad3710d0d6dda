// gru.cpp -- the fused GRU cell, gate order r, z, n, in two variants (Keras' names): reset_after
// (PyTorch's, "linear before reset") and reset before (Cho et al. 2014, as the lectures write it).
//
// Legend: T time steps, B batch, I input features, H hidden units, G = 3 gates.
//
//   r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
//   z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
//   reset_after:  hn = W_hn h + b_hn            (kept in the workspace as ghn)
//                 n  = tanh(W_in x + b_in + r * hn)
//   reset before: rh = r * h                    (kept in the workspace's ghn slot: dW_hn = dn_^T rh)
//                 n  = tanh(W_in x + b_in + W_hn rh + b_hn)
//   h' = (1 - z) * n + z * h                    (both: z is the share of h kept)
//
// Backward, with dh = dL/dh' (gradients w.r.t. pre-activations):
//   dn_ = dh * (1 - z) * (1 - n^2)            input side of the n gate
//   dz_ = dh * (h - n) * z (1 - z)
//   reset_after:  dr_ = dn_ * hn * r (1 - r)
//                 recurrent side: [dr_, dz_, dn_ * r]  (so db_hh differs from db_ih in the n gate)
//                 dL/dh = dh * z + [dr_, dz_, dn_ * r] W_hh (the GEMM is the driver's)
//   reset before: W_hn rh waits for r, so a step has two products (cell.h, reset_before):
//                 forward, reset_rows computes r, z and rh between them, forward_rows the rest;
//                 backward, backward_rows the above, the driver's drh = dn_ W_hn (dL/drh), then
//                 reset_backward_rows: dr_ = drh * h * r (1 - r), dL/dh += drh * r, and the driver
//                 adds [dr_, dz_] W_h{r,z}. Both sides of every gate gradient are equal.
#include "cell.h"
#include "recurrence.h"

namespace minirnn {

template <bool kResetAfter>
struct GruCell : CellTraits<kResetAfter ? Mode::gru : Mode::gru_reset_before, 3, /*has_c=*/false,
                            /*split_dgh=*/kResetAfter, /*reset_before=*/!kResetAfter> {
  using Base = CellTraits<kResetAfter ? Mode::gru : Mode::gru_reset_before, 3, false, kResetAfter, !kResetAfter>;
  using Base::G;

  // Reset before only: the pass between the step's two products.
  template <typename scalar_t>
  MINIRNN_POINTWISE static void reset_rows(const ForwardStep<scalar_t>& s, Range rows, Range u) {
    const int64_t H = s.H;
    for (int64_t b = rows.begin; b < rows.begin + rows.size; b++) {
      scalar_t* a = s.gates + b * G * H;          // (3*H) pre-activations in; r and z out
      const scalar_t* h_prev = s.h_prev + b * H;  // (H)
      scalar_t* rh = s.ghn + b * H;               // (H)
      #pragma omp simd  // units are independent: no loop-carried dependence, no aliasing
      for (int64_t k = 0; k < u.size; k++) {
        const int64_t j = u.begin + k;
        const scalar_t r = sigmoid(s.pre(b, 0, u, k));
        a[1 * H + j] = sigmoid(s.pre(b, 1, u, k));
        a[0 * H + j] = r;
        rh[j] = r * h_prev[j];
      }
    }
  }

  template <typename scalar_t>
  MINIRNN_POINTWISE static void forward_rows(const ForwardStep<scalar_t>& s, Range rows, Range u) {
    const int64_t H = s.H;
    for (int64_t b = rows.begin; b < rows.begin + rows.size; b++) {
      scalar_t* a = s.gates + b * G * H;          // (3*H) pre-activations (input side) in, activations out
      const scalar_t* r_h = s.gh_row(b, u);       // (3, u.size) recurrent projection of these units
      const scalar_t* h_prev = s.h_prev + b * H;  // (H)
      scalar_t* h = s.h + b * H;                  // (H)
      scalar_t* ghn = s.ghn + b * H;              // (H)
      #pragma omp simd  // units are independent: no loop-carried dependence, no aliasing
      for (int64_t k = 0; k < u.size; k++) {
        const int64_t j = u.begin + k;
        scalar_t z, n;
        if constexpr (kResetAfter) {
          const scalar_t r = sigmoid(s.pre(b, 0, u, k));
          z = sigmoid(s.pre(b, 1, u, k));
          const scalar_t hn = r_h[2 * u.size + k] + s.b_hh[2 * H + j];  // the reset gate scales this part only
          n = tanh_(a[2 * H + j] + s.b_ih[2 * H + j] + r * hn);
          a[0 * H + j] = r;
          a[1 * H + j] = z;
          ghn[j] = hn;
        } else {  // r and z came from reset_rows; gh's n columns hold W_hn (r * h)
          z = a[1 * H + j];
          n = tanh_(s.pre(b, 2, u, k));
        }
        a[2 * H + j] = n;
        h[j] = (scalar_t(1) - z) * n + z * h_prev[j];
      }
    }
  }

  template <typename scalar_t>
  MINIRNN_POINTWISE static void backward_rows(const BackwardStep<scalar_t>& s, Range rows, Range u) {
    const int64_t H = s.H;
    for (int64_t b = rows.begin; b < rows.begin + rows.size; b++) {
      const scalar_t* a = s.gates + b * G * H;    // (3*H) activated r z n
      const scalar_t* h_prev = s.h_prev + b * H;  // (H)
      const scalar_t* ghn = s.ghn + b * H;        // (H)
      const scalar_t* dh = s.dh + b * H;          // (H)
      scalar_t* dgx = s.dgx + b * G * H;          // (3*H) reset before: dr_ comes in reset_backward_rows
      scalar_t* dgh = s.dgh + b * G * H;          // (3*H) == dgx unless reset_after
      scalar_t* dh_prev = s.dh_prev + b * H;      // (H)
      #pragma omp simd  // units are independent: no loop-carried dependence, no aliasing
      for (int64_t j = u.begin; j < u.begin + u.size; j++) {
        const scalar_t r = a[0 * H + j], z = a[1 * H + j], n = a[2 * H + j];
        const scalar_t dn = dh[j] * (scalar_t(1) - z) * dtanh(n);
        const scalar_t dz = dh[j] * (h_prev[j] - n) * dsigmoid(z);
        dgx[1 * H + j] = dz;
        dgx[2 * H + j] = dn;
        dh_prev[j] = dh[j] * z;
        if constexpr (kResetAfter) {
          const scalar_t dr = dn * ghn[j] * dsigmoid(r);
          dgx[0 * H + j] = dgh[0 * H + j] = dr;
          dgh[1 * H + j] = dz;
          dgh[2 * H + j] = dn * r;
        }
      }
    }
  }

  // Reset before only: the pass after the driver's drh = dn_ W_hn.
  template <typename scalar_t>
  MINIRNN_POINTWISE static void reset_backward_rows(const BackwardStep<scalar_t>& s, Range rows, Range u) {
    const int64_t H = s.H;
    for (int64_t b = rows.begin; b < rows.begin + rows.size; b++) {
      const scalar_t* r = s.gates + b * G * H;    // (H) the activated reset gate
      const scalar_t* h_prev = s.h_prev + b * H;  // (H)
      const scalar_t* drh = s.drh + b * H;        // (H)
      scalar_t* dr = s.dgx + b * G * H;           // (H)
      scalar_t* dh_prev = s.dh_prev + b * H;      // (H)
      #pragma omp simd  // units are independent: no loop-carried dependence, no aliasing
      for (int64_t j = u.begin; j < u.begin + u.size; j++) {
        dr[j] = drh[j] * h_prev[j] * dsigmoid(r[j]);
        dh_prev[j] += drh[j] * r[j];
      }
    }
  }
};

MINIRNN_DEFINE_CELL_KERNELS(gru, GruCell<true>)
MINIRNN_DEFINE_CELL_KERNELS(gru_reset_before, GruCell<false>)

}  // namespace minirnn
