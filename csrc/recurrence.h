// recurrence.h -- the time loop shared by every cell kind (Elman, LSTM, GRU).
//
// Legend: T time steps, B batch, I input features, H hidden units, G gates per unit.
//
// Forward (the cuDNN / oneDNN recipe):
//   1. gates[t] = x[t] W_ih^T for all steps at once: one GEMM (N, I) x (I, G*H) over the
//      N rows the steps compute (T*B without lengths; see StepRows).
//   2. per step: gh = h_{t-1} W_hh^T, then ONE fused pointwise pass (the Cell) that adds
//      b_ih + gh + b_hh, applies the nonlinearities and writes activations, h_t (and c_t) to
//      the workspace. (Adding b_ih here, not in step 1, saves writing it into all N rows
//      before the GEMM: 0.99x the time at LSTM T100 B64 H256, 1 thread, training and inference.)
// Inference (no backward to come) keeps two steps of states, not all, and does step 1 a chunk of
// steps at a time inside the time loop, so its gates take a chunk's memory, not T steps'.
// Backward, steps in reverse:
//   3. per step: ONE fused pointwise pass (the Cell) turns dL/dh_t (and dL/dc_t) into the
//      gate gradients dG_t, then dL/dh_{t-1} += dG_t W_hh.
//   4. after the loop, large GEMMs over all steps: dW_ih = dG^T X, dW_hh = dG^T H_prev,
//      dX = dG W_ih, and db = column sums of dG.
//
// Threads: OpenMP regions with OpenBLAS single-threaded inside: the big GEMMs before and
// after the time loop, split into row/column blocks (gemm_block), and the time loop each use
// as many threads as their work is worth splitting over (gemm_threads, loop_threads).
// In the time loop each thread owns a share of every step (StepShare): either a slice of hidden
// units with ALL the gates of those units, for all rows (then one barrier per step), or, with
// enough rows and a small W_hh, a block of batch rows with all units (then no barrier: the rows'
// recurrences are independent). It does its share's recurrent GEMM and pointwise pass back to
// back. The per-step GEMMs run on
// PackedB (packed_gemm.h): the thread's part of W_hh is packed once per call, not once per
// step as OpenBLAS would. Every output element is one thread's full dot product (no
// cross-thread reductions), so results agree across thread counts to rounding (OpenBLAS may
// order a sub-block's sums of the big GEMMs differently from the whole matrix's).
//
// A Cell derives from CellTraits (G, has_c: LSTM cell state, split_dgh: GRU, the recurrent side of the
// n gate gradient differs from the input side, reset_before: see below), and forward_rows /
// backward_rows for a run of batch rows and one slice of hidden units of one step. The driver
// handles lengths: a row past its sequence's end copies its state forward, outputs zero, and passes
// gradients straight through.
//
// Two products a step (reset_before, the GRU of Cho et al. 2014): the last gate's recurrent product
// reads r * h_{t-1}, not h_{t-1}, so it waits for the reset gate. Forward: the product of the other
// G-1 gates, Cell::reset_rows (r, z and rh = r * h_{t-1}, into the step's ghn slot), then, once every
// unit of a row has rh (a barrier when the team shares by units), gh's last gate = rh W_hn^T, and
// Cell::forward_rows. Backward: Cell::backward_rows (all but dr), a barrier, drh = dn W_hn (dL/drh,
// into a (B, H) buffer), Cell::reset_backward_rows (dr, and drh * r into dL/dh_{t-1}), then the
// product of the first G-1 gates' dG with their W_hh. After the loop dW_hn = dG_n^T RH.
#pragma once

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <new>
#include <vector>

