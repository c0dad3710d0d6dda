// lstm_proj.h -- the fused LSTM with a projected state (PyTorch's nn.LSTM(proj_size=P)).
//
// Legend: T time steps, B batch, I input features, H hidden units (the cell state's width),
// P proj_size (the state h's width, 0 < P < H), G = 4 gates (i f g o, PyTorch's order).
//
//   gates and c_t as the LSTM (lstm_cell.h), with the recurrent product h_{t-1} W_hh^T, W_hh (4H, P)
//   m_t = o * tanh(c_t)          (B, H) what a plain LSTM calls h_t
//   h_t = m_t W_hr^T             (B, P), W_hr (P, H); y_t = h_t
//
// Layout as rnn.h: x (T, B, I), w_ih (4H, I), b_ih / b_hh (4H), h0 (B, P), c0 (B, H); lengths as
// rnn.h (past a sequence's end its state is carried and its output is zero).
#pragma once

#include <cstdint>

#include "rnn.h"

namespace minirnn {

struct ProjSizes {
  int64_t T, B, I, H, P;
};

// The forward pass saves for backward, in ONE array, at these element offsets:
struct ProjWorkspaceLayout {
  int64_t gates;   // (T, B, 4H) activated gates i f g o
  int64_t cs;      // (T+1, B, H) c_0 = c0, c_{t+1} = cell state after step t
  int64_t tanh_c;  // (T, B, H) tanh(c_{t+1})
  int64_t ms;      // (T, B, H) m = o * tanh(c_{t+1}), zero past a sequence's end
  int64_t hs;      // (T+1, B, P) h_0 = h0, h_{t+1} = projected state after step t
  int64_t total;
};
ProjWorkspaceLayout lstm_proj_workspace_layout(ProjSizes sz);

template <typename scalar_t>
struct ProjForwardArgs {
  // outputs
  scalar_t* y;          // (T, B, P) zero where t >= lengths[b]
  scalar_t* h_n;        // (B, P)
  scalar_t* c_n;        // (B, H)
  scalar_t* workspace;  // (lstm_proj_workspace_layout(sizes).total)
  // inputs
  const scalar_t* x;       // (T, B, I)
  const scalar_t* w_ih;    // (4H, I)
  const scalar_t* w_hh;    // (4H, P)
  const scalar_t* w_hr;    // (P, H)
  const scalar_t* b_ih;    // (4H) or null (then b_hh is null too)
  const scalar_t* b_hh;    // (4H) or null
  const scalar_t* h0;      // (B, P)
  const scalar_t* c0;      // (B, H)
  const int64_t* lengths;  // (B) values in [0, T], or null
  // sizes
  ProjSizes sizes;
  const Interrupt* interrupt = nullptr;  // null: the loop runs to the end
};

template <typename scalar_t>
struct ProjBackwardArgs {
  // outputs
  scalar_t* dx;     // (T, B, I)
  scalar_t* dw_ih;  // (4H, I)
  scalar_t* dw_hh;  // (4H, P)
  scalar_t* dw_hr;  // (P, H)
  scalar_t* db_ih;  // (4H) or null (no bias)
  scalar_t* db_hh;  // (4H) or null (equal to db_ih)
  scalar_t* dh0;    // (B, P)
  scalar_t* dc0;    // (B, H)
  // inputs
  const scalar_t* x;          // (T, B, I)
  const scalar_t* w_ih;       // (4H, I)
  const scalar_t* w_hh;       // (4H, P)
  const scalar_t* w_hr;       // (P, H)
  const scalar_t* workspace;  // from the forward pass
  const scalar_t* dy;         // (T, B, P) or null (zero); ignored where t >= lengths[b]
  const scalar_t* dh_n;       // (B, P) or null (zero)
  const scalar_t* dc_n;       // (B, H) or null (zero)
  const int64_t* lengths;     // (B) or null, as in forward
  // sizes
  ProjSizes sizes;
  const Interrupt* interrupt = nullptr;  // null: the loop runs to the end
};

template <typename scalar_t>
void lstm_proj_forward(const ProjForwardArgs<scalar_t>& a);
template <typename scalar_t>
void lstm_proj_backward(const ProjBackwardArgs<scalar_t>& a);

}  // namespace minirnn
