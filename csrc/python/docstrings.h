// docstrings.h -- the longer docstrings of minirnn._C's functions (module.cpp registers them;
// a one-line docstring stands beside its function there).
#pragma once

namespace minirnn::python::doc {

inline constexpr const char* kMatmul =
    R"doc(C (M, N) = op(a) @ op(b) on the kernels' OpenMP team (single-threaded BLAS per block of C).

a (M, K), or (K, M) with transpose_a; b (K, N), or (N, K) with transpose_b; both float32 or both
float64, any strides (transpose views are read without a copy). K = 0 gives zeros. One thread when
the product is small (as the kernels' big GEMMs).)doc";

inline constexpr const char* kRnnForward = R"doc(Fused forward pass of one single-direction recurrent layer over all T steps.

mode: 'rnn_tanh' | 'rnn_relu' | 'rnn_sigmoid' | 'lstm' | 'gru' | 'gru_reset_before' (G = 1, 1, 1, 4, 3, 3
gates; PyTorch's gate order; gru_reset_before: n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)).
x (T, B, I); w_ih (G*H, I); w_hh (G*H, H); b_ih, b_hh (G*H,) or both None; h0 (B, H);
c0 (B, H) for 'lstm', else None; lengths None or integer (B,) in [0, T], any order.
All float arrays float32 or all float64.

Returns (y (T, B, H), h_n (B, H), c_n (B, H) or None, saved): saved is a SavedLayer, all that
rnn_backward needs (the checked arguments and the workspace).
need_workspace=False (inference): saved is None (no workspace kept), and the kernel keeps
two steps of states instead of every step's and the gates of a chunk of C = min(T, ceil(2048 / B))
steps (LSTM: (4*C + 5)*B*H elements, not 7*T*B*H + 2*B*H).
y[t, b] = 0 for t >= lengths[b]; h_n[b] is the state after step lengths[b] - 1 (h0 if 0).
NaN inputs propagate as NaN.)doc";

inline constexpr const char* kRnnBackward = R"doc(Fused backward-through-time of rnn_forward.

saved: the SavedLayer rnn_forward returned (need_workspace=True; it may serve several backward calls);
dy (T, B, H), dh_n (B, H), dc_n (B, H, lstm only): gradients of the loss, each may be None (zero).
dy at padded positions (t >= lengths[b]) is ignored.

Returns (dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0); db_* are None without bias, dc0 None unless lstm.
gate_grads=True (forward's lengths must have been None): dw_ih and dw_hh are not computed; in their
places come the gate gradients dg_ih and dg_hh (T*B, G*H), with dw_ih = dg_ih^T x and
dw_hh = dg_hh^T h_prev (dg_hh is None, i.e. equal to dg_ih, unless mode is 'gru'), so a caller
that sums weight gradients over many calls can do it in one GEMM. Not for 'gru_reset_before'.
dh_steps: None, or a writable C-contiguous (T, B, H) array of x's dtype, filled in place with every
step's dL/dh_t (dy_t included; zero where t >= lengths[b]).)doc";

inline constexpr const char* kLstmProjForward = R"doc(Fused forward pass of one single-direction projected LSTM layer (PyTorch's proj_size = P).

m_t = o * tanh(c_t) as the LSTM's h_t, then h_t = m_t w_hr^T. x (T, B, I); w_ih (4H, I); w_hh (4H, P);
w_hr (P, H) with 0 < P < H; b_ih, b_hh (4H,) or both None; h0 (B, P); c0 (B, H); lengths as rnn_forward.
Returns (y (T, B, P), h_n (B, P), c_n (B, H), saved (a SavedLayer, for lstm_proj_backward)).)doc";

inline constexpr const char* kLstmProjBackward = R"doc(Fused backward-through-time of lstm_proj_forward.

saved: the SavedLayer lstm_proj_forward returned; dy (T, B, P), dh_n (B, P), dc_n (B, H): each may be None (zero); dy
at padded positions is ignored. Returns (dx, dw_ih, dw_hh, dw_hr, db_ih, db_hh, dh0, dc0); db_* None
without bias.)doc";

inline constexpr const char* kSavedLayer = R"doc(What rnn_forward or lstm_proj_forward hands its backward.

The forward's arguments as it checked them and the kernels read them (contiguous, x's dtype; lengths
as int64) and the workspace it wrote, so that backward checks only its own arguments. Returned by
the forward functions, not constructible; it keeps those arrays alive (nbytes) until it is dropped.
Backward reads it without changing it, so one may serve several backward calls.)doc";

}  // namespace minirnn::python::doc
