// recurrence.h -- the time loop shared by every cell kind (Elman, LSTM, GRU): the drivers
// recurrence_forward and recurrence_backward, over a Cell (cell.h).
//
// Legend: T time steps, B batch, I input features, H hidden units, G gates per unit,
//         Tmax the longest length, N rows all steps compute (Tmax*B without lengths; lengths.h).
//
// Forward (the cuDNN / oneDNN recipe):
//   1. gates[t] = x[t] W_ih^T for all steps at once: one GEMM (N, I) x (I, G*H).
//   2. per step: gh = h_{t-1} W_hh^T, then ONE fused pointwise pass (the Cell) that adds the biases
//      and gh, applies the nonlinearities and writes activations, h_t (and c_t) to the workspace.
// Inference (no backward to come) keeps two steps of states, not all, and does step 1 a chunk of
// steps at a time inside the time loop, so its gates take a chunk's memory, not T steps'.
// Backward, steps in reverse:
//   3. per step: ONE fused pointwise pass (the Cell) turns dL/dh_t (and dL/dc_t) into the
//      gate gradients dG_t, then dL/dh_{t-1} += dG_t W_hh.
//   4. after the loop, large GEMMs over all steps: dW_ih = dG^T X, dW_hh = dG^T H_prev,
//      dX = dG W_ih, and db = column sums of dG.
//
// Threads: OpenMP regions with OpenBLAS single-threaded inside: the big GEMMs before and after the
// time loop, split into row/column blocks (gemm_block), and the time loop, shared among its team as
// loop_team.h says; each uses as many threads as its work is worth (gemm_threads, loop_threads).
// The per-step GEMMs run on PackedB (packed_gemm.h): the thread's part of W_hh is packed once per
// call, not once per step as OpenBLAS would.
#pragma once

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <new>

#include "cell.h"
#include "lengths.h"
#include "loop_team.h"
#include "packed_gemm.h"
#include "parallel.h"
#include "rnn.h"
#include "scratch.h"

