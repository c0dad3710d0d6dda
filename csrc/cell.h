// cell.h -- what a cell kind (Elman, LSTM, GRU) gives the shared time loop (recurrence.h): its
// constants (CellTraits) and its pointwise passes over one step (ForwardStep, BackwardStep).
//
// Legend: T time steps, B batch, I input features, H hidden units, G gates per unit.
//
// A Cell derives from CellTraits and defines forward_rows / backward_rows for a run of batch rows
// and one slice of hidden units of one step. Forward, its pass adds b_ih + gh + b_hh to the
// projected input, applies the nonlinearities and writes the activations, h_t (and c_t) to the
// workspace. Backward, its pass turns dL/dh_t (and dL/dc_t) into the gate gradients dG_t; the
// driver adds dG_t W_hh to dL/dh_{t-1}. Rows past their sequence's end are the driver's.
//
// Two products a step (reset_before, the GRU of Cho et al. 2014): the last gate's recurrent product
// reads r * h_{t-1}, not h_{t-1}, so it waits for the reset gate. Forward: the product of the other
// G-1 gates, Cell::reset_rows (r, z and rh = r * h_{t-1}, into the step's ghn slot), then, once every
// unit of a row has rh, gh's last gate = rh W_hn^T, and Cell::forward_rows. Backward:
// Cell::backward_rows (all but dr), drh = dn W_hn (dL/drh, into a (B, H) buffer),
// Cell::reset_backward_rows (dr, and drh * r into dL/dh_{t-1}), then the product of the first G-1
// gates' dG with their W_hh. After the loop dW_hn = dG_n^T RH.
#pragma once

#include <cstdint>

#include "activations.h"
#include "parallel.h"
#include "rnn.h"

namespace minirnn {

// One time step of the forward pass; pointers are already offset to step t.
template <typename scalar_t>
struct ForwardStep {
  scalar_t* gates;         // (B, G*H) in: x_t W_ih^T; out: activated gates (Elman: unused after read)
  const scalar_t* gh;      // (B, G*H) h_{t-1} W_hh^T, columns grouped per slice (gh_row); rows >= rows[t] stale
  const scalar_t* b_ih;    // (G*H) zeros when the layer has no bias
  const scalar_t* b_hh;    // (G*H) zeros when the layer has no bias
  const scalar_t* h_prev;  // (B, H)
  const scalar_t* c_prev;  // (B, H) lstm
  scalar_t* h;             // (B, H) h_t
  scalar_t* c;             // (B, H) c_t, lstm
  scalar_t* tanh_c;        // (B, H) tanh(c_t), lstm
  scalar_t* ghn;           // (B, H) gru: W_hn h_{t-1} + b_hn; reset_before: r * h_{t-1}
  int64_t G, H;

  // Row b of the recurrent projection for hidden units u: gate g of unit u.begin + k
  // is at [g * u.size + k].
  const scalar_t* gh_row(int64_t b, Range u) const { return gh + b * G * H + G * u.begin; }

  // b_ih is added here, not in the input projection: that saves writing it into every row first.
  // Pre-activation of gate g of unit u.begin + k in row b: x W_ih^T + b_ih + h W_hh^T + b_hh.
  scalar_t pre(int64_t b, int64_t g, Range u, int64_t k) const {
    const int64_t j = u.begin + k;
    return gates[b * G * H + g * H + j] + b_ih[g * H + j] + gh_row(b, u)[g * u.size + k] + b_hh[g * H + j];
  }
};

// One time step of the backward pass; pointers are already offset to step t.
template <typename scalar_t>
struct BackwardStep {
  // dgx/dgh: (rows[t], G*H), step t's rows in the packed dG: a row >= rows[t] is the next step's.
  scalar_t* dgx;           // dL/d(pre-activation), input side (dX, dW_ih, db_ih)
  scalar_t* dgh;           // recurrent side (dh_{t-1}, dW_hh, db_hh); == dgx unless split_dgh
  scalar_t* dh_prev;       // (B, H) out: the part of dL/dh_{t-1} that does not go through W_hh
  scalar_t* dc_prev;       // (B, H) out: dL/dc_{t-1}, lstm
  const scalar_t* dh;      // (B, H) dL/dh_t (dy_t included)
  const scalar_t* dc;      // (B, H) dL/dc_t from later steps, lstm
  const scalar_t* gates;   // (B, G*H) activated gates (not for Elman)
  const scalar_t* h;       // (B, H) h_t
  const scalar_t* h_prev;  // (B, H) h_{t-1}
  const scalar_t* c_prev;  // (B, H) c_{t-1}, lstm
  const scalar_t* tanh_c;  // (B, H) tanh(c_t), lstm
  const scalar_t* ghn;     // (B, H) gru: W_hn h_{t-1} + b_hn; reset_before: r * h_{t-1}
  const scalar_t* drh;     // (B, H) reset_before: dL/d(r * h_{t-1}) = dG_n W_hn (the driver's product)
  int64_t G, H;
};

// The constants a Cell declares: its mode, G gates per unit, whether it has an LSTM cell
// state c, whether the recurrent side of its gate gradient differs from the input side (GRU: the
// n gate's), and whether its last gate's recurrent product reads r * h_{t-1} (two products a step).
template <Mode kMode, int64_t kG, bool kHasC, bool kSplitDgh, bool kResetBefore = false>
struct CellTraits {
  static constexpr Mode mode = kMode;
  static constexpr int64_t G = kG;
  static constexpr bool has_c = kHasC;
  static constexpr bool split_dgh = kSplitDgh;
  static constexpr bool reset_before = kResetBefore;
  static constexpr int64_t G_h = kResetBefore ? kG - 1 : kG;  // gates whose recurrent product reads h_{t-1}
};

}  // namespace minirnn
