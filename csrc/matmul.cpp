// matmul.cpp -- one 2-D GEMM split over the kernels' OpenMP team (see matmul.h).
#include "matmul.h"

#include <omp.h>

#include "parallel.h"

namespace minirnn {

template <typename T>
void matmul(Trans ta, Trans tb, int64_t M, int64_t N, int64_t K, const T* A, int64_t lda, const T* B, int64_t ldb,
            T* C) {
#pragma omp parallel num_threads(gemm_threads(M * N * K))
  {
    const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
    gemm_block<T>(tid, nt, ta, tb, M, N, K, T(1), A, lda, B, ldb, T(0), C, N);
  }
}

template void matmul<float>(Trans, Trans, int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t,
                            float*);
template void matmul<double>(Trans, Trans, int64_t, int64_t, int64_t, const double*, int64_t, const double*, int64_t,
                             double*);

}  // namespace minirnn