namespace minirnn {

// The forward step's B operand for hidden units u: W_hh^T restricted to the G*u.size rows of
// W_hh (G*H, H) for those units, gate-major (column g * u.size + k is unit u.begin + k of
// gate g), so the slice's recurrent product is one call.
template <typename scalar_t>
void pack_w_hh_slice(PackedB<scalar_t>* packed, const scalar_t* w_hh, int64_t G, int64_t H, Range u) {
  packed->pack_columns(H, G * u.size, [=](int64_t n) { return w_hh + ((n / u.size) * H + u.begin + n % u.size) * H; });
}

// Inference's input projection of steps [t0, t1), by thread `tid` of the time loop's team of `nt`:
// gates (n, G*H) = x W_ih^T over the n rows those steps compute, packed one step after another
// (step t's row 0 at offset[t] - offset[t0]). With lengths the team first gathers the rows into
// x_chunk (n, I), each thread its share of the steps; without, they are contiguous in x.
template <typename scalar_t>
void project_chunk(int tid, int nt, scalar_t* gates, scalar_t* x_chunk, const ForwardArgs<scalar_t>& a,
                   const StepRows& rows, int64_t GH, int64_t t0, int64_t t1) {
  const int64_t B = a.sizes.B, I = a.sizes.I, n = rows.offset[t1] - rows.offset[t0];
  const scalar_t* xc = a.x + t0 * B * I;
  if (!rows.dense) {
    const Range r = split(t1 - t0, nt, tid);
    gather_step_rows(x_chunk + (rows.offset[t0 + r.begin] - rows.offset[t0]) * I, a.x, I, rows, B, t0 + r.begin,
                     t0 + r.begin + r.size);
    team_barrier(nt);
    xc = x_chunk;
  }
  project_block(tid, nt, gates, xc, a.w_ih, n, GH, I);
  team_barrier(nt);
}

// One thread of a time loop's team: its share of every step and its parts of W_hh, packed once for all
// steps (forward: W_hh^T's columns of its units, (H, G_h*u.size); backward: W_hh's columns of its units,
// (G_h*H, u.size); w_last likewise for W_hn, reset_before only).
template <typename scalar_t>
struct LoopThread {
  int tid, nt;
  StepShare my;
  PackedB<scalar_t> w_slice;
  PackedB<scalar_t> w_last;
};

// The forward pass's buffers and sizes, and its phases (recurrence_forward runs them in order).
template <typename scalar_t, typename Cell>
struct ForwardPass {
  static constexpr int64_t G = Cell::G, G_h = Cell::G_h;
  const ForwardArgs<scalar_t>& a;
  const int64_t T = a.sizes.T, B = a.sizes.B, I = a.sizes.I, H = a.sizes.H, GH = G * H, BH = B * H;
  const WorkspaceLayout L = workspace_layout(Cell::mode, a.sizes, a.for_backward);
  // Elman keeps no gates (backward needs only h): y doubles as its projection buffer.
  scalar_t* const gates = L.gates >= 0 ? a.workspace + L.gates : a.y;    // (T, B, G*H); inference: one chunk's
  scalar_t* const hs = a.workspace + L.hs;                                // (state_slots, B, H)
  scalar_t* const cs = Cell::has_c ? a.workspace + L.cs : nullptr;        // (state_slots, B, H)
  scalar_t* const tanh_c = Cell::has_c ? a.workspace + L.tanh_c : nullptr;  // (step_slots, B, H)
  scalar_t* const ghn = L.ghn >= 0 ? a.workspace + L.ghn : nullptr;       // (step_slots, B, H)
  const int64_t Tmax = max_length(a.lengths, T, B);
  const StepRows rows = step_rows(a.lengths, Tmax, B);
  const int64_t N = rows.total();
  Scratch<scalar_t> scratch{B * GH + GH};  // one allocation
  scalar_t* const gh = scratch.data();     // (B, G*H) recurrent projection, columns grouped per slice (gh_row)
  scalar_t* const zeros = gh + B * GH;     // (G*H) the biases of a layer without any
  const scalar_t* const b_ih = a.b_ih != nullptr ? a.b_ih : zeros;  // (G*H)
  const scalar_t* const b_hh = a.b_hh != nullptr ? a.b_hh : zeros;  // (G*H)
  // Inference with gates projects the input a chunk of C steps at a time, inside the time loop: gates then
  // holds the chunk's rows packed one step after another (step t's row 0 at offset[t] - offset[chunk start]).
  const bool chunked = !a.for_backward && L.gates >= 0;
  const int64_t C = L.gate_steps;
  Scratch<scalar_t> x_chunk{chunked && !rows.dense ? C * B * I : 0};  // (a chunk's rows, I) gathered
  // A single step (generation token by token, a cell step on the tape), or one row a step with a W_hh
  // larger than L2: the product streams W_hh from memory at every step either way, so packing it first
  // would only add a copy. Then each gate's block of W_hh goes straight to BLAS (gemv, one per row: with
  // two rows over many steps the packed product, reading W_hh once for both, was faster).
  const bool direct = Tmax == 1 || (B == 1 && size_t(GH * H) * sizeof(scalar_t) > kPackedCacheBytes);
  std::atomic<bool> out_of_memory{false};
  StopAt stop{a.interrupt};

  explicit ForwardPass(const ForwardArgs<scalar_t>& args) : a(args) {}

  // State t (h_t, c_t) and step t's saved values, in their slots (every step's for backward).
  scalar_t* state(scalar_t* base, int64_t t) const { return base + (t % L.state_slots) * BH; }
  scalar_t* saved(scalar_t* base, int64_t t) const { return base + (t % L.step_slots) * BH; }

  void start_states() {
    std::fill(zeros, zeros + GH, scalar_t(0));
    std::copy(a.h0, a.h0 + BH, hs);
    if (Cell::has_c) std::copy(a.c0, a.c0 + BH, cs);
  }

