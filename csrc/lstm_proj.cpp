// lstm_proj.cpp -- the fused projected LSTM (lstm_proj.h): forward and backward through time.
//
// Legend: T steps, B batch, I input features, H hidden units, P proj_size, G = 4.
//
// Forward: gates = x W_ih^T for all steps (one GEMM), then per step
//   gh = h_{t-1} W_hh^T (B, 4H);  LstmCell's pointwise pass writes the gates, c_t, tanh(c_t) and
//   m_t = o * tanh(c_t);  h_t = m_t W_hr^T (B, P).
// Backward, steps in reverse, dh = dL/dh_t (B, P) (dy_t included), dc = dL/dc_t:
//   dm = dh W_hr (B, H);  LstmCell's pointwise pass turns (dm, dc) into dG_t and dL/dc_{t-1};
//   dL/dh_{t-1} = dG_t W_hh (B, P).
// After the loop, GEMMs over all T*B rows: dW_ih = dG^T X, dW_hh = dG^T H_prev, dX = dG W_ih,
// dW_hr = dH^T M (dH: every step's dh), db = column sums of dG.
//
// Threads: each thread of the time loop owns a block of batch rows for every step (the rows'
// recurrences are independent, so the loop has no barrier) and runs its three products as
// single-threaded BLAS calls on its rows. A row past its sequence's end computes nothing: its
// state (and in backward its gradient) is carried, its m, dh and dG rows are zero, so the GEMMs
// over all rows after the loop need no packing.
#include "lstm_proj.h"

#include <omp.h>

#include <algorithm>

#include "lengths.h"
#include "loop_team.h"
#include "lstm_cell.h"
#include "parallel.h"
#include "scratch.h"

