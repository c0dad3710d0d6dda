// packed_gemm.cpp -- the micro-kernels and the blocking of PackedB::multiply (see packed_gemm.h).
//
// Legend: C(M, N) (+)= A(M, K) B(K, N); MR rows of A x NR columns of B per micro-kernel call,
// over a chunk of KC values of k (a chunk of one panel, KC x NR, stays in L1 across the
// row blocks that reuse it).
#include "packed_gemm.h"

#include <algorithm>
#include <atomic>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MINIRNN_HAVE_AVX2_KERNEL 1
#define MINIRNN_AVX2 __attribute__((target("avx2,fma")))
#endif

namespace minirnn {
namespace {

constexpr int kMr = 6;        // most rows of A per micro-kernel call

// One micro-kernel call: C[r, j] (+)= sum_k A[r * lda + k] panel[k * NR + j], r < mr, j < nr.
template <typename T>
using MicroKernel = void (*)(int64_t kc, const T* A, int64_t lda, const T* panel, T* C, int64_t ldc, bool accumulate,
                             int64_t nr, const T* prefetch);

template <typename T>
void store_block(const T* block, int64_t mr, int64_t nr, T* C, int64_t ldc, bool accumulate) {
  constexpr int64_t NR = PackedB<T>::NR;
  for (int64_t r = 0; r < mr; r++)
    for (int64_t j = 0; j < nr; j++) C[r * ldc + j] = (accumulate ? C[r * ldc + j] : T(0)) + block[r * NR + j];
}

// Portable: any CPU, any T; the compiler vectorises the j loop as far as the target allows.
template <typename T, int MR>
void micro_portable(int64_t kc, const T* A, int64_t lda, const T* panel, T* C, int64_t ldc, bool accumulate,
                    int64_t nr, const T* /*prefetch*/) {
  constexpr int64_t NR = PackedB<T>::NR;
  T block[MR * NR] = {};
  for (int64_t k = 0; k < kc; k++)
    for (int r = 0; r < MR; r++) {
      const T a = A[r * lda + k];
      for (int64_t j = 0; j < NR; j++) block[r * NR + j] += a * panel[k * NR + j];
    }
  store_block(block, MR, nr, C, ldc, accumulate);
}

#ifdef MINIRNN_HAVE_AVX2_KERNEL
template <typename T>
struct Avx2;
template <>
struct Avx2<float> {
  using V = __m256;
  static constexpr int W = 8;
  MINIRNN_AVX2 static V zero() { return _mm256_setzero_ps(); }
  MINIRNN_AVX2 static V load(const float* p) { return _mm256_loadu_ps(p); }
  MINIRNN_AVX2 static V broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  MINIRNN_AVX2 static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  MINIRNN_AVX2 static V add(V a, V b) { return _mm256_add_ps(a, b); }
  MINIRNN_AVX2 static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
};
template <>
struct Avx2<double> {
  using V = __m256d;
  static constexpr int W = 4;
  MINIRNN_AVX2 static V zero() { return _mm256_setzero_pd(); }
  MINIRNN_AVX2 static V load(const double* p) { return _mm256_loadu_pd(p); }
  MINIRNN_AVX2 static V broadcast(const double* p) { return _mm256_broadcast_sd(p); }
  MINIRNN_AVX2 static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  MINIRNN_AVX2 static V add(V a, V b) { return _mm256_add_pd(a, b); }
  MINIRNN_AVX2 static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
};

// MR rows x 2 vectors, in KU independent accumulator sets for alternate k: with few rows
// one set would leave the FMA units waiting on the previous k's result.
template <typename T, int MR>
MINIRNN_AVX2 void micro_avx2(int64_t kc, const T* A, int64_t lda, const T* panel, T* C, int64_t ldc, bool accumulate,
                             int64_t nr, const T* prefetch) {
  using S = Avx2<T>;
  using V = typename S::V;
  constexpr int W = S::W, NR = 2 * W;
  constexpr int KU = MR == 1 ? 4 : MR <= 3 ? 2 : 1;
  V acc[KU][MR][2];
#pragma GCC unroll 4
  for (int u = 0; u < KU; u++)
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) acc[u][r][0] = acc[u][r][1] = S::zero();
  int64_t k = 0;
  for (; k + KU <= kc; k += KU) {
#pragma GCC unroll 4
    for (int u = 0; u < KU; u++) {
      if (prefetch != nullptr) _mm_prefetch(reinterpret_cast<const char*>(prefetch + (k + u) * NR), _MM_HINT_T0);
      const V b0 = S::load(panel + (k + u) * NR), b1 = S::load(panel + (k + u) * NR + W);
#pragma GCC unroll 6
      for (int r = 0; r < MR; r++) {
        const V a = S::broadcast(A + r * lda + k + u);
        acc[u][r][0] = S::fma(a, b0, acc[u][r][0]);
        acc[u][r][1] = S::fma(a, b1, acc[u][r][1]);
      }
    }
  }
  for (; k < kc; k++) {  // the last kc % KU values of k
    const V b0 = S::load(panel + k * NR), b1 = S::load(panel + k * NR + W);
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
      const V a = S::broadcast(A + r * lda + k);
      acc[0][r][0] = S::fma(a, b0, acc[0][r][0]);
      acc[0][r][1] = S::fma(a, b1, acc[0][r][1]);
    }
  }
#pragma GCC unroll 4
  for (int u = 1; u < KU; u++)
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
      acc[0][r][0] = S::add(acc[0][r][0], acc[u][r][0]);
      acc[0][r][1] = S::add(acc[0][r][1], acc[u][r][1]);
    }
  if (nr == NR) {
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
      T* c = C + r * ldc;
      S::store(c, accumulate ? S::add(S::load(c), acc[0][r][0]) : acc[0][r][0]);
      S::store(c + W, accumulate ? S::add(S::load(c + W), acc[0][r][1]) : acc[0][r][1]);
    }
  } else {  // the last panel's columns past N are padding: store through a block
    alignas(32) T block[MR * NR];
#pragma GCC unroll 6
    for (int r = 0; r < MR; r++) {
      S::store(block + r * NR, acc[0][r][0]);
      S::store(block + r * NR + W, acc[0][r][1]);
    }
    store_block(block, MR, nr, C, ldc, accumulate);
  }
}