  // The input projection of the rows the steps compute, packed unless every step has all B rows.
  void project_inputs() {
    Scratch<scalar_t> packed(rows.dense ? 0 : N * (I + GH));
    if (!rows.dense) gather_step_rows(packed.data(), a.x, I, rows, B, 0, Tmax);
    const scalar_t* xp = rows.dense ? a.x : packed.data();       // (N, I)
    scalar_t* gp = rows.dense ? gates : packed.data() + N * I;  // (N, G*H)
#pragma omp parallel num_threads(gemm_threads(N * GH * I))
    {
      FlushDenormals ftz;
      project_block(omp_get_thread_num(), omp_get_num_threads(), gp, xp, a.w_ih, N, GH, I);
    }
    if (!rows.dense) scatter_step_rows(gates, gp, GH, rows, B);
  }

  void time_loop() {
#pragma omp parallel num_threads(loop_threads(B * GH * H))
    {
      FlushDenormals ftz;
      const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
      const bool by_rows = share_by_rows(nt, B, G, H, sizeof(scalar_t)) && !direct;
      LoopThread<scalar_t> th{tid, nt, step_share(tid, nt, B, H, a.lengths, by_rows), {}, {}};
      const Range u = th.my.units;
      const bool ready = direct || packed_in_every_thread(nt, &out_of_memory, [&] {  // or not needed packed
                           pack_w_hh_slice(&th.w_slice, a.w_hh, G_h, H, u);
                           if (Cell::reset_before) pack_w_hh_slice(&th.w_last, a.w_hh + G_h * H * H, 1, H, u);
                         });
      for (int64_t t = 0; ready && t < Tmax && !stop.reached(t); t++) step(th, t);
    }
  }

  void step(const LoopThread<scalar_t>& th, int64_t t) {
    const int64_t t0 = t - t % C;  // the first step of t's chunk (inference)
    if (chunked && t == t0) project_chunk_at(th, t0);
    const ForwardStep<scalar_t> s{chunked ? gates + (rows.offset[t] - rows.offset[t0]) * GH : gates + t * B * GH,
                                  gh,
                                  b_ih,
                                  b_hh,
                                  state(hs, t),
                                  Cell::has_c ? state(cs, t) : nullptr,
                                  state(hs, t + 1),
                                  Cell::has_c ? state(cs, t + 1) : nullptr,
                                  Cell::has_c ? saved(tanh_c, t) : nullptr,
                                  ghn != nullptr ? saved(ghn, t) : nullptr,
                                  G,
                                  H};
    const Range m = th.my.rows_among(rows.rows[t]);  // the rows this thread's product computes
    const bool mine = th.my.units.size > 0 && th.my.rows.size > 0;  // (the barrier of reset_before is everyone's)
    if (mine) recurrent_product(th, s, m);
    if constexpr (Cell::reset_before) reset_product(th, s, m, mine, t);
    if (mine) pointwise(th, s, t);
    end_step(th, t);
  }

  // By rows the chunk's barriers are the only ones, so the interrupt is asked there.
  void project_chunk_at(const LoopThread<scalar_t>& th, int64_t t0) {
    const int64_t t1 = std::min(Tmax, t0 + C);
    if (th.my.by_rows) stop.ask(th.tid, t1);
    if (th.my.by_rows && t0 > 0) team_barrier(th.nt);  // every thread is done with the last chunk's gates
    project_chunk(th.tid, th.nt, gates, x_chunk.data(), a, rows, GH, t0, t1);
  }

