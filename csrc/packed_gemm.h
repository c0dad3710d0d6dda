// packed_gemm.h -- C(M, N) (+)= A(M, K) B(K, N) with B packed once and reused by many products.
//
// The time loop multiplies by the same W_hh at every step. OpenBLAS's gemm repacks its
// operands on every call, a copy of all of W_hh per step. PackedB copies B ONCE per kernel call
// into the layout the micro-kernel streams, and multiply() then only reads it.
//
// Layout: in the order multiply() reads it, so one call streams the whole buffer front to back
// (at H=1024 W_hh is 16 MB, read from L3/DRAM at every step: the hardware prefetchers follow one
// sequential stream, not 256 streams of 16 KB). B is cut into chunks of KC rows of k, and each
// chunk into panels of NR = 2 SIMD vectors of columns (zero past N); a panel's chunk is kc (= KC,
// less in the last chunk) rows of NR contiguous elements:
//   buffer[k0 * Npad + n0 * kc + (k - k0) * NR + j] = B(k, n0 + j),  k0 = k - k % KC, n0 = n - n % NR
// NR and KC depend on the micro-kernel, chosen by CPU when B is packed (packed_gemm_kernel()):
//   avx512: NR = 2 x 512 bits (32 floats / 16 doubles); avx2 and portable: 2 x 256 bits (16 / 8);
//   KC = 16 KB / (NR * sizeof(T)): a panel's chunk stays in L1 across the row blocks that reuse it.
// Micro-kernel: an MR x NR block of C (MR <= 8 rows of A with AVX-512, else 6) accumulated in
// registers over a chunk of K. Blocks of 1 to 3 rows (batch 1 or 2 among them) get independent accumulators for
// alternate k, so the FMA latency is hidden.
#pragma once

#include <algorithm>
#include <cstdint>
#include <string>
#include <vector>

#include "scratch.h"

namespace minirnn {

// A packed B larger than this (about a core's L2) streams from L3 or DRAM at every multiply().
constexpr size_t kPackedCacheBytes = size_t(1) << 20;

// The micro-kernels, fastest last. A PackedB packed on a CPU runs there (it is never stored).
enum class MicroKernelIsa { portable, avx2, avx512 };

// The micro-kernel a PackedB packed now will use: "avx512", "avx2" or "portable".
std::string packed_gemm_kernel();
// The micro-kernels this CPU can run, portable first.
std::vector<std::string> packed_gemm_kernels();
// Tests: force a micro-kernel by name ("" restores the choice by CPU); std::invalid_argument for a
// name this CPU cannot run.
void set_packed_gemm_kernel(const std::string& name);

template <typename T>
class PackedB {
 public:
  // B(k, n) = column(n)[k]: column(n) points at K contiguous elements (B^T's row n).
  template <typename ColumnFn>
  void pack_columns(int64_t K, int64_t N, ColumnFn column) {
    resize(K, N);
    for (int64_t n = 0; n < N; n++) {
      const T* c = column(n);
      for (int64_t k0 = 0; k0 < K; k0 += kc_) {
        T* dst = chunk(k0, n - n % nr_) + n % nr_;
        for (int64_t k = k0; k < std::min(K, k0 + kc_); k++) dst[(k - k0) * nr_] = c[k];
      }
    }
  }

  // B(k, n) = src[k * ld + n]: a row-major (K, N) matrix with leading dimension ld.
  void pack_rows(int64_t K, int64_t N, const T* src, int64_t ld);

  // C(M, N) = A(M, K) B, plus C's old value when accumulate. A row-major with leading
  // dimension lda, C with ldc. M may be 0.
  void multiply(int64_t M, const T* A, int64_t lda, T* C, int64_t ldc, bool accumulate) const;

 private:
  // Chooses the micro-kernel (and so NR and KC) and allocates the panels, the padding zeroed.
  void resize(int64_t K, int64_t N);
  // The chunk of rows [k0, k0 + KC) of the panel of columns [n0, n0 + NR) (k0 % KC == n0 % NR == 0).
  T* chunk(int64_t k0, int64_t n0) const { return panels_.data() + k0 * Npad_ + n0 * std::min(kc_, K_ - k0); }

  Scratch<T> panels_;  // (K, Npad) in the layout above
  MicroKernelIsa isa_ = MicroKernelIsa::portable;
  int64_t nr_ = 1, kc_ = 1;  // NR columns per panel, KC rows of k per chunk
  int64_t K_ = 0, N_ = 0, Npad_ = 0;
};

}  // namespace minirnn
