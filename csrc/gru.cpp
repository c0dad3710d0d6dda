// gru.cpp -- the fused GRU cells, gate order r, z, n: PyTorch's ("linear before reset", Keras'
// reset_after=True) and the lectures' (Cho et al. 2014, Keras' reset_after=False), below.
//
// Legend: T time steps, B batch, I input features, H hidden units, G = 3 gates.
//
//   r  = sigmoid(W_ir x + b_ir + W_hr h + b_hr)
//   z  = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
//   hn = W_hn h + b_hn                         (kept in the workspace as ghn)
//   n  = tanh(W_in x + b_in + r * hn)
//   h' = (1 - z) * n + z * h
//
// Backward, with dh = dL/dh' (gradients w.r.t. pre-activations):
//   dn_ = dh * (1 - z) * (1 - n^2)            input side of the n gate
//   dz_ = dh * (h - n) * z (1 - z)
//   dr_ = dn_ * hn * r (1 - r)
//   recurrent side: [dr_, dz_, dn_ * r]  (so db_hh differs from db_ih in the n gate)
//   dL/dh = dh * z + [dr_, dz_, dn_ * r] W_hh (the GEMM is the driver's)
#include "recurrence.h"

namespace minirnn {

struct GruCell : CellTraits<Mode::gru, 3, /*has_c=*/false, /*split_dgh=*/true> {
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
        const scalar_t r = sigmoid(s.pre(b, 0, u, k));
        const scalar_t z = sigmoid(s.pre(b, 1, u, k));
        const scalar_t hn = r_h[2 * u.size + k] + s.b_hh[2 * H + j];  // the reset gate scales this part only
        const scalar_t n = tanh_(a[2 * H + j] + s.b_ih[2 * H + j] + r * hn);
        a[0 * H + j] = r;
        a[1 * H + j] = z;
        a[2 * H + j] = n;
        ghn[j] = hn;
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
      scalar_t* dgx = s.dgx + b * G * H;          // (3*H)
      scalar_t* dgh = s.dgh + b * G * H;          // (3*H)
      scalar_t* dh_prev = s.dh_prev + b * H;      // (H)
      #pragma omp simd  // units are independent: no loop-carried dependence, no aliasing
      for (int64_t j = u.begin; j < u.begin + u.size; j++) {
        const scalar_t r = a[0 * H + j], z = a[1 * H + j], n = a[2 * H + j];
        const scalar_t dn = dh[j] * (scalar_t(1) - z) * dtanh(n);
        const scalar_t dz = dh[j] * (h_prev[j] - n) * dsigmoid(z);
        const scalar_t dr = dn * ghn[j] * dsigmoid(r);
        dgx[0 * H + j] = dgh[0 * H + j] = dr;
        dgx[1 * H + j] = dgh[1 * H + j] = dz;
        dgx[2 * H + j] = dn;
        dgh[2 * H + j] = dn * r;
        dh_prev[j] = dh[j] * z;
      }
    }
  }
};

// The GRU of Cho et al. 2014: the reset gate scales h BEFORE the recurrent product.
//   r, z as above
//   rh = r * h                                 (kept in the workspace's ghn slot: dW_hn = dn_^T rh)
//   n  = tanh(W_in x + b_in + W_hn rh + b_hn)
//   h' = (1 - z) * n + z * h                   (the same z convention as GruCell)
// W_hn rh waits for r, so a step has two products (recurrence.h, reset_before): reset_rows computes
// r, z and rh between them, forward_rows the rest.
// Backward, with dh = dL/dh': backward_rows
//   dn_ = dh * (1 - z) * (1 - n^2),  dz_ = dh * (h - n) * z (1 - z),  dL/dh = dh * z + ...
// then the driver's drh = dn_ W_hn (dL/drh), then reset_backward_rows
//   dr_ = drh * h * r (1 - r),  dL/dh += drh * r
// and the driver adds [dr_, dz_] W_h{r,z}. Both sides of every gate gradient are equal (db_hh = db_ih).
struct GruResetBeforeCell : CellTraits<Mode::gru_reset_before, 3, /*has_c=*/false, /*split_dgh=*/false,
                                       /*reset_before=*/true> {
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
      scalar_t* a = s.gates + b * G * H;          // (3*H) r, z activated; n's pre-activation in, n out
      const scalar_t* h_prev = s.h_prev + b * H;  // (H)
      scalar_t* h = s.h + b * H;                  // (H)
      #pragma omp simd  // units are independent: no loop-carried dependence, no aliasing
      for (int64_t k = 0; k < u.size; k++) {
        const int64_t j = u.begin + k;
        const scalar_t z = a[1 * H + j];
        const scalar_t n = tanh_(s.pre(b, 2, u, k));  // gh's n columns hold W_hn (r * h)
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
      const scalar_t* dh = s.dh + b * H;          // (H)
      scalar_t* dg = s.dgx + b * G * H;           // (3*H) dr_ comes in reset_backward_rows
      scalar_t* dh_prev = s.dh_prev + b * H;      // (H)
      #pragma omp simd  // units are independent: no loop-carried dependence, no aliasing
      for (int64_t j = u.begin; j < u.begin + u.size; j++) {
        const scalar_t z = a[1 * H + j], n = a[2 * H + j];
        dg[1 * H + j] = dh[j] * (h_prev[j] - n) * dsigmoid(z);
        dg[2 * H + j] = dh[j] * (scalar_t(1) - z) * dtanh(n);
        dh_prev[j] = dh[j] * z;
      }
    }
  }

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

MINIRNN_DEFINE_CELL_KERNELS(gru, GruCell)
MINIRNN_DEFINE_CELL_KERNELS(gru_reset_before, GruResetBeforeCell)

}  // namespace minirnn