  // gh's first G_h gates = h_{t-1} W_hh^T, for this thread's rows m and units.
  void recurrent_product(const LoopThread<scalar_t>& th, const ForwardStep<scalar_t>& s, Range m) {
    const Range u = th.my.units;
    const scalar_t* h_rows = s.h_prev + m.begin * H;
    scalar_t* gh_rows = gh + m.begin * GH + G * u.begin;
    if (direct)  // gate g of the slice: columns [g * u.size, (g + 1) * u.size) of its part of gh
      for (int64_t g = 0; g < G_h; g++)
        gemm<scalar_t>(Trans::no, Trans::yes, m.size, u.size, H, scalar_t(1), h_rows, H,
                       a.w_hh + (g * H + u.begin) * H, H, scalar_t(0), gh_rows + g * u.size, GH);
    else
      th.w_slice.multiply(m.size, h_rows, H, gh_rows, GH, /*accumulate=*/false);
  }

  // reset_before: rh = r * h_{t-1} (the cell's reset pass), then gh's last gate = rh W_hn^T.
  void reset_product(const LoopThread<scalar_t>& th, const ForwardStep<scalar_t>& s, Range m, bool mine, int64_t t) {
    const Range u = th.my.units;
    scalar_t* gh_last = gh + m.begin * GH + G * u.begin + G_h * u.size;
    if (mine)
      for_each_run(a.lengths, t, th.my.rows, [&](Range run) { Cell::reset_rows(s, run, u); },
                   [&](int64_t b) { zero_units(s.ghn + b * H, u); });
    if (!th.my.by_rows) team_barrier(th.nt);  // every unit of rh written
    if (mine && direct)
      gemm<scalar_t>(Trans::no, Trans::yes, m.size, u.size, H, scalar_t(1), s.ghn + m.begin * H, H,
                     a.w_hh + (G_h * H + u.begin) * H, H, scalar_t(0), gh_last, GH);
    else if (mine)
      th.w_last.multiply(m.size, s.ghn + m.begin * H, H, gh_last, GH, /*accumulate=*/false);
  }

  // The cell's pass over this thread's share of step t, and y_t.
  void pointwise(const LoopThread<scalar_t>& th, const ForwardStep<scalar_t>& s, int64_t t) {
    const Range u = th.my.units;
    scalar_t* y = a.y + t * BH;  // (B, H)
    for_each_run(
        a.lengths, t, th.my.rows,
        [&](Range run) {
          Cell::forward_rows(s, run, u);
          for (int64_t b = run.begin; b < run.begin + run.size; b++) copy_units(y + b * H, s.h + b * H, u);
        },
        [&](int64_t b) {  // past the end: carry the state, output zero
          copy_units(s.h + b * H, s.h_prev + b * H, u);
          if (Cell::has_c) copy_units(s.c + b * H, s.c_prev + b * H, u);
          zero_units(y + b * H, u);
          if (s.tanh_c != nullptr) zero_units(s.tanh_c + b * H, u);
          if (s.ghn != nullptr) zero_units(s.ghn + b * H, u);
        });
  }

  // Shared by units, the team waits for all of h_t (asking about an interrupt just before); by rows there is
  // no barrier, and a chunked loop asks at its chunks' barriers instead.
  void end_step(const LoopThread<scalar_t>& th, int64_t t) {
    if (!th.my.by_rows) {
      stop.ask(th.tid, t + 1);
      team_barrier(th.nt);
    } else if (!chunked) {
      stop.ask(th.tid, t + 1);
    }
  }

  // Steps after every sequence has ended: outputs zero; for backward, the state carried and the saved
  // activations zero (so every element of the workspace it returns is written: the caller need not zero it).
  void fill_tail() {
    std::fill(a.y + Tmax * BH, a.y + T * BH, scalar_t(0));
    if (!a.for_backward) return;
    if (L.gates >= 0) std::fill(gates + Tmax * B * GH, gates + T * B * GH, scalar_t(0));
    if (tanh_c != nullptr) std::fill(tanh_c + Tmax * BH, tanh_c + T * BH, scalar_t(0));
    if (ghn != nullptr) std::fill(ghn + Tmax * BH, ghn + T * BH, scalar_t(0));
    for (int64_t t = Tmax; t < T; t++) {
      std::copy(hs + t * BH, hs + (t + 1) * BH, hs + (t + 1) * BH);
      if (Cell::has_c) std::copy(cs + t * BH, cs + (t + 1) * BH, cs + (t + 1) * BH);
    }
  }

