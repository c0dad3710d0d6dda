// rnn.h -- the public C++ interface of the fused recurrent kernels.
//
// Legend (every kernel file uses the same letters):
//   T  time steps          B  batch size         I  input features
//   H  hidden units        G  gates per unit: 1 (Elman), 4 (LSTM: i f g o), 3 (GRU: r z n)
//
// Layout is PyTorch's: x (T, B, I), w_ih (G*H, I), w_hh (G*H, H), b_ih / b_hh (G*H),
// h (B, H). lengths (B) int64 in [0, T] or null (all T): a sequence's state stops
// changing after its length and its outputs there are zero.
//
// Each kernel is a forward/backward pair whose argument structs list
// outputs, then inputs, then sizes; gradient buffers are prefixed d.
#pragma once

#include <cstdint>
#include <string>

namespace minirnn {

// gru: PyTorch's (the reset gate scales W_hn h + b_hn); gru_reset_before: Cho et al. 2014's, Keras'
// reset_after=False (the reset gate scales h before the product: W_hn (r * h) + b_hn).
enum class Mode { rnn_tanh, rnn_relu, rnn_sigmoid, lstm, gru, gru_reset_before };

// Number of gates G of a mode (1 for the three Elman modes, 4 for lstm, 3 for both GRUs).
int num_gates(Mode mode);
// "rnn_tanh" ... -> Mode; returns false for an unknown name.
bool parse_mode(const std::string& name, Mode* mode);

struct Sizes {
  int64_t T, B, I, H;
};

// The forward pass saves for backward, in ONE array, at these element offsets
// (-1: the mode keeps no such region):
struct WorkspaceLayout {
  int64_t gates;   // (gate_steps, B, G*H) activated gates (lstm: i f g o, gru: r z n); Elman keeps none (h is in hs)
  int64_t hs;      // (state_slots, B, H) h_0 = h0, h_{t+1} = state after step t (carried past a sequence's end)
  int64_t cs;      // (state_slots, B, H) c_0 .. c_T, lstm only
  int64_t tanh_c;  // (step_slots, B, H) tanh(c_{t+1}), lstm only
  int64_t ghn;     // (step_slots, B, H) gru: W_hn h_t + b_hn (the reset gate multiplies it);
                   // gru_reset_before: r * h_t (what W_hn multiplies)
  int64_t total;   // elements in all
  // Steps of history kept: for backward every step's (T+1 states, T steps); for inference only
  // what the next step reads (2 states: h_t and h_{t+1} alternate; 1 step). State t is in slot
  // t % state_slots, step t's values in slot t % step_slots.
  int64_t state_slots, step_slots;
  // Steps whose gates are held: T for backward; for inference a chunk of inference_chunk_steps,
  // projected inside the time loop just before it reaches them.
  int64_t gate_steps;
};
// for_backward false: the inference layout, (G*C + 5)*B*H elements for LSTM (C steps in a chunk of
// gates), instead of 7*T*B*H + 2*B*H.
WorkspaceLayout workspace_layout(Mode mode, Sizes sz, bool for_backward = true);
// Steps in one chunk of inference's input projection: about 2048 rows of the (T*B, I) input, at least
// one step, at most T. One GEMM per chunk keeps the projection a large GEMM (OpenBLAS repacks W_ih
// for every chunk, so smaller chunks cost more), and the gates need 2048*G*H elements however long
// the sequence.
inline int64_t inference_chunk_steps(int64_t T, int64_t B) {
  constexpr int64_t kChunkRows = 2048;
  const int64_t steps = B > 0 ? (kChunkRows + B - 1) / B : T;
  return steps < T ? steps : T;
}

// How a long time loop learns that its caller wants it to stop (Ctrl-C in Python): the calling
// thread calls requested(context) about every 50 ms between steps. A loop that stopped early has
// written garbage; the caller discards it (the bindings raise KeyboardInterrupt).
struct Interrupt {
  bool (*requested)(void* context);
  void* context;
};

template <typename scalar_t>
struct ForwardArgs {
  // outputs
  scalar_t* y;          // (T, B, H) zero where t >= lengths[b]
  scalar_t* h_n;        // (B, H)
  scalar_t* c_n;        // (B, H) lstm only, else null
  scalar_t* workspace;  // (workspace_layout(mode, sizes).total)
  // inputs
  const scalar_t* x;        // (T, B, I)
  const scalar_t* w_ih;     // (G*H, I)
  const scalar_t* w_hh;     // (G*H, H)
  const scalar_t* b_ih;     // (G*H) or null (then b_hh is null too)
  const scalar_t* b_hh;     // (G*H) or null
  const scalar_t* h0;       // (B, H)
  const scalar_t* c0;       // (B, H) lstm only, else null
  const int64_t* lengths;   // (B) values in [0, T], or null
  // sizes
  Sizes sizes;
  // false: inference, the workspace has workspace_layout(mode, sizes, false) (not enough for backward)
  bool for_backward = true;
  const Interrupt* interrupt = nullptr;  // null: the loop runs to the end
};

template <typename scalar_t>
struct BackwardArgs {
  // outputs
  scalar_t* dx;     // (T, B, I)
  scalar_t* dw_ih;  // (G*H, I)
  scalar_t* dw_hh;  // (G*H, H)
  scalar_t* db_ih;  // (G*H) or null (no bias)
  scalar_t* db_hh;  // (G*H) or null; differs from db_ih only for gru (the n gate; not gru_reset_before)
  scalar_t* dh0;    // (B, H)
  scalar_t* dc0;    // (B, H) lstm only, else null
  // inputs
  const scalar_t* x;          // (T, B, I)
  const scalar_t* w_ih;       // (G*H, I)
  const scalar_t* w_hh;       // (G*H, H)
  const scalar_t* workspace;  // from the forward pass
  const scalar_t* dy;         // (T, B, H) or null (zero); ignored where t >= lengths[b]
  const scalar_t* dh_n;       // (B, H) or null (zero)
  const scalar_t* dc_n;       // (B, H) or null (zero); lstm only
  const int64_t* lengths;     // (B) or null, as in forward
  // sizes
  Sizes sizes;
  // Optional outputs (a tape that sums weight gradients over many calls itself, see
  // minirnn/fused.py FusedCellStep): when given, the gate gradients dL/d(pre-activation) are
  // written here (no lengths allowed), and dw_ih / dw_hh may be null: those GEMMs are skipped. Not for
  // gru_reset_before, whose dW_hn is dG_n^T (r * h_prev), no product with h_prev.
  scalar_t* dg_ih = nullptr;  // (T*B, G*H) input side (dX, dW_ih = dg_ih^T X, db_ih)
  scalar_t* dg_hh = nullptr;  // (T*B, G*H) recurrent side (dW_hh = dg_hh^T H_prev, db_hh); gru only, else dg_ih
  const Interrupt* interrupt = nullptr;  // null: the loop runs to the end
  // Optional output: every step's dL/dh_t (dy_t included), zero where t >= lengths[b] (gradient-flow
  // analysis, minirnn/analysis.py: the loop has each step's dh anyway).
  scalar_t* dh_steps = nullptr;  // (T, B, H)
};

// Dispatch on mode. The caller has validated every pointer's size.
template <typename scalar_t>
void rnn_forward(Mode mode, const ForwardArgs<scalar_t>& a);
template <typename scalar_t>
void rnn_backward(Mode mode, const BackwardArgs<scalar_t>& a);

// One entry pair per cell kind (elman.cpp, lstm.cpp, gru.cpp):
// name_forward(const ForwardArgs&) and name_backward(const BackwardArgs&).
#define MINIRNN_DECLARE_CELL_KERNELS(name)                   \
  template <typename scalar_t>                               \
  void name##_forward(const ForwardArgs<scalar_t>& a);       \
  template <typename scalar_t>                               \
  void name##_backward(const BackwardArgs<scalar_t>& a);
MINIRNN_DECLARE_CELL_KERNELS(elman_tanh)
MINIRNN_DECLARE_CELL_KERNELS(elman_relu)
MINIRNN_DECLARE_CELL_KERNELS(elman_sigmoid)
MINIRNN_DECLARE_CELL_KERNELS(lstm)
MINIRNN_DECLARE_CELL_KERNELS(gru)
MINIRNN_DECLARE_CELL_KERNELS(gru_reset_before)
#undef MINIRNN_DECLARE_CELL_KERNELS

}  // namespace minirnn