#include "activations.h"
#include "packed_gemm.h"
#include "parallel.h"
#include "rnn.h"
#include "scratch.h"

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
// state c, whether the recurrent side of its gate gradient differs from the input side, and
// whether its last gate's recurrent product reads r * h_{t-1} (two products a step, see above).
template <Mode kMode, int64_t kG, bool kHasC, bool kSplitDgh, bool kResetBefore = false>
struct CellTraits {
  static constexpr Mode mode = kMode;
  static constexpr int64_t G = kG;
  static constexpr bool has_c = kHasC;
  static constexpr bool split_dgh = kSplitDgh;
  static constexpr bool reset_before = kResetBefore;
  static constexpr int64_t G_h = kResetBefore ? kG - 1 : kG;  // gates whose recurrent product reads h_{t-1}
};

// A time loop's early stop (Interrupt). Thread 0 asks the caller, at most every 50 ms, at a point
// every thread passes before any can start step `next` (just before a barrier, or anywhere when the
// threads share no barrier in the loop), and publishes `next`; every thread stops at the top of a
// step >= it. A step, not a flag: a thread still at the top of step next - 1 must not stop there, or
// the others would wait for it at that step's barrier for ever.
class StopAt {
 public:
  // The first question comes after 50 ms: a short call (a tape's cell step) never pays for one.
  explicit StopAt(const Interrupt* interrupt)
      : interrupt_(interrupt), due_(std::chrono::steady_clock::now() + kPollEvery) {}

  void ask(int tid, int64_t next) {
    // The clock is read every 16th step only: a small layer's step takes about as long as reading it.
    if (tid != 0 || interrupt_ == nullptr || (++asks_ & 15) != 0 || stopped()) return;
    const auto now = std::chrono::steady_clock::now();
    if (now < due_) return;
    due_ = now + kPollEvery;
    if (interrupt_->requested(interrupt_->context)) step_.store(next);
  }
  bool reached(int64_t t) const { return t >= step_.load(); }
  bool stopped() const { return step_.load() != kNever; }

 private:
  static constexpr int64_t kNever = INT64_MAX;
  static constexpr std::chrono::milliseconds kPollEvery{50};
  const Interrupt* interrupt_;
  std::atomic<int64_t> step_{kNever};
  std::chrono::steady_clock::time_point due_;  // thread 0's alone, as asks_
  uint32_t asks_ = 0;
};

// The time loop's barrier between steps. A team of one thread skips it: libgomp still made a
// futex syscall per barrier there, 0.1 ms of a 0.3 ms T100 B1 H64 LSTM forward. (Orphaned: it
// binds to the caller's parallel region; nt is the same in every thread, so all or none wait.)
inline void team_barrier(int nt) {
  if (nt > 1) {
#pragma omp barrier
  }
}

// Runs `pack` (which allocates) in every thread of the team and returns, in every thread, whether
// all of them succeeded. An exception must not leave an OpenMP region (the process would
// terminate), so a std::bad_alloc is caught here and recorded in `out_of_memory`; the caller skips
// its loop when this returns false and throws std::bad_alloc after the region (MemoryError in Python).
template <typename Pack>
bool packed_in_every_thread(int nt, std::atomic<bool>* out_of_memory, Pack pack) {
  try {
    pack();
  } catch (const std::bad_alloc&) {
    out_of_memory->store(true);
  }
  team_barrier(nt);
  return !out_of_memory->load();
}

inline bool active(const int64_t* lengths, int64_t b, int64_t t) { return lengths == nullptr || t < lengths[b]; }

// Calls run(run) for each maximal run of consecutive rows among `rows` active at step t (one run
// of all of them without lengths) and idle(b) for each row past its sequence's end. A cell's
// pointwise pass takes a run of rows per call, not one row: its setup (the clone dispatch, the
// pointers, the SIMD loop's prologue and tail) then comes once per run (LSTM T50 B32 H128
// inference at 2 threads: 0.965x the time).
template <typename Run, typename Idle>
void for_each_run(const int64_t* lengths, int64_t t, Range rows, Run run, Idle idle) {
  const int64_t last = rows.begin + rows.size;
  for (int64_t b = rows.begin; b < last;) {
    int64_t end = b;
    while (end < last && active(lengths, end, t)) end++;
    if (end > b) {
      run(Range{b, end - b});
      b = end;
    } else {
      idle(b++);
    }
  }
}

