// parallel.cpp -- the kernels' thread count and the OpenBLAS thread setting.
#include "parallel.h"

#include <omp.h>

#include <algorithm>
#include <atomic>

namespace minirnn {

namespace {
std::atomic<int> g_num_threads{0};  // 0: not set yet, use omp_get_max_threads()
std::atomic<int64_t> g_min_step_work{32768};
std::atomic<StepSharing> g_step_sharing{StepSharing::automatic};
}

int num_threads() {
  const int n = g_num_threads.load();
  return n > 0 ? n : omp_get_max_threads();
}

void set_num_threads(int n) { g_num_threads.store(n > 0 ? n : 1); }

int64_t min_step_work() { return g_min_step_work.load(); }

void set_min_step_work(int64_t macs) { g_min_step_work.store(macs > 0 ? macs : 0); }

StepSharing step_sharing() { return g_step_sharing.load(); }

void set_step_sharing(StepSharing sharing) { g_step_sharing.store(sharing); }

int threads_for(int64_t macs, int64_t per_thread) {
  const int n = num_threads();
  if (per_thread == 0 || macs >= per_thread * n) return n;
  return static_cast<int>(std::max<int64_t>(1, macs / per_thread));
}

void init_blas_threads() { scipy_openblas_set_num_threads(1); }

}  // namespace minirnn
