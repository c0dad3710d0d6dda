// gru.cpp -- the fused GRU cell (PyTorch's gate order r, z, n; "linear before reset").
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

MINIRNN_DEFINE_CELL_KERNELS(gru, GruCell)

}  // namespace minirnn