  void final_states() {
    std::copy(state(hs, Tmax), state(hs, Tmax) + BH, a.h_n);
    if (Cell::has_c) std::copy(state(cs, Tmax), state(cs, Tmax) + BH, a.c_n);
  }
};

template <typename scalar_t, typename Cell>
void recurrence_forward(const ForwardArgs<scalar_t>& a) {
  ForwardPass<scalar_t, Cell> pass(a);
  pass.start_states();
  if (!pass.chunked) pass.project_inputs();  // chunked: a chunk at a time inside the time loop
  pass.time_loop();
  if (pass.out_of_memory.load()) throw std::bad_alloc();
  if (pass.stop.stopped()) return;  // the caller discards what was written
  pass.fill_tail();
  pass.final_states();
}

// The backward pass's buffers and sizes, and its phases (recurrence_backward runs them in order).
template <typename scalar_t, typename Cell>
struct BackwardPass {
  static constexpr int64_t G = Cell::G, G_h = Cell::G_h;
  const BackwardArgs<scalar_t>& a;
  const int64_t T = a.sizes.T, B = a.sizes.B, I = a.sizes.I, H = a.sizes.H, GH = G * H, BH = B * H;
  const WorkspaceLayout L = workspace_layout(Cell::mode, a.sizes);
  const scalar_t* const gates = L.gates >= 0 ? a.workspace + L.gates : nullptr;  // (T, B, G*H)
  const scalar_t* const hs = a.workspace + L.hs;                                  // (T+1, B, H)
  const scalar_t* const cs = Cell::has_c ? a.workspace + L.cs : nullptr;          // (T+1, B, H)
  const scalar_t* const tanh_c = Cell::has_c ? a.workspace + L.tanh_c : nullptr;  // (T, B, H)
  const scalar_t* const ghn = L.ghn >= 0 ? a.workspace + L.ghn : nullptr;         // (T, B, H)
  const int64_t Tmax = max_length(a.lengths, T, B);
  const StepRows rows = step_rows(a.lengths, Tmax, B);
  const int64_t N = rows.total();  // rows the steps compute (Tmax * B when dense)
  const int64_t n_dg = N * GH;
  const int64_t n_state = (Cell::has_c ? 4 : 2) * BH + (Cell::reset_before ? BH : 0);
  // One allocation, not zeroed: the loop writes every element of dG (into the caller's dg_* when given).
  const int64_t n_dg_scratch = a.dg_ih != nullptr ? 0 : (Cell::split_dgh ? 2 : 1) * n_dg;
  Scratch<scalar_t> scratch{n_dg_scratch + n_state};
  scalar_t* const dgx = a.dg_ih != nullptr ? a.dg_ih : scratch.data();  // (N, G*H) packed rows: step t's at offset[t]
  scalar_t* const dgh = !Cell::split_dgh ? dgx : a.dg_ih != nullptr ? a.dg_hh : dgx + n_dg;  // (N, G*H)
  scalar_t* const dh_buf = scratch.data() + n_dg_scratch;              // (2, B, H) ping-pong dL/dh
  scalar_t* const dc_buf = Cell::has_c ? dh_buf + 2 * BH : nullptr;    // (2, B, H) ping-pong dL/dc
  scalar_t* const drh = Cell::reset_before ? dh_buf + 2 * BH : nullptr;  // (B, H) dL/d(r * h_{t-1}) of a step
  // A single step (a cell step on the tape) reads W_hh once either way, so it gives it to BLAS as it is.
  const bool direct = Tmax == 1;
  std::atomic<bool> out_of_memory{false};
  StopAt stop{a.interrupt};

  explicit BackwardPass(const BackwardArgs<scalar_t>& args) : a(args) {}