inline int64_t max_length(const int64_t* lengths, int64_t T, int64_t B) {
  if (lengths == nullptr) return T;
  int64_t m = 0;
  for (int64_t b = 0; b < B; b++) m = std::max(m, lengths[b]);
  return m;
}

// The rows of each step that the GEMMs compute. Step t computes rows [0, rows[t]), rows[t] being one past
// the last sequence still running at t (B without lengths). With lengths sorted longest first (the
// modules sort them) these are exactly the running sequences, so padding costs no GEMM work; any other
// order is still correct (a finished row inside the prefix is computed, then masked) but pays for some.
// The big GEMMs before and after the loop see the steps' rows packed one after another: step t's rows
// start at packed row offset[t].
struct StepRows {
  std::vector<int64_t> rows;    // (Tmax)
  std::vector<int64_t> offset;  // (Tmax + 1); offset[Tmax] = rows packed in all
  bool dense;                   // every step has all B rows: the packed layout is (Tmax, B) itself
  int64_t total() const { return offset.back(); }
};

inline StepRows step_rows(const int64_t* lengths, int64_t Tmax, int64_t B) {
  StepRows s{std::vector<int64_t>(Tmax, B), std::vector<int64_t>(Tmax + 1, 0), true};
  for (int64_t t = 0; t < Tmax; t++) {
    if (lengths != nullptr) {
      s.rows[t] = 0;
      for (int64_t b = 0; b < B; b++)
        if (active(lengths, b, t)) s.rows[t] = b + 1;
    }
    s.dense = s.dense && s.rows[t] == B;
    s.offset[t + 1] = s.offset[t] + s.rows[t];
  }
  return s;
}

// A thread's share of every step of the time loop. By hidden units: every thread computes all B rows
// for a slice of the units, with its part of W_hh; every thread reads all of h_t at step t + 1, so
// the team waits at a barrier after every step. By batch rows (with enough rows for every thread):
// every thread computes all units for a block of rows; the rows' recurrences are independent, so no
// thread reads what another wrote and there is no barrier, but every thread packs and reads all of
// W_hh, so this needs W_hh to stay in the core's cache.
struct StepShare {
  Range rows;   // batch rows this thread computes
  Range units;  // hidden units this thread computes
  bool by_rows;

  // Rows of this share among the first `computed` rows (the rows a step computes, StepRows).
  Range rows_among(int64_t computed) const {
    return Range{rows.begin, std::max<int64_t>(0, std::min(rows.begin + rows.size, computed) - rows.begin)};
  }
};

// Whether the time loop's team of nt threads shares its steps by batch rows: with at least two rows
// per thread and a W_hh within kPackedCacheBytes (about a core's L2; every thread streams all of it
// at every step). Time of a training step at 2 threads, by rows / by units, on a 2-core Xeon with
// AVX-512 (interleaved A/B, 11 rounds): B32 H128 0.65-0.82, B8 H128 0.79, LSTM B32 H256 (W_hh 1 MB)
// 0.93, GRU B64 H256 0.90. Past 1 MB it lost: LSTM B64 H512 (4 MB) 1.01-1.04, Elman B16 H1024 (4 MB)
// 1.16, GRU B16 H1024 inference (12 MB) 1.22; and with one row per thread, LSTM B2 H256 1.03.
inline bool share_by_rows(int nt, int64_t B, int64_t G, int64_t H, size_t elem_size) {
  switch (step_sharing()) {
    case StepSharing::units:
      return false;
    case StepSharing::rows:
      return nt > 1 && B >= nt;
    case StepSharing::automatic:
      break;
  }
  return nt > 1 && B >= 2 * nt && size_t(G * H * H) * elem_size <= kPackedCacheBytes;
}

