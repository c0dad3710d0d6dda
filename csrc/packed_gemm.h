// packed_gemm.h -- C(M, N) (+)= A(M, K) B(K, N) with B packed once and reused by many products.
//
// The time loop multiplies by the same W_hh at every step. OpenBLAS's gemm repacks its
// operands on every call: at B16 H1024 that copy of W_hh was a third of the forward pass
// (perf: sgemm_incopy 33%). PackedB copies B ONCE per kernel call into the layout the
// micro-kernel streams, and multiply() then only reads it.
//
// Layout: in the order multiply() reads it, so one call streams the whole buffer front to back
// (at H=1024 W_hh is 16 MB, read from L3/DRAM at every step: the hardware prefetchers follow one
// sequential stream, not 256 streams of 16 KB). B is cut into chunks of KC rows of k, and each
// chunk into panels of NR = 2 SIMD vectors of columns (16 floats / 8 doubles, zero past N); a
// panel's chunk is kc (= KC, less in the last chunk) rows of NR contiguous elements:
//   buffer[k0 * Npad + n0 * kc + (k - k0) * NR + j] = B(k, n0 + j),  k0 = k - k % KC, n0 = n - n % NR
// Micro-kernel: an MR x NR block of C (MR <= 6 rows of A) accumulated in registers over a
// chunk of K (AVX2 + FMA, chosen at run time; a portable loop otherwise). Blocks of 1 to 3 rows
// (batch 1 or 2 among them) get independent accumulators for alternate k, so the FMA latency is hidden.
#pragma once

#include <algorithm>
#include <cstdint>

#include "scratch.h"

namespace minirnn {

// A packed B larger than this (about a core's L2) streams from L3 or DRAM at every multiply().
constexpr size_t kPackedCacheBytes = size_t(1) << 20;

// Whether multiply() runs the AVX2 micro-kernel (else the portable one).
bool packed_gemm_uses_avx2();
// Forces the portable micro-kernel (true) or restores the choice by CPU (false): for tests.
void set_packed_gemm_portable(bool portable);

template <typename T>
class PackedB {
 public:
  static constexpr int64_t NR = 64 / sizeof(T);  // columns per panel: two 256-bit vectors
  static constexpr int64_t KC = 256;              // rows of k per chunk (a panel's chunk: 16 KB of floats)

  // B(k, n) = column(n)[k]: column(n) points at K contiguous elements (B^T's row n).
  template <typename ColumnFn>
  void pack_columns(int64_t K, int64_t N, ColumnFn column) {
    resize(K, N);
    for (int64_t n = 0; n < N; n++) {
      const T* c = column(n);
      for (int64_t k0 = 0; k0 < K; k0 += KC) {
        T* dst = chunk(k0, n - n % NR) + n % NR;
        for (int64_t k = k0; k < std::min(K, k0 + KC); k++) dst[(k - k0) * NR] = c[k];
      }
    }
  }

  // B(k, n) = src[k * ld + n]: a row-major (K, N) matrix with leading dimension ld.
  void pack_rows(int64_t K, int64_t N, const T* src, int64_t ld);

  // C(M, N) = A(M, K) B, plus C's old value when accumulate. A row-major with leading
  // dimension lda, C with ldc. M may be 0.
  void multiply(int64_t M, const T* A, int64_t lda, T* C, int64_t ldc, bool accumulate) const;

 private:
  void resize(int64_t K, int64_t N);
  // The chunk of rows [k0, k0 + KC) of the panel of columns [n0, n0 + NR) (k0 % KC == n0 % NR == 0).
  T* chunk(int64_t k0, int64_t n0) const { return panels_.data() + k0 * Npad_ + n0 * std::min(KC, K_ - k0); }

  Scratch<T> panels_;  // (K, Npad) in the layout above
  int64_t K_ = 0, N_ = 0, Npad_ = 0;
};

}  // namespace minirnn
