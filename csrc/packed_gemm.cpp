// packed_gemm.cpp -- the micro-kernels and the blocking of PackedB::multiply (see packed_gemm.h).
//
// Legend: C(M, N) (+)= A(M, K) B(K, N); MR rows of A x NR columns of B per micro-kernel call,
// over a chunk of KC values of k (a chunk of one panel, KC x NR, stays in L1 across the
// row blocks that reuse it).
//
// Three micro-kernels, chosen by CPU at run time (the wheel is built for the baseline x86-64):
// AVX-512F, AVX2 + FMA, and a portable loop. The two SIMD ones are one template
// (micro_kernel_simd.inc) compiled under each instruction set's `#pragma GCC target`.
#include "packed_gemm.h"

#include <algorithm>
#include <atomic>
#include <stdexcept>
#include <utility>

#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define MINIRNN_HAVE_SIMD_KERNELS 1
#endif

namespace minirnn {
namespace {

constexpr int kMaxRows = 8;                  // most rows of A per micro-kernel call, any instruction set
constexpr int64_t kPanelChunkBytes = 16384;  // KC * NR * sizeof(T): a panel's chunk, in L1

// One micro-kernel call: C[r, j] (+)= sum_k A[r * lda + k] panel[k * NR + j], r < mr, j < nr.
template <typename T>
using MicroKernel = void (*)(int64_t kc, const T* A, int64_t lda, const T* panel, T* C, int64_t ldc, bool accumulate,
                             int64_t nr, const T* prefetch);

// An instruction set's micro-kernels: by_rows[mr - 1] does mr rows of A, mr = 1..max_rows.
template <typename T>
struct MicroKernelTable {
  MicroKernel<T> by_rows[kMaxRows];
  int max_rows;
};

// C's first nr columns of an mr x NR block (row r at block[r * NR]), added to C when accumulate.
template <typename T>
void store_block(const T* block, int64_t NR, int64_t mr, int64_t nr, T* C, int64_t ldc, bool accumulate) {
  for (int64_t r = 0; r < mr; r++)
    for (int64_t j = 0; j < nr; j++) C[r * ldc + j] = (accumulate ? C[r * ldc + j] : T(0)) + block[r * NR + j];
}

// Portable: any CPU, any T; the compiler vectorises the j loop as far as the target allows.
namespace portable {
template <typename T>
constexpr int64_t NR = 64 / sizeof(T);

template <typename T, int MR>
void micro(int64_t kc, const T* A, int64_t lda, const T* panel, T* C, int64_t ldc, bool accumulate, int64_t nr,
           const T* /*prefetch*/) {
  T block[MR * NR<T>] = {};
  for (int64_t k = 0; k < kc; k++)
    for (int r = 0; r < MR; r++) {
      const T a = A[r * lda + k];
      for (int64_t j = 0; j < NR<T>; j++) block[r * NR<T> + j] += a * panel[k * NR<T> + j];
    }
  store_block(block, NR<T>, MR, nr, C, ldc, accumulate);
}

template <typename T>
constexpr MicroKernelTable<T> kernels = {{micro<T, 1>, micro<T, 2>, micro<T, 3>, micro<T, 4>, micro<T, 5>, micro<T, 6>},
                                         6};
}  // namespace portable

#ifdef MINIRNN_HAVE_SIMD_KERNELS
#pragma GCC push_options
#pragma GCC target("avx2,fma")
namespace avx2 {
constexpr int kRows = 6;  // 12 accumulators of the 16 registers
template <typename T>
struct Simd;
template <>
struct Simd<float> {
  using V = __m256;
  static constexpr int W = 8;
  static V zero() { return _mm256_setzero_ps(); }
  static V load(const float* p) { return _mm256_loadu_ps(p); }
  static V broadcast(const float* p) { return _mm256_broadcast_ss(p); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm256_add_ps(a, b); }
  static void store(float* p, V v) { _mm256_storeu_ps(p, v); }
};
template <>
struct Simd<double> {
  using V = __m256d;
  static constexpr int W = 4;
  static V zero() { return _mm256_setzero_pd(); }
  static V load(const double* p) { return _mm256_loadu_pd(p); }
  static V broadcast(const double* p) { return _mm256_broadcast_sd(p); }
  static V fma(V a, V b, V c) { return _mm256_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm256_add_pd(a, b); }
  static void store(double* p, V v) { _mm256_storeu_pd(p, v); }
};
#include "micro_kernel_simd.inc"
}  // namespace avx2
#pragma GCC pop_options

#pragma GCC push_options
#pragma GCC target("avx512f")
namespace avx512 {
// 16 accumulators of the 32 registers. Against 6 rows (the AVX2 count), interleaved A/B on a 2-core
// Xeon, 2 threads, four runs of 11-15 rounds: LSTM T50 B64 H512 training 0.97-1.01, inference
// 0.92-0.99, T50 B32 H128 training 0.96-0.97, GRU T100 B16 H1024 inference 0.95-0.96. 12 rows gave
// 0.94-1.00 of 8 (one run).
constexpr int kRows = 8;
template <typename T>
struct Simd;
template <>
struct Simd<float> {
  using V = __m512;
  static constexpr int W = 16;
  static V zero() { return _mm512_setzero_ps(); }
  static V load(const float* p) { return _mm512_loadu_ps(p); }
  static V broadcast(const float* p) { return _mm512_set1_ps(*p); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static V add(V a, V b) { return _mm512_add_ps(a, b); }
  static void store(float* p, V v) { _mm512_storeu_ps(p, v); }
};
template <>
struct Simd<double> {
  using V = __m512d;
  static constexpr int W = 8;
  static V zero() { return _mm512_setzero_pd(); }
  static V load(const double* p) { return _mm512_loadu_pd(p); }
  static V broadcast(const double* p) { return _mm512_set1_pd(*p); }
  static V fma(V a, V b, V c) { return _mm512_fmadd_pd(a, b, c); }
  static V add(V a, V b) { return _mm512_add_pd(a, b); }
  static void store(double* p, V v) { _mm512_storeu_pd(p, v); }
};
#include "micro_kernel_simd.inc"
}  // namespace avx512
#pragma GCC pop_options
#endif

const char* const kIsaNames[] = {"portable", "avx2", "avx512"};  // indexed by MicroKernelIsa

// The fastest micro-kernel this CPU runs (checked once; the OS must save the vector registers,
// which __builtin_cpu_supports checks).
MicroKernelIsa best_isa() {
#ifdef MINIRNN_HAVE_SIMD_KERNELS
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return MicroKernelIsa::avx512;
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return MicroKernelIsa::avx2;
#endif
  return MicroKernelIsa::portable;
}

std::atomic<int> forced_isa{-1};  // a MicroKernelIsa a test forced, or -1: by CPU

MicroKernelIsa current_isa() {
  static const MicroKernelIsa best = best_isa();
  const int forced = forced_isa.load(std::memory_order_relaxed);
  return forced >= 0 ? MicroKernelIsa(forced) : best;
}

// Columns per panel (two vectors) of a micro-kernel.
template <typename T>
int64_t panel_width(MicroKernelIsa isa) {
  return (isa == MicroKernelIsa::avx512 ? 128 : 64) / int64_t(sizeof(T));
}

template <typename T>
const MicroKernelTable<T>& micro_kernels(MicroKernelIsa isa) {
#ifdef MINIRNN_HAVE_SIMD_KERNELS
  if (isa == MicroKernelIsa::avx512) return avx512::kernels<T>;
  if (isa == MicroKernelIsa::avx2) return avx2::kernels<T>;
#endif
  return portable::kernels<T>;
}

}  // namespace

std::string packed_gemm_kernel() { return kIsaNames[int(current_isa())]; }

std::vector<std::string> packed_gemm_kernels() {
  static const MicroKernelIsa best = best_isa();
  std::vector<std::string> names;
  for (int isa = 0; isa <= int(best); isa++) names.push_back(kIsaNames[isa]);
  return names;
}

void set_packed_gemm_kernel(const std::string& name) {
  if (name.empty()) {
    forced_isa.store(-1);
    return;
  }
  const std::vector<std::string> runnable = packed_gemm_kernels();
  for (size_t isa = 0; isa < runnable.size(); isa++)
    if (runnable[isa] == name) {
      forced_isa.store(int(isa));
      return;
    }
  std::string known;
  for (const std::string& n : runnable) known += (known.empty() ? "" : ", ") + n;
  throw std::invalid_argument("packed gemm kernel: expected one this CPU runs (" + known + "), got '" + name + "'");
}

template <typename T>
void PackedB<T>::resize(int64_t K, int64_t N) {
  isa_ = current_isa();
  nr_ = panel_width<T>(isa_);
  kc_ = kPanelChunkBytes / (nr_ * int64_t(sizeof(T)));
  K_ = K;
  N_ = N;
  Npad_ = (N + nr_ - 1) / nr_ * nr_;
  panels_ = Scratch<T>(K * Npad_);
  const int64_t last = N % nr_;  // the last panel's columns [last, NR) are padding: zero
  if (last > 0)
    for (int64_t k = 0; k < K; k++)
      std::fill_n(chunk(k - k % kc_, N - last) + (k % kc_) * nr_ + last, nr_ - last, T(0));
}

template <typename T>
void PackedB<T>::pack_rows(int64_t K, int64_t N, const T* src, int64_t ld) {
  resize(K, N);
  for (int64_t k = 0; k < K; k++)
    for (int64_t n0 = 0; n0 < N; n0 += nr_) {
      const T* row = src + k * ld + n0;
      std::copy(row, row + std::min(nr_, N - n0), chunk(k - k % kc_, n0) + (k % kc_) * nr_);
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
  // FMAs overlap. A B that fits stays in cache, and there the prefetches only cost instructions.
  const bool prefetch = size_t(K_ * Npad_) * sizeof(T) > kPackedCacheBytes;
  const MicroKernelTable<T>& kernels = micro_kernels<T>(isa_);
  for (int64_t k0 = 0; k0 < K_; k0 += kc_) {
    const int64_t kc = std::min(kc_, K_ - k0);
    const bool add = accumulate || k0 > 0;
    for (int64_t n0 = 0; n0 < N_; n0 += nr_) {
      const T* panel = chunk(k0, n0);
      const int64_t nr = std::min(nr_, N_ - n0);
      const bool last = k0 + kc == K_ && n0 + nr_ >= N_;  // nothing after it to prefetch
      for (int64_t m0 = 0; m0 < M; m0 += kernels.max_rows) {
        const int64_t mr = std::min<int64_t>(kernels.max_rows, M - m0);
        kernels.by_rows[mr - 1](kc, A + m0 * lda + k0, lda, panel, C + m0 * ldc + n0, ldc, add, nr,
                        prefetch && m0 == 0 && !last ? panel + kc * nr_ : nullptr);
      }
    }
  }
}

template class PackedB<float>;
template class PackedB<double>;

}  // namespace minirnn