  void start_gradients() {
    std::fill(dh_buf, dh_buf + n_state, scalar_t(0));
    if (a.dh_n != nullptr) std::copy(a.dh_n, a.dh_n + BH, dh_buf);
    if (Cell::has_c && a.dc_n != nullptr) std::copy(a.dc_n, a.dc_n + BH, dc_buf);
  }

  void time_loop() {
#pragma omp parallel num_threads(loop_threads(B * GH * H))
    {
      FlushDenormals ftz;
      const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
      const bool by_rows = share_by_rows(nt, B, G, H, sizeof(scalar_t));
      LoopThread<scalar_t> th{tid, nt, step_share(tid, nt, B, H, a.lengths, by_rows), {}, {}};
      const Range u = th.my.units;
      const bool packed = direct || packed_in_every_thread(nt, &out_of_memory, [&] {
                            th.w_slice.pack_rows(G_h * H, u.size, a.w_hh + u.begin, H);
                            if (Cell::reset_before) th.w_last.pack_rows(H, u.size, a.w_hh + G_h * H * H + u.begin, H);
                          });
      for (int64_t k = 0; packed && k < Tmax && !stop.reached(k); k++) step(th, k);
    }
  }

  // Step t = Tmax - 1 - k. A thread reads and writes only its own share of dh/dc and dG_t before the
  // barrier (by units); after it, its GEMM reads all rows of dG_t and writes its own columns of dh_prev
  // (by rows: its own rows).
  void step(const LoopThread<scalar_t>& th, int64_t k) {
    const int64_t t = Tmax - 1 - k, cur = k % 2, nxt = 1 - cur;
    BackwardStep<scalar_t> s{dgx + rows.offset[t] * GH,
                             dgh + rows.offset[t] * GH,
                             dh_buf + nxt * BH,
                             Cell::has_c ? dc_buf + nxt * BH : nullptr,
                             dh_buf + cur * BH,
                             Cell::has_c ? dc_buf + cur * BH : nullptr,
                             gates != nullptr ? gates + t * B * GH : nullptr,
                             hs + (t + 1) * BH,
                             hs + t * BH,
                             Cell::has_c ? cs + t * BH : nullptr,
                             Cell::has_c ? tanh_c + t * BH : nullptr,
                             ghn != nullptr ? ghn + t * BH : nullptr,
                             drh,
                             G,
                             H};
    pointwise(th, s, dh_buf + cur * BH, t);
    const Range m = th.my.rows_among(rows.rows[t]);  // the rows this thread's products compute
    if constexpr (Cell::reset_before) reset_backward(th, s, m, t);
    stop.ask(th.tid, k + 1);  // by units just before the barrier; by rows the loop has none
    recurrent_product(th, s, m);
  }

  // dh (B, H), the writable alias of s.dh, gets dy_t; then the cell's pass over this thread's share.
  void pointwise(const LoopThread<scalar_t>& th, const BackwardStep<scalar_t>& s, scalar_t* dh, int64_t t) {
    const Range u = th.my.units;
    for_each_run(
        a.lengths, t, th.my.rows,
        [&](Range run) {
          if (a.dy != nullptr)
            for (int64_t b = run.begin; b < run.begin + run.size; b++) {
              const scalar_t* dy = a.dy + (t * B + b) * H;  // (H)
              for (int64_t j = u.begin; j < u.begin + u.size; j++) dh[b * H + j] += dy[j];
            }
          for (int64_t b = run.begin; a.dh_steps != nullptr && b < run.begin + run.size; b++)
            copy_units(a.dh_steps + (t * B + b) * H, dh + b * H, u);
          Cell::backward_rows(s, run, u);
        },
        [&](int64_t b) {  // past the end: no gate gradient, the state's gradient passes straight through
          if (a.dh_steps != nullptr) zero_units(a.dh_steps + (t * B + b) * H, u);
          for (int64_t g = 0; g < G && b < rows.rows[t]; g++) {
            zero_units(s.dgx + b * GH + g * H, u);
            zero_units(s.dgh + b * GH + g * H, u);
          }
          copy_units(s.dh_prev + b * H, s.dh + b * H, u);
          if (Cell::has_c) copy_units(s.dc_prev + b * H, s.dc + b * H, u);
        });
  }

