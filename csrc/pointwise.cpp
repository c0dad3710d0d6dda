// pointwise.cpp -- elementwise sigmoid for the tape (see pointwise.h).
#include "pointwise.h"

#include "activations.h"
#include "parallel.h"

namespace minirnn {

namespace {
template <typename T>
inline T tape_sigmoid(T x) { return minirnn::sigmoid<T>(x); }
// Below -87.34 the sigmoid is under float32's smallest normal number (1.2e-38), where the cells'
// exp_f32 clamps its argument (so 1 / (1 + e^-x) would stay near 4e-39): give 0 there. NaN
// compares false and stays NaN.
template <>
inline float tape_sigmoid<float>(float x) { return x < -87.3365447505531f ? 0.0f : minirnn::sigmoid<float>(x); }

template <typename T>
MINIRNN_POINTWISE void sigmoid_range(const T* x, T* y, int64_t n) {
#pragma omp simd
  for (int64_t k = 0; k < n; k++) y[k] = tape_sigmoid<T>(x[k]);
}
}  // namespace

template <typename T>
void sigmoid(const T* x, T* y, int64_t n) {
  // Large arrays split over the OpenMP team (each thread a contiguous block); below 64k elements
  // one thread is faster than waking the others.
  constexpr int64_t kMinPerThread = 1 << 16;
#pragma omp parallel for schedule(static) num_threads(num_threads()) if (n >= 2 * kMinPerThread)
  for (int64_t start = 0; start < n; start += kMinPerThread) {
    const int64_t len = n - start < kMinPerThread ? n - start : kMinPerThread;
    sigmoid_range<T>(x + start, y + start, len);
  }
}

template void sigmoid<float>(const float*, float*, int64_t);
template void sigmoid<double>(const double*, double*, int64_t);

}  // namespace minirnn