bool cpu_has_avx2_fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
#endif

std::atomic<bool> portable_only{false};

// The micro-kernel for mr rows (1..kMr) on this CPU (checked once), or the portable one.
template <typename T>
MicroKernel<T> micro_kernel(int64_t mr) {
#ifdef MINIRNN_HAVE_AVX2_KERNEL
  static const MicroKernel<T> avx2[kMr] = {micro_avx2<T, 1>, micro_avx2<T, 2>, micro_avx2<T, 3>,
                                           micro_avx2<T, 4>, micro_avx2<T, 5>, micro_avx2<T, 6>};
  static const bool use_avx2 = cpu_has_avx2_fma();
  if (use_avx2 && !portable_only.load(std::memory_order_relaxed)) return avx2[mr - 1];
#endif
  static const MicroKernel<T> portable[kMr] = {micro_portable<T, 1>, micro_portable<T, 2>, micro_portable<T, 3>,
                                               micro_portable<T, 4>, micro_portable<T, 5>, micro_portable<T, 6>};
  return portable[mr - 1];
}

}  // namespace

bool packed_gemm_uses_avx2() {
#ifdef MINIRNN_HAVE_AVX2_KERNEL
  return cpu_has_avx2_fma() && !portable_only.load();
#else
  return false;
#endif
}

void set_packed_gemm_portable(bool portable) { portable_only.store(portable); }

template <typename T>
void PackedB<T>::resize(int64_t K, int64_t N) {
  K_ = K;
  N_ = N;
  Npad_ = (N + NR - 1) / NR * NR;
  panels_ = Scratch<T>(K * Npad_);
  const int64_t last = N % NR;  // the last panel's columns [last, NR) are padding: zero
  if (last > 0)
    for (int64_t k = 0; k < K; k++) std::fill_n(chunk(k - k % KC, N - last) + (k % KC) * NR + last, NR - last, T(0));
}

template <typename T>
void PackedB<T>::pack_rows(int64_t K, int64_t N, const T* src, int64_t ld) {
  resize(K, N);
  for (int64_t k = 0; k < K; k++)
    for (int64_t n0 = 0; n0 < N; n0 += NR) {
      const T* row = src + k * ld + n0;
      std::copy(row, row + std::min(NR, N - n0), chunk(k - k % KC, n0) + (k % KC) * NR);
    }
}

template <typename T>
void PackedB<T>::multiply(int64_t M, const T* A, int64_t lda, T* C, int64_t ldc, bool accumulate) const {
  if (K_ == 0) {
    if (!accumulate)
      for (int64_t m = 0; m < M; m++) std::fill(C + m * ldc, C + m * ldc + N_, T(0));
    return;
  }
  // A B larger than L2 streams from L3 or DRAM at every call: then the first row block of each
  // chunk prefetches the next chunk (contiguous in the layout) one cache line per k, so memory and
  // FMAs overlap (LSTM H1024: W_hh is 16 MB; its per-step product went from 3.3 to 2.3 ms).
  // A B that fits stays in cache, and there the prefetches only cost instructions (B=1: +8%).
  const bool prefetch = size_t(K_ * Npad_) * sizeof(T) > kPackedCacheBytes;
  for (int64_t k0 = 0; k0 < K_; k0 += KC) {
    const int64_t kc = std::min(KC, K_ - k0);
    const bool add = accumulate || k0 > 0;
    for (int64_t n0 = 0; n0 < N_; n0 += NR) {
      const T* panel = chunk(k0, n0);
      const int64_t nr = std::min(NR, N_ - n0);
      const bool last = k0 + kc == K_ && n0 + NR >= N_;  // nothing after it to prefetch
      for (int64_t m0 = 0; m0 < M; m0 += kMr) {
        const int64_t mr = std::min<int64_t>(kMr, M - m0);
        micro_kernel<T>(mr)(kc, A + m0 * lda + k0, lda, panel, C + m0 * ldc + n0, ldc, add, nr,
                            prefetch && m0 == 0 && !last ? panel + kc * NR : nullptr);
      }
    }
  }
}

template class PackedB<float>;
template class PackedB<double>;

}  // namespace minirnn
