// lengths.h -- variable-length sequences in the time loop: which rows a step computes, and how the
// rows of all steps are packed for the big GEMMs before and after the loop.
//
// Legend: T time steps, Tmax the longest length, B batch, N rows all steps compute (packed).
//
// lengths (B) int64 in [0, T], or null (every sequence runs all T steps). A row past its
// sequence's end copies its state forward, outputs zero, and passes gradients straight through.
#pragma once

#include <algorithm>
#include <cstdint>
#include <vector>

#include "parallel.h"

namespace minirnn {

inline bool active(const int64_t* lengths, int64_t b, int64_t t) { return lengths == nullptr || t < lengths[b]; }

// Calls run(run) for each maximal run of consecutive rows among `rows` active at step t (one run
// of all of them without lengths) and idle(b) for each row past its sequence's end. A cell's
// pointwise pass takes a run of rows per call, not one row: its setup (the clone dispatch, the
// pointers, the SIMD loop's prologue and tail) then comes once per run.
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

// Steps t >= max_length have no active row.
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

// A row's hidden units u: carried (a row past its end) or zeroed.
template <typename scalar_t>
void copy_units(scalar_t* dst, const scalar_t* src, Range u) {  // std::copy: an empty range may be null (H=0)
  std::copy(src + u.begin, src + u.begin + u.size, dst + u.begin);
}

template <typename scalar_t>
void zero_units(scalar_t* dst, Range u) {
  std::fill(dst + u.begin, dst + u.begin + u.size, scalar_t(0));
}

}  // namespace minirnn