// Thread tid's block of rows when the team shares steps by rows: B / nt rows each, or with lengths,
// blocks of about equal total length (the modules sort the longest first, and the thread with those
// would otherwise finish last: LSTM T100 B64 H256, lengths over [10, 100], took 1.04x the time by
// units with B / nt rows each, 0.95x with blocks of equal length).
inline Range row_block(const int64_t* lengths, int64_t B, int nt, int tid) {
  int64_t total = 0;
  for (int64_t b = 0; lengths != nullptr && b < B; b++) total += lengths[b];
  if (total == 0) return split(B, nt, tid);
  // The first row whose preceding rows hold at least k/nt of the total length; the last block ends at
  // B (rows of length 0 at the end still need their state carried).
  auto boundary = [&](int k) {
    if (k == nt) return B;
    int64_t b = 0;
    for (int64_t sum = 0; b < B && sum * nt < k * total; b++) sum += lengths[b];
    return b;
  };
  const int64_t begin = boundary(tid);
  return Range{begin, boundary(tid + 1) - begin};
}

inline StepShare step_share(int tid, int nt, int64_t B, int64_t H, const int64_t* lengths, bool by_rows) {
  return by_rows ? StepShare{row_block(lengths, B, nt, tid), Range{0, H}, true}
                 : StepShare{Range{0, B}, split(H, nt, tid), false};
}

// src (Tmax, B, width) -> dst (packed rows, width): step t's first rows[t] rows, for steps [t0, t1)
// (dst's row 0 is step t0's first).
template <typename scalar_t>
void gather_step_rows(scalar_t* dst, const scalar_t* src, int64_t width, const StepRows& s, int64_t B, int64_t t0,
                      int64_t t1) {
  for (int64_t t = t0; t < t1; t++)
    std::copy(src + t * B * width, src + (t * B + s.rows[t]) * width, dst + (s.offset[t] - s.offset[t0]) * width);
}

// The inverse of gather_step_rows; rows a step does not compute are set to zero.
template <typename scalar_t>
void scatter_step_rows(scalar_t* dst, const scalar_t* src, int64_t width, const StepRows& s, int64_t B) {
  for (size_t t = 0; t < s.rows.size(); t++) {
    std::copy(src + s.offset[t] * width, src + s.offset[t + 1] * width, dst + t * B * width);
    std::fill(dst + (t * B + s.rows[t]) * width, dst + (t + 1) * B * width, scalar_t(0));
  }
}

template <typename scalar_t>
void copy_units(scalar_t* dst, const scalar_t* src, Range u) {  // std::copy: an empty range may be null (H=0)
  std::copy(src + u.begin, src + u.begin + u.size, dst + u.begin);
}

template <typename scalar_t>
void zero_units(scalar_t* dst, Range u) {
  std::fill(dst + u.begin, dst + u.begin + u.size, scalar_t(0));
}

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

