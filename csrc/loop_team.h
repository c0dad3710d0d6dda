// loop_team.h -- the time loop's team of OpenMP threads: who computes which part of a step
// (StepShare), where the team waits (team_barrier), how it stops early (StopAt) and how it gives
// up when a thread runs out of memory (packed_in_every_thread).
//
// Legend: B batch, H hidden units, G gates per unit, nt threads in the team, tid this thread.
//
// Each thread owns a share of every step: either a slice of hidden units with ALL the gates of
// those units, for all rows (then one barrier per step), or, with enough rows and a small W_hh, a
// block of batch rows with all units (then no barrier: the rows' recurrences are independent). It
// does its share's recurrent GEMM and pointwise pass back to back. Every output element is one
// thread's full dot product (no cross-thread reductions), so results agree across thread counts.
#pragma once

#include <algorithm>
#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <new>

#include "packed_gemm.h"
#include "parallel.h"
#include "rnn.h"

namespace minirnn {

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

// The time loop's barrier between steps. A team of one thread skips it: libgomp makes a futex
// syscall per barrier even then, a large part of a small layer's step. (Orphaned: it binds to the
// caller's parallel region; nt is the same in every thread, so all or none wait.)
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
// at every step). Past that, or with one row per thread, sharing by units was faster (the
// measurements: benchmarks/README.md, "The time loop's choices").
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
// would otherwise finish last).
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

}  // namespace minirnn
