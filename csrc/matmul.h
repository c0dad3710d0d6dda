// matmul.h -- one 2-D GEMM on the kernels' OpenMP team, for the tape's MatMul.
//
// numpy's matmul runs its own multi-threaded OpenBLAS, whose workers spin beside the
// kernels' OpenMP team and steal its cores (NOTES-build.md). This product runs on the
// same team as the kernels instead: each thread a block of C (gemm_block), single-threaded
// BLAS, and one thread when the product is small (gemm_threads).
#pragma once

#include <cstdint>

#include "blas.h"

namespace minirnn {

// C(M, N) = op(A)(M, K) @ op(B)(K, N), row-major, C contiguous; op(X) = X^T when
// transposed. M, N or K may be 0 (K = 0 gives zeros).
template <typename T>
void matmul(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
            T* C);

}  // namespace minirnn