  // reset_before: drh = dG_n W_hn, then dr and drh * r (a row past its end: nothing).
  void reset_backward(const LoopThread<scalar_t>& th, const BackwardStep<scalar_t>& s, Range m, int64_t t) {
    const Range u = th.my.units;
    if (!th.my.by_rows) team_barrier(th.nt);  // every unit of dG_n written
    const scalar_t* dgn = s.dgh + m.begin * GH + G_h * H;  // (m.size, H) with leading dimension G*H
    if (direct)
      gemm<scalar_t>(Trans::no, Trans::no, m.size, u.size, H, scalar_t(1), dgn, GH,
                     a.w_hh + G_h * H * H + u.begin, H, scalar_t(0), drh + m.begin * H + u.begin, H);
    else
      th.w_last.multiply(m.size, dgn, GH, drh + m.begin * H + u.begin, H, /*accumulate=*/false);
    for_each_run(a.lengths, t, th.my.rows, [&](Range run) { Cell::reset_backward_rows(s, run, u); }, [](int64_t) {});
  }

  // dL/dh_{t-1} += dG_t W_hh for this thread's rows m and units, once every unit of dG_t is written.
  void recurrent_product(const LoopThread<scalar_t>& th, const BackwardStep<scalar_t>& s, Range m) {
    const Range u = th.my.units;
    if (!th.my.by_rows) team_barrier(th.nt);
    if (direct)
      gemm<scalar_t>(Trans::no, Trans::no, m.size, u.size, G_h * H, scalar_t(1), s.dgh + m.begin * GH, GH,
                     a.w_hh + u.begin, H, scalar_t(1), s.dh_prev + m.begin * H + u.begin, H);
    else
      th.w_slice.multiply(m.size, s.dgh + m.begin * GH, GH, s.dh_prev + m.begin * H + u.begin, H,
                          /*accumulate=*/true);
  }

  // The inputs and previous states (and r * h_{t-1}) of the computed rows, and their dX, packed like dG
  // unless dense; then the gradients of the weights, the input and the biases over all steps at once.
  void weight_gradients() {
    const int64_t n_rh = Cell::reset_before ? N * H : 0;
    Scratch<scalar_t> packed(rows.dense ? 0 : N * (2 * I + H) + n_rh);
    if (!rows.dense) {
      gather_step_rows(packed.data(), a.x, I, rows, B, 0, Tmax);
      gather_step_rows(packed.data() + N * I, hs, H, rows, B, 0, Tmax);
      if (Cell::reset_before) gather_step_rows(packed.data() + N * (2 * I + H), ghn, H, rows, B, 0, Tmax);
    }
    const scalar_t* xp = rows.dense ? a.x : packed.data();                     // (N, I)
    const scalar_t* hp = rows.dense ? hs : packed.data() + N * I;              // (N, H) h_{t-1} of each row
    scalar_t* dxp = rows.dense ? a.dx : packed.data() + N * (I + H);           // (N, I)
    const scalar_t* rhp = rows.dense ? ghn : packed.data() + N * (2 * I + H);  // (N, H) reset_before: r * h_{t-1}
#pragma omp parallel num_threads(gemm_threads(N * GH * (I + (a.dw_ih != nullptr ? I : 0) + (a.dw_hh != nullptr ? H : 0))))
    {
      FlushDenormals ftz;
      gradient_gemms(omp_get_thread_num(), omp_get_num_threads(), xp, hp, rhp, dxp);
    }
    if (!rows.dense) scatter_step_rows(a.dx, dxp, I, rows, B);
  }

