// parallel.h -- who owns the cores, and how work is split among them.
//
// One owner: OpenBLAS runs single-threaded (set once at module init) and every
// kernel opens ONE OpenMP parallel region whose threads call single-threaded
// BLAS on their own block of rows or columns. No BLAS thread pool ever runs
// beside the OpenMP team, so the two never fight for the cores.
#pragma once

#include <cstdint>

#include "blas.h"

#if defined(__SSE2__) || defined(__x86_64__) || defined(_M_X64)
#include <xmmintrin.h>
#define MINIRNN_HAVE_MXCSR 1
#endif

namespace minirnn {

// Most OpenMP threads the kernels use (defaults to omp_get_max_threads()).
int num_threads();
// Sets it; n must be >= 1 (checked by the bindings).
void set_num_threads(int n);
// Multiply-adds of one step's recurrent GEMM each thread must get for a time loop to use
// more than one thread (the default is set in parallel.cpp); a smaller step runs on one
// thread, since the barrier at every step then costs more than splitting saves. 0 always
// uses num_threads().
int64_t min_step_work();
void set_min_step_work(int64_t macs);
// Threads for a region giving each thread macs / n multiply-adds: num_threads(), fewer
// when each would get less than per_thread (0: no limit), at least 1.
int threads_for(int64_t macs, int64_t per_thread);
// A time loop whose per-step recurrent GEMM does `step_macs` multiply-adds.
inline int loop_threads(int64_t step_macs) { return threads_for(step_macs, min_step_work()); }
// A region of big GEMMs doing `macs` multiply-adds in all. Each thread must get 128x a
// step's share (~4M by default, ~0.1 ms): waking an idle second thread can cost up to a
// scheduler tick, more than a small product is worth.
inline int gemm_threads(int64_t macs) { return threads_for(macs, 128 * min_step_work()); }
// How a time loop's team shares its steps, by hidden units or by batch rows (StepShare, recurrence.h):
// chosen by size (automatic) unless a test forced one.
enum class StepSharing { automatic, units, rows };
StepSharing step_sharing();
void set_step_sharing(StepSharing sharing);
// Pins OpenBLAS to one thread; called once at module init.
void init_blas_threads();

// A half-open range [begin, begin + size).
struct Range {
  int64_t begin;
  int64_t size;
};

// Part `part` of `parts` balanced contiguous pieces of [0, total).
inline Range split(int64_t total, int parts, int part) {
  const int64_t base = total / parts, extra = total % parts;
  const int64_t begin = part * base + (part < extra ? part : extra);
  return {begin, base + (part < extra ? 1 : 0)};
}

// RAII: flush-to-zero and denormals-are-zero in this thread, restored on exit,
// so subnormal activations never drop the kernels onto the slow microcode path.
class FlushDenormals {
 public:
#ifdef MINIRNN_HAVE_MXCSR
  FlushDenormals() : saved_(_mm_getcsr()) { _mm_setcsr(saved_ | 0x8040u); }  // FTZ (bit 15) | DAZ (bit 6)
  ~FlushDenormals() { _mm_setcsr(saved_); }

 private:
  unsigned saved_;
#else
  FlushDenormals() {}
#endif
  FlushDenormals(const FlushDenormals&) = delete;
  FlushDenormals& operator=(const FlushDenormals&) = delete;
};

// Thread `tid` of `nt` computes its block of C(M, N) = alpha op(A) op(B) + beta C.
// The larger of M and N is split, so every element of C is one full dot product
// over K computed by one thread: no cross-thread reductions, and the summation
// order does not depend on the thread count.
template <typename T>
void gemm_block(int tid, int nt, Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A,
                int64_t lda, const T* B, int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M >= N) {
    const Range r = split(M, nt, tid);
    const T* Ab = ta == Trans::no ? A + r.begin * lda : A + r.begin;
    gemm(ta, tb, r.size, N, K, alpha, Ab, lda, B, ldb, beta, C + r.begin * ldc, ldc);
  } else {
    const Range r = split(N, nt, tid);
    const T* Bb = tb == Trans::no ? B + r.begin : B + r.begin * ldb;
    gemm(ta, tb, M, r.size, K, alpha, A, lda, Bb, ldb, beta, C + r.begin, ldc);
  }
}

// Thread `tid` of `nt` computes its block of Y(M, N) = X(M, K) @ W(N, K)^T (a layer's input
// projection; its bias is added later, by the pointwise pass that reads Y).
template <typename T>
void project_block(int tid, int nt, T* Y, const T* X, const T* W, int64_t M, int64_t N, int64_t K) {
  gemm_block<T>(tid, nt, Trans::no, Trans::yes, M, N, K, T(1), X, K, W, K, T(0), Y, N);
}

// Thread `tid` of `nt`: out(N) = sum over rows of A(M, N), columns split among
// threads, rows summed in order (deterministic whatever the thread count).
template <typename T>
void column_sums_block(int tid, int nt, T* out, const T* A, int64_t M, int64_t N) {
  const Range cols = split(N, nt, tid);
  for (int64_t n = cols.begin; n < cols.begin + cols.size; n++) out[n] = T(0);
  for (int64_t m = 0; m < M; m++)
    for (int64_t n = cols.begin; n < cols.begin + cols.size; n++) out[n] += A[m * N + n];
}

}  // namespace minirnn
