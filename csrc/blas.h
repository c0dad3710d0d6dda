// blas.h -- a thin, typed wrapper over the scipy-openblas32 CBLAS gemm.
//
// Row-major everywhere: C(M, N) = alpha * op(A)(M, K) @ op(B)(K, N) + beta * C.
// Degenerate sizes are handled here so callers never pass BLAS an illegal
// leading dimension: M == 0 or N == 0 does nothing, K == 0 scales C by beta.
// A product of one or two rows (a tape matmul of one row, as in generation; a thread's block
// of a layer's big GEMMs when it has one or two of the computed rows) goes to gemv row by row:
// OpenBLAS's gemm packs both operands on every call, which costs more than the product of a row.
// (The time loop's per-step products run on PackedB, packed_gemm.h, not here, except a forward's
// one-row steps with W_hh unpacked: see recurrence.h.)
#pragma once

#include <cblas.h>  // from scipy_openblas32: every symbol carries the prefix scipy_

#include <algorithm>
#include <cstdint>

namespace minirnn {

enum class Trans { no, yes };

inline CBLAS_TRANSPOSE to_cblas(Trans t) { return t == Trans::yes ? CblasTrans : CblasNoTrans; }

inline void blas_gemm(Trans ta, Trans tb, blasint M, blasint N, blasint K, float alpha, const float* A,
                      blasint lda, const float* B, blasint ldb, float beta, float* C, blasint ldc) {
  scipy_cblas_sgemm(CblasRowMajor, to_cblas(ta), to_cblas(tb), M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

inline void blas_gemm(Trans ta, Trans tb, blasint M, blasint N, blasint K, double alpha, const double* A,
                      blasint lda, const double* B, blasint ldb, double beta, double* C, blasint ldc) {
  scipy_cblas_dgemm(CblasRowMajor, to_cblas(ta), to_cblas(tb), M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

inline void blas_gemv(Trans ta, blasint M, blasint N, float alpha, const float* A, blasint lda, const float* x,
                      float beta, float* y) {
  scipy_cblas_sgemv(CblasRowMajor, to_cblas(ta), M, N, alpha, A, lda, x, 1, beta, y, 1);
}

inline void blas_gemv(Trans ta, blasint M, blasint N, double alpha, const double* A, blasint lda, const double* x,
                      double beta, double* y) {
  scipy_cblas_dgemv(CblasRowMajor, to_cblas(ta), M, N, alpha, A, lda, x, 1, beta, y, 1);
}

// Rows of A at most this many (and A not transposed): gemm runs as one gemv per row.
constexpr int64_t kGemvMaxRows = 2;

// C(M, N) = alpha * op(A) @ op(B) + beta * C, single-threaded OpenBLAS in the calling thread.
template <typename T>
void gemm(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t lda, const T* B,
          int64_t ldb, T beta, T* C, int64_t ldc) {
  if (M <= 0 || N <= 0) return;
  if (K <= 0) {
    for (int64_t m = 0; m < M; m++)
      for (int64_t n = 0; n < N; n++) C[m * ldc + n] = beta == T(0) ? T(0) : beta * C[m * ldc + n];
    return;
  }
  if (M <= kGemvMaxRows && ta == Trans::no) {
    // Row m of C = op(B)^T a_m: B is (N, K) when transposed, else (K, N). With beta = 0 the
    // row is cleared first: gemv's y = 0 * y would keep a NaN left in uninitialised memory.
    for (int64_t m = 0; m < M; m++) {
      if (beta == T(0)) std::fill(C + m * ldc, C + m * ldc + N, T(0));
      blas_gemv(tb == Trans::yes ? Trans::no : Trans::yes, static_cast<blasint>(tb == Trans::yes ? N : K),
                static_cast<blasint>(tb == Trans::yes ? K : N), alpha, B, static_cast<blasint>(ldb), A + m * lda, beta,
                C + m * ldc);
    }
    return;
  }
  blas_gemm(ta, tb, static_cast<blasint>(M), static_cast<blasint>(N), static_cast<blasint>(K), alpha, A,
            static_cast<blasint>(lda), B, static_cast<blasint>(ldb), beta, C, static_cast<blasint>(ldc));
}

}  // namespace minirnn