template <typename scalar_t, typename Cell>
void recurrence_forward(const ForwardArgs<scalar_t>& a) {
  const int64_t T = a.sizes.T, B = a.sizes.B, I = a.sizes.I, H = a.sizes.H;
  const int64_t G = Cell::G, GH = G * H, BH = B * H;
  const WorkspaceLayout L = workspace_layout(Cell::mode, a.sizes, a.for_backward);
  // Elman keeps no gates (backward needs only h): y doubles as its projection buffer.
  scalar_t* gates = L.gates >= 0 ? a.workspace + L.gates : a.y;  // (T, B, G*H); inference: one chunk's, below
  scalar_t* hs = a.workspace + L.hs;                                // (state_slots, B, H)
  scalar_t* cs = Cell::has_c ? a.workspace + L.cs : nullptr;        // (state_slots, B, H)
  scalar_t* tanh_c = Cell::has_c ? a.workspace + L.tanh_c : nullptr;  // (step_slots, B, H)
  scalar_t* ghn = L.ghn >= 0 ? a.workspace + L.ghn : nullptr;       // (step_slots, B, H)
  // State t (h_t, c_t) and step t's saved values, in their slots (every step's for backward).
  auto state = [&](scalar_t* base, int64_t t) { return base + (t % L.state_slots) * BH; };
  auto saved = [&](scalar_t* base, int64_t t) { return base + (t % L.step_slots) * BH; };
  const int64_t Tmax = max_length(a.lengths, T, B);  // steps t >= Tmax have no active row
  const StepRows rows = step_rows(a.lengths, Tmax, B);
  const int64_t N = rows.total();

  Scratch<scalar_t> scratch(B * GH + GH);  // one allocation
  scalar_t* gh = scratch.data();  // (B, G*H) recurrent projection, columns grouped per slice (gh_row)
  scalar_t* zeros = gh + B * GH;  // (G*H)
  std::fill(zeros, zeros + GH, scalar_t(0));
  const scalar_t* b_ih = a.b_ih != nullptr ? a.b_ih : zeros;  // (G*H) zeros without bias
  const scalar_t* b_hh = a.b_hh != nullptr ? a.b_hh : zeros;  // (G*H) zeros without bias

  std::copy(a.h0, a.h0 + BH, hs);
  if (Cell::has_c) std::copy(a.c0, a.c0 + BH, cs);

  // Inference with gates projects the input a chunk of C steps at a time, inside the time loop: gates then
  // holds the chunk's rows packed one step after another (step t's row 0 at offset[t] - offset[chunk start]).
  const bool chunked = !a.for_backward && L.gates >= 0;
  const int64_t C = L.gate_steps;
  Scratch<scalar_t> x_chunk(chunked && !rows.dense ? C * B * I : 0);  // (a chunk's rows, I) gathered
  if (!chunked) {  // The input projection of the rows the steps compute, packed unless every step has all B rows.
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
  // A single step (generation token by token, a cell step on the tape), or one row a step with a W_hh
  // larger than L2: the product streams W_hh from memory at every step either way, so packing it first
  // would only add a copy (LSTM H=1024: 32 MB of traffic, 3/4 of a one-step call). Then each gate's
  // block of W_hh goes straight to BLAS (gemv, one per row: with two rows over many steps the packed
  // product, reading W_hh once for both, was 5-15% faster).
  const bool direct = Tmax == 1 || (B == 1 && size_t(GH * H) * sizeof(scalar_t) > kPackedCacheBytes);
  std::atomic<bool> out_of_memory{false};
  StopAt stop(a.interrupt);
#pragma omp parallel num_threads(loop_threads(B * GH * H))
  {
    FlushDenormals ftz;
    const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
    const StepShare my = step_share(tid, nt, B, H, a.lengths, share_by_rows(nt, B, G, H, sizeof(scalar_t)) && !direct);
    const Range u = my.units;
    constexpr int64_t G_h = Cell::G_h;
    PackedB<scalar_t> w_slice;  // (H, G_h*u.size) this slice's W_hh^T (of the gates reading h), packed once
    PackedB<scalar_t> w_last;   // (H, u.size) reset_before: this slice's W_hn^T
    const bool ready =  // W_hh packed, or not needed packed
        direct || packed_in_every_thread(nt, &out_of_memory, [&] {
          pack_w_hh_slice(&w_slice, a.w_hh, G_h, H, u);
          if (Cell::reset_before) pack_w_hh_slice(&w_last, a.w_hh + G_h * H * H, 1, H, u);
        });
    for (int64_t t = 0; ready && t < Tmax && !stop.reached(t); t++) {
      const int64_t t0 = t - t % C;  // the first step of t's chunk (inference)
      if (chunked && t == t0) {
        if (my.by_rows) stop.ask(tid, std::min(Tmax, t0 + C));  // by rows the chunk's barriers are the only ones
        if (my.by_rows && t > 0) team_barrier(nt);  // every thread is done with the last chunk's gates
        project_chunk(tid, nt, gates, x_chunk.data(), a, rows, GH, t0, std::min(Tmax, t0 + C));
      }
      const scalar_t* h_prev = state(hs, t);  // (B, H)
      const ForwardStep<scalar_t> s{chunked ? gates + (rows.offset[t] - rows.offset[t0]) * GH : gates + t * B * GH,
                                    gh,
                                    b_ih,
                                    b_hh,
                                    h_prev,
                                    Cell::has_c ? state(cs, t) : nullptr,
                                    state(hs, t + 1),
                                    Cell::has_c ? state(cs, t + 1) : nullptr,
                                    Cell::has_c ? saved(tanh_c, t) : nullptr,
                                    ghn != nullptr ? saved(ghn, t) : nullptr,
                                    G,
                                    H};
      const Range m = my.rows_among(rows.rows[t]);  // the rows this thread's product computes
      scalar_t* gh_rows = gh + m.begin * GH + G * u.begin;
      const bool mine = u.size > 0 && my.rows.size > 0;  // (the barrier of reset_before is everyone's)
      if (mine) {  // gh's first G_h gates = h_{t-1} W_hh^T
        const scalar_t* h_rows = h_prev + m.begin * H;
        if (direct)  // gate g of the slice: columns [g * u.size, (g + 1) * u.size) of its part of gh
          for (int64_t g = 0; g < G_h; g++)
            gemm<scalar_t>(Trans::no, Trans::yes, m.size, u.size, H, scalar_t(1), h_rows, H,
                           a.w_hh + (g * H + u.begin) * H, H, scalar_t(0), gh_rows + g * u.size, GH);
        else
          w_slice.multiply(m.size, h_rows, H, gh_rows, GH, /*accumulate=*/false);
      }
      if constexpr (Cell::reset_before) {  // gh's last gate = (r * h_{t-1}) W_hn^T
        if (mine)
          for_each_run(a.lengths, t, my.rows, [&](Range run) { Cell::reset_rows(s, run, u); },
                       [&](int64_t b) { zero_units(s.ghn + b * H, u); });
        if (!my.by_rows) team_barrier(nt);  // every unit of rh written
        if (mine && direct)
          gemm<scalar_t>(Trans::no, Trans::yes, m.size, u.size, H, scalar_t(1), s.ghn + m.begin * H, H,
                         a.w_hh + (G_h * H + u.begin) * H, H, scalar_t(0), gh_rows + G_h * u.size, GH);
        else if (mine)
          w_last.multiply(m.size, s.ghn + m.begin * H, H, gh_rows + G_h * u.size, GH, /*accumulate=*/false);
      }
      if (mine) {
        scalar_t* y = a.y + t * BH;  // (B, H)
        for_each_run(
            a.lengths, t, my.rows,
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
      if (!my.by_rows) {
        stop.ask(tid, t + 1);
        team_barrier(nt);
      } else if (!chunked) {
        stop.ask(tid, t + 1);
      }
    }
  }
  if (out_of_memory.load()) throw std::bad_alloc();
  if (stop.stopped()) return;
  // Steps after every sequence has ended: outputs zero; for backward, the state carried and the saved
  // activations zero (so every element of the workspace it returns is written: the caller need not zero it).
  std::fill(a.y + Tmax * BH, a.y + T * BH, scalar_t(0));
  if (a.for_backward) {
    if (L.gates >= 0) std::fill(gates + Tmax * B * GH, gates + T * B * GH, scalar_t(0));
    if (tanh_c != nullptr) std::fill(tanh_c + Tmax * BH, tanh_c + T * BH, scalar_t(0));
    if (ghn != nullptr) std::fill(ghn + Tmax * BH, ghn + T * BH, scalar_t(0));
    for (int64_t t = Tmax; t < T; t++) {
      std::copy(hs + t * BH, hs + (t + 1) * BH, hs + (t + 1) * BH);
      if (Cell::has_c) std::copy(cs + t * BH, cs + (t + 1) * BH, cs + (t + 1) * BH);
    }
  }
  std::copy(state(hs, Tmax), state(hs, Tmax) + BH, a.h_n);
  if (Cell::has_c) std::copy(state(cs, Tmax), state(cs, Tmax) + BH, a.c_n);
}

template <typename scalar_t, typename Cell>
void recurrence_backward(const BackwardArgs<scalar_t>& a) {
  const int64_t T = a.sizes.T, B = a.sizes.B, I = a.sizes.I, H = a.sizes.H;
  const int64_t G = Cell::G, GH = G * H, BH = B * H;
  const WorkspaceLayout L = workspace_layout(Cell::mode, a.sizes);
  const scalar_t* gates = L.gates >= 0 ? a.workspace + L.gates : nullptr;  // (T, B, G*H)
  const scalar_t* hs = a.workspace + L.hs;                                  // (T+1, B, H)
  const scalar_t* cs = Cell::has_c ? a.workspace + L.cs : nullptr;          // (T+1, B, H)
  const scalar_t* tanh_c = Cell::has_c ? a.workspace + L.tanh_c : nullptr;  // (T, B, H)
  const scalar_t* ghn = L.ghn >= 0 ? a.workspace + L.ghn : nullptr;         // (T, B, H)
  const int64_t Tmax = max_length(a.lengths, T, B);
  const StepRows rows = step_rows(a.lengths, Tmax, B);
  const int64_t N = rows.total();  // rows the steps compute (Tmax * B when dense)

  const int64_t n_dg = N * GH;
  const int64_t n_state = (Cell::has_c ? 4 : 2) * BH + (Cell::reset_before ? BH : 0);
  // One allocation, not zeroed: the loop writes every element of dG (into the caller's dg_* when given).
  const int64_t n_dg_scratch = a.dg_ih != nullptr ? 0 : (Cell::split_dgh ? 2 : 1) * n_dg;
  Scratch<scalar_t> scratch(n_dg_scratch + n_state);
  scalar_t* dgx = a.dg_ih != nullptr ? a.dg_ih : scratch.data();  // (N, G*H) packed rows: step t's at offset[t]
  scalar_t* dgh = !Cell::split_dgh ? dgx : a.dg_ih != nullptr ? a.dg_hh : dgx + n_dg;  // (N, G*H)
  scalar_t* dh_buf = scratch.data() + n_dg_scratch;           // (2, B, H) ping-pong dL/dh
  scalar_t* dc_buf = Cell::has_c ? dh_buf + 2 * BH : nullptr;  // (2, B, H) ping-pong dL/dc
  scalar_t* drh = Cell::reset_before ? dh_buf + 2 * BH : nullptr;  // (B, H) dL/d(r * h_{t-1}) of a step
  std::fill(dh_buf, dh_buf + n_state, scalar_t(0));
  if (a.dh_n != nullptr) std::copy(a.dh_n, a.dh_n + BH, dh_buf);
  if (Cell::has_c && a.dc_n != nullptr) std::copy(a.dc_n, a.dc_n + BH, dc_buf);

  std::atomic<bool> out_of_memory{false};
  StopAt stop(a.interrupt);
#pragma omp parallel num_threads(loop_threads(B * GH * H))
  {
    FlushDenormals ftz;
    const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
    const StepShare my = step_share(tid, nt, B, H, a.lengths, share_by_rows(nt, B, G, H, sizeof(scalar_t)));
    const Range u = my.units;
    // (G_h*H, u.size) W_hh's columns of these units (of the gates reading h), packed once for all steps; a
    // single step (a cell step on the tape) reads W_hh once either way, so it gives them to BLAS as they are.
    const bool direct = Tmax == 1;
    constexpr int64_t G_h = Cell::G_h;
    PackedB<scalar_t> w_columns;
    PackedB<scalar_t> w_last;  // (H, u.size) reset_before: W_hn's columns of these units
    const bool packed = direct || packed_in_every_thread(nt, &out_of_memory, [&] {
                          w_columns.pack_rows(G_h * H, u.size, a.w_hh + u.begin, H);
                          if (Cell::reset_before) w_last.pack_rows(H, u.size, a.w_hh + G_h * H * H + u.begin, H);
                        });
    for (int64_t k = 0; packed && k < Tmax && !stop.reached(k); k++) {
      const int64_t t = Tmax - 1 - k, cur = k % 2, nxt = 1 - cur;
      // A thread reads and writes only its own share of dh/dc and dG_t before the barrier (by units); after
      // it, its GEMM reads all rows of dG_t and writes its own columns of dh_prev (by rows: its own rows).
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
      scalar_t* dh = dh_buf + cur * BH;  // (B, H) writable alias of s.dh
      for_each_run(
          a.lengths, t, my.rows,
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
      const Range m = my.rows_among(rows.rows[t]);  // the rows this thread's products compute
      if constexpr (Cell::reset_before) {  // drh = dG_n W_hn, then dr and drh * r (a row past its end: nothing)
        if (!my.by_rows) team_barrier(nt);  // every unit of dG_n written
        const scalar_t* dgn = s.dgh + m.begin * GH + G_h * H;  // (m.size, H) with leading dimension G*H
        if (direct)
          gemm<scalar_t>(Trans::no, Trans::no, m.size, u.size, H, scalar_t(1), dgn, GH,
                         a.w_hh + G_h * H * H + u.begin, H, scalar_t(0), drh + m.begin * H + u.begin, H);
        else
          w_last.multiply(m.size, dgn, GH, drh + m.begin * H + u.begin, H, /*accumulate=*/false);
        for_each_run(a.lengths, t, my.rows, [&](Range run) { Cell::reset_backward_rows(s, run, u); }, [](int64_t) {});
      }
      stop.ask(tid, k + 1);  // by units just before the barrier; by rows the loop has none
      if (!my.by_rows) team_barrier(nt);
      if (direct)
        gemm<scalar_t>(Trans::no, Trans::no, m.size, u.size, G_h * H, scalar_t(1), s.dgh + m.begin * GH, GH,
                       a.w_hh + u.begin, H, scalar_t(1), s.dh_prev + m.begin * H + u.begin, H);
      else
        w_columns.multiply(m.size, s.dgh + m.begin * GH, GH, s.dh_prev + m.begin * H + u.begin, H,
                           /*accumulate=*/true);
    }
  }
  if (out_of_memory.load()) throw std::bad_alloc();
  if (stop.stopped()) return;
  // The inputs and previous states (and r * h_{t-1}) of the computed rows, and their dX, packed like dG
  // unless dense.
  const int64_t n_rh = Cell::reset_before ? N * H : 0;
  Scratch<scalar_t> packed(rows.dense ? 0 : N * (2 * I + H) + n_rh);
  if (!rows.dense) {
    gather_step_rows(packed.data(), a.x, I, rows, B, 0, Tmax);
    gather_step_rows(packed.data() + N * I, hs, H, rows, B, 0, Tmax);
    if (Cell::reset_before) gather_step_rows(packed.data() + N * (2 * I + H), ghn, H, rows, B, 0, Tmax);
  }
  const scalar_t* xp = rows.dense ? a.x : packed.data();              // (N, I)
  const scalar_t* hp = rows.dense ? hs : packed.data() + N * I;       // (N, H) h_{t-1} of each row
  scalar_t* dxp = rows.dense ? a.dx : packed.data() + N * (I + H);    // (N, I)
  const scalar_t* rhp = rows.dense ? ghn : packed.data() + N * (2 * I + H);  // (N, H) reset_before: r * h_{t-1}
#pragma omp parallel num_threads(gemm_threads(N * GH * (I + (a.dw_ih != nullptr ? I : 0) + (a.dw_hh != nullptr ? H : 0))))
  {
    FlushDenormals ftz;
    const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
    // Weight, input and bias gradients over all steps at once.
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
  if (!rows.dense) scatter_step_rows(a.dx, dxp, I, rows, B);
  std::fill(a.dx + Tmax * B * I, a.dx + T * B * I, scalar_t(0));  // steps after every sequence ended
  if (a.dh_steps != nullptr) std::fill(a.dh_steps + Tmax * BH, a.dh_steps + T * BH, scalar_t(0));
  std::copy(dh_buf + (Tmax % 2) * BH, dh_buf + (Tmax % 2 + 1) * BH, a.dh0);
  if (Cell::has_c) std::copy(dc_buf + (Tmax % 2) * BH, dc_buf + (Tmax % 2 + 1) * BH, a.dc0);
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
