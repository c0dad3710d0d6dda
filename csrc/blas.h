// blas.h -- a thin, typed wrapper over the scipy-openblas32 CBLAS gemm.
//
// Row-major everywhere: C(M, N) = alpha * op(A)(M, K) @ op(B)(K, N) + beta * C.
// Degenerate sizes are handled here so callers never pass BLAS an illegal
// leading dimension: M == 0 or N == 0 does nothing, K == 0 scales C by beta.
#pragma once

#include <cblas.h>  // from scipy_openblas32: every symbol carries the prefix scipy_

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
  blas_gemm(ta, tb, static_cast<blasint>(M), static_cast<blasint>(N), static_cast<blasint>(K), alpha, A,
            static_cast<blasint>(lda), B, static_cast<blasint>(ldb), beta, C, static_cast<blasint>(ldc));
}

}  // namespace minirnn