namespace minirnn {

ProjWorkspaceLayout lstm_proj_workspace_layout(ProjSizes s) {
  const int64_t TBH = s.T * s.B * s.H, BH = s.B * s.H;
  ProjWorkspaceLayout L{};
  L.gates = 0;
  L.cs = L.gates + 4 * TBH;
  L.tanh_c = L.cs + TBH + BH;
  L.ms = L.tanh_c + TBH;
  L.hs = L.ms + TBH;
  L.total = L.hs + (s.T + 1) * s.B * s.P;
  return L;
}

namespace {

// Threads of the time loop: as many as a step's recurrent GEMM is worth, at most one per row.
int proj_loop_threads(ProjSizes s) {
  return static_cast<int>(std::max<int64_t>(1, std::min<int64_t>(loop_threads(s.B * 4 * s.H * s.P), s.B)));
}

// Runs step(k, rows) for k = 0 .. T-1 in order on the time loop's team, each thread on its own block
// of batch rows (no barrier: the rows' recurrences are independent). Returns false if the caller
// asked it to stop (Interrupt) before the end.
template <typename Step>
bool run_steps_by_rows(ProjSizes sz, const Interrupt* interrupt, Step step) {
  StopAt stop(interrupt);
#pragma omp parallel num_threads(proj_loop_threads(sz))
  {
    FlushDenormals ftz;
    const int tid = omp_get_thread_num();
    const Range r = split(sz.B, omp_get_num_threads(), tid);
    for (int64_t k = 0; k < sz.T && !stop.reached(k); k++) {
      step(k, r);
      stop.ask(tid, k + 1);  // the threads share no barrier
    }
  }
  return !stop.stopped();
}

// One step of the forward pass for rows r (one thread's); t is the step.
template <typename scalar_t>
void forward_step(const ProjForwardArgs<scalar_t>& a, const ProjWorkspaceLayout& L, scalar_t* gh,
                  const scalar_t* b_ih, const scalar_t* b_hh, int64_t t, Range r) {
  const int64_t B = a.sizes.B, H = a.sizes.H, P = a.sizes.P, GH = 4 * H, BH = B * H;
  scalar_t* ws = a.workspace;
  const scalar_t* h_prev = ws + L.hs + t * B * P;  // (B, P)
  scalar_t* h = ws + L.hs + (t + 1) * B * P;       // (B, P)
  scalar_t* m = ws + L.ms + t * BH;                // (B, H)
  gemm<scalar_t>(Trans::no, Trans::yes, r.size, GH, P, scalar_t(1), h_prev + r.begin * P, P, a.w_hh, P, scalar_t(0),
                 gh + r.begin * GH, GH);
  const ForwardStep<scalar_t> s{ws + L.gates + t * B * GH, gh, b_ih, b_hh, h_prev, ws + L.cs + t * BH,
                                m, ws + L.cs + (t + 1) * BH, ws + L.tanh_c + t * BH, nullptr, 4, H};
  for (int64_t b = r.begin; b < r.begin + r.size; b++) {
    if (active(a.lengths, b, t)) {
      LstmCell::forward_rows(s, Range{b, 1}, Range{0, H});
    } else {  // past the end: carry c, keep zeros where backward reads
      std::copy(s.c_prev + b * H, s.c_prev + (b + 1) * H, s.c + b * H);
      std::fill(s.gates + b * GH, s.gates + (b + 1) * GH, scalar_t(0));
      std::fill(s.tanh_c + b * H, s.tanh_c + (b + 1) * H, scalar_t(0));
      std::fill(m + b * H, m + (b + 1) * H, scalar_t(0));
    }
  }
  gemm<scalar_t>(Trans::no, Trans::yes, r.size, P, H, scalar_t(1), m + r.begin * H, H, a.w_hr, H, scalar_t(0),
                 h + r.begin * P, P);
  scalar_t* y = a.y + t * B * P;  // (B, P)
  for (int64_t b = r.begin; b < r.begin + r.size; b++) {
    if (active(a.lengths, b, t)) {
      std::copy(h + b * P, h + (b + 1) * P, y + b * P);
    } else {  // past the end: carry h, output zero
      std::copy(h_prev + b * P, h_prev + (b + 1) * P, h + b * P);
      std::fill(y + b * P, y + (b + 1) * P, scalar_t(0));
    }
  }
}

}  // namespace

template <typename scalar_t>
void lstm_proj_forward(const ProjForwardArgs<scalar_t>& a) {
  const ProjSizes sz = a.sizes;
  const int64_t T = sz.T, B = sz.B, I = sz.I, H = sz.H, P = sz.P, GH = 4 * H;
  const ProjWorkspaceLayout L = lstm_proj_workspace_layout(sz);
  Scratch<scalar_t> scratch(B * GH + GH);
  scalar_t* gh = scratch.data();  // (B, 4H) h_{t-1} W_hh^T
  scalar_t* zeros = gh + B * GH;  // (4H)
  std::fill(zeros, zeros + GH, scalar_t(0));
  const scalar_t* b_ih = a.b_ih != nullptr ? a.b_ih : zeros;
  const scalar_t* b_hh = a.b_hh != nullptr ? a.b_hh : zeros;
  std::copy(a.h0, a.h0 + B * P, a.workspace + L.hs);
  std::copy(a.c0, a.c0 + B * H, a.workspace + L.cs);
#pragma omp parallel num_threads(gemm_threads(T * B * GH * I))
  {
    FlushDenormals ftz;
    project_block(omp_get_thread_num(), omp_get_num_threads(), a.workspace + L.gates, a.x, a.w_ih, T * B, GH, I);
  }
  if (!run_steps_by_rows(sz, a.interrupt, [&](int64_t t, Range r) { forward_step(a, L, gh, b_ih, b_hh, t, r); }))
    return;
  const scalar_t* h_T = a.workspace + L.hs + T * B * P;
  const scalar_t* c_T = a.workspace + L.cs + T * B * H;
  std::copy(h_T, h_T + B * P, a.h_n);
  std::copy(c_T, c_T + B * H, a.c_n);
}

namespace {

// The backward loop's buffers: the gradients of every step and the ping-pong state gradients.
template <typename scalar_t>
struct ProjBackwardBuffers {
  scalar_t* dG;     // (T, B, 4H) dL/d(gate pre-activations)
  scalar_t* dH;     // (T, B, P) dL/dh_t, zero past a sequence's end
  scalar_t* dh;     // (2, B, P) ping-pong dL/dh
  scalar_t* dc;     // (2, B, H) ping-pong dL/dc
  scalar_t* dm;     // (B, H) dL/dm_t
  scalar_t* spare;  // (B, H) the cell's dh_prev output (all of dL/dh_{t-1} comes from the W_hh product here)
};

// One step of the backward pass for rows r; k counts steps from the last (t = T - 1 - k).
template <typename scalar_t>
void backward_step(const ProjBackwardArgs<scalar_t>& a, const ProjWorkspaceLayout& L,
                   const ProjBackwardBuffers<scalar_t>& buf, int64_t k, Range r) {
  const int64_t T = a.sizes.T, B = a.sizes.B, H = a.sizes.H, P = a.sizes.P, GH = 4 * H, BH = B * H;
  const int64_t t = T - 1 - k, cur = k % 2, nxt = 1 - cur;
  scalar_t* dh = buf.dh + cur * B * P;        // (B, P)
  scalar_t* dh_prev = buf.dh + nxt * B * P;   // (B, P)
  scalar_t* dH = buf.dH + t * B * P;          // (B, P)
  scalar_t* dG = buf.dG + t * B * GH;         // (B, 4H)
  for (int64_t b = r.begin; b < r.begin + r.size; b++) {
    if (!active(a.lengths, b, t)) {
      std::fill(dH + b * P, dH + (b + 1) * P, scalar_t(0));
      continue;
    }
    for (int64_t j = 0; a.dy != nullptr && j < P; j++) dh[b * P + j] += a.dy[(t * B + b) * P + j];
    std::copy(dh + b * P, dh + (b + 1) * P, dH + b * P);
  }
  gemm<scalar_t>(Trans::no, Trans::no, r.size, H, P, scalar_t(1), dH + r.begin * P, P, a.w_hr, H, scalar_t(0),
                 buf.dm + r.begin * H, H);
  const scalar_t* ws = a.workspace;
  const BackwardStep<scalar_t> s{dG, dG, buf.spare, buf.dc + nxt * BH, buf.dm, buf.dc + cur * BH,
                                 ws + L.gates + t * B * GH, nullptr, nullptr, ws + L.cs + t * BH,
                                 ws + L.tanh_c + t * BH, nullptr, nullptr, 4, H};
  for (int64_t b = r.begin; b < r.begin + r.size; b++) {
    if (active(a.lengths, b, t)) {
      LstmCell::backward_rows(s, Range{b, 1}, Range{0, H});
    } else {  // past the end: no gate gradient, dL/dc passes straight through
      std::fill(dG + b * GH, dG + (b + 1) * GH, scalar_t(0));
      std::copy(s.dc + b * H, s.dc + (b + 1) * H, s.dc_prev + b * H);
    }
  }
  gemm<scalar_t>(Trans::no, Trans::no, r.size, P, GH, scalar_t(1), dG + r.begin * GH, GH, a.w_hh, P, scalar_t(0),
                 dh_prev + r.begin * P, P);
  for (int64_t b = r.begin; b < r.begin + r.size; b++)  // past the end: dL/dh passes straight through
    if (!active(a.lengths, b, t)) std::copy(dh + b * P, dh + (b + 1) * P, dh_prev + b * P);
}

}  // namespace

template <typename scalar_t>
void lstm_proj_backward(const ProjBackwardArgs<scalar_t>& a) {
  const ProjSizes sz = a.sizes;
  const int64_t T = sz.T, B = sz.B, I = sz.I, H = sz.H, P = sz.P, GH = 4 * H, BH = B * H, N = T * B;
  const ProjWorkspaceLayout L = lstm_proj_workspace_layout(sz);
  Scratch<scalar_t> scratch(N * (GH + P) + 2 * B * P + 4 * BH);  // one allocation
  scalar_t* p = scratch.data();
  const ProjBackwardBuffers<scalar_t> buf{p, p + N * GH, p + N * (GH + P), p + N * (GH + P) + 2 * B * P,
                                          p + N * (GH + P) + 2 * B * P + 2 * BH,
                                          p + N * (GH + P) + 2 * B * P + 3 * BH};
  std::fill(buf.dh, buf.dh + 2 * B * P + 4 * BH, scalar_t(0));
  if (a.dh_n != nullptr) std::copy(a.dh_n, a.dh_n + B * P, buf.dh);
  if (a.dc_n != nullptr) std::copy(a.dc_n, a.dc_n + BH, buf.dc);
  if (!run_steps_by_rows(sz, a.interrupt, [&](int64_t k, Range r) { backward_step(a, L, buf, k, r); })) return;
  const scalar_t* hp = a.workspace + L.hs;  // (T, B, P) h_{t-1} of each row
  const scalar_t* mp = a.workspace + L.ms;  // (T, B, H)
#pragma omp parallel num_threads(gemm_threads(N * (GH * (2 * I + P) + P * H)))
  {
    FlushDenormals ftz;
    const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
    gemm_block<scalar_t>(tid, nt, Trans::yes, Trans::no, GH, I, N, scalar_t(1), buf.dG, GH, a.x, I, scalar_t(0),
                         a.dw_ih, I);
    gemm_block<scalar_t>(tid, nt, Trans::yes, Trans::no, GH, P, N, scalar_t(1), buf.dG, GH, hp, P, scalar_t(0),
                         a.dw_hh, P);
    gemm_block<scalar_t>(tid, nt, Trans::yes, Trans::no, P, H, N, scalar_t(1), buf.dH, P, mp, H, scalar_t(0),
                         a.dw_hr, H);
    gemm_block<scalar_t>(tid, nt, Trans::no, Trans::no, N, I, GH, scalar_t(1), buf.dG, GH, a.w_ih, I, scalar_t(0),
                         a.dx, I);
    if (a.db_ih != nullptr) column_sums_block(tid, nt, a.db_ih, buf.dG, N, GH);
  }
  if (a.db_hh != nullptr) std::copy(a.db_ih, a.db_ih + GH, a.db_hh);
  std::copy(buf.dh + (T % 2) * B * P, buf.dh + (T % 2 + 1) * B * P, a.dh0);
  std::copy(buf.dc + (T % 2) * BH, buf.dc + (T % 2 + 1) * BH, a.dc0);
}

template void lstm_proj_forward<float>(const ProjForwardArgs<float>&);
template void lstm_proj_forward<double>(const ProjForwardArgs<double>&);
template void lstm_proj_backward<float>(const ProjBackwardArgs<float>&);
template void lstm_proj_backward<double>(const ProjBackwardArgs<double>&);

}  // namespace minirnn