  // Thread tid of nt: its blocks of dW_ih = dG^T X, dW_hh = dG^T H_prev, dX = dG W_ih and db = column sums of dG.
  void gradient_gemms(int tid, int nt, const scalar_t* xp, const scalar_t* hp, const scalar_t* rhp, scalar_t* dxp) {
    if (a.dw_ih != nullptr)
      gemm_block<scalar_t>(tid, nt, Trans::yes, Trans::no, GH, I, N, scalar_t(1), dgx, GH, xp, I, scalar_t(0), a.dw_ih,
                           I);
    if (a.dw_hh != nullptr)  // the gates reading h_{t-1}; reset_before's last reads r * h_{t-1}
      gemm_block<scalar_t>(tid, nt, Trans::yes, Trans::no, Cell::G_h * H, H, N, scalar_t(1), dgh, GH, hp, H,
                           scalar_t(0), a.dw_hh, H);
    if (a.dw_hh != nullptr && Cell::reset_before)
      gemm_block<scalar_t>(tid, nt, Trans::yes, Trans::no, H, H, N, scalar_t(1), dgh + Cell::G_h * H, GH, rhp, H,
                           scalar_t(0), a.dw_hh + Cell::G_h * H * H, H);
    gemm_block<scalar_t>(tid, nt, Trans::no, Trans::no, N, I, GH, scalar_t(1), dgx, GH, a.w_ih, I, scalar_t(0), dxp,
                         I);
    if (a.db_ih != nullptr) column_sums_block(tid, nt, a.db_ih, dgx, N, GH);
    if (a.db_hh != nullptr && Cell::split_dgh) column_sums_block(tid, nt, a.db_hh, dgh, N, GH);
    if (a.db_hh != nullptr && !Cell::split_dgh) {  // one dG for both biases: copy the sums, not a 2nd pass over dG
      const Range cols = split(GH, nt, tid);        // column_sums_block's columns of this thread
      std::copy(a.db_ih + cols.begin, a.db_ih + cols.begin + cols.size, a.db_hh + cols.begin);
    }
  }

  // Steps after every sequence ended, and the gradients of the initial states.
  void fill_tail_and_initial() {
    std::fill(a.dx + Tmax * B * I, a.dx + T * B * I, scalar_t(0));
    if (a.dh_steps != nullptr) std::fill(a.dh_steps + Tmax * BH, a.dh_steps + T * BH, scalar_t(0));
    std::copy(dh_buf + (Tmax % 2) * BH, dh_buf + (Tmax % 2 + 1) * BH, a.dh0);
    if (Cell::has_c) std::copy(dc_buf + (Tmax % 2) * BH, dc_buf + (Tmax % 2 + 1) * BH, a.dc0);
  }
};

template <typename scalar_t, typename Cell>
void recurrence_backward(const BackwardArgs<scalar_t>& a) {
  BackwardPass<scalar_t, Cell> pass(a);
  pass.start_gradients();
  pass.time_loop();
  if (pass.out_of_memory.load()) throw std::bad_alloc();
  if (pass.stop.stopped()) return;  // the caller discards what was written
  pass.weight_gradients();
  pass.fill_tail_and_initial();
}

}  // namespace minirnn

// Defines name_forward / name_backward for a Cell and instantiates them for float and double.
#define MINIRNN_DEFINE_CELL_KERNELS(name, Cell)                                                        \
  template <typename scalar_t>                                                                         \
  void name##_forward(const ForwardArgs<scalar_t>& a) { recurrence_forward<scalar_t, Cell>(a); }      \
  template <typename scalar_t>                                                                         \
  void name##_backward(const BackwardArgs<scalar_t>& a) { recurrence_backward<scalar_t, Cell>(a); }   \
  template void name##_forward<float>(const ForwardArgs<float>&);                                      \
  template void name##_forward<double>(const ForwardArgs<double>&);                                    \
  template void name##_backward<float>(const BackwardArgs<float>&);                                    \
  template void name##_backward<double>(const BackwardArgs<double>&);
