// parallel.cpp -- the kernels' thread count and the OpenBLAS thread setting.
#include "parallel.h"

#include <omp.h>

#include <atomic>

namespace minirnn {

namespace {
std::atomic<int> g_num_threads{0};  // 0: not set yet, use omp_get_max_threads()
}

int num_threads() {
  const int n = g_num_threads.load();
  return n > 0 ? n : omp_get_max_threads();
}

void set_num_threads(int n) { g_num_threads.store(n > 0 ? n : 1); }

void init_blas_threads() { scipy_openblas_set_num_threads(1); }

}  // namespace minirnn
