// activations.h -- the pointwise nonlinearities shared by every cell, each beside
// its derivative written in terms of the activation's OUTPUT (what the workspace keeps).
//
// NaN propagates through all of them (relu(NaN) = NaN, as in PyTorch).
#pragma once

#include <cmath>
#include <cstdint>

namespace minirnn {

// The cells' pointwise row functions are compiled three times, for AVX-512F, for AVX2 and for the
// baseline x86-64 (SSE2), and the loader picks one for the CPU it runs on. The AVX2 and baseline
// clones give bit-identical results (the ops are elementwise, and neither target has FMA). The
// AVX-512F one may differ in the last bit: GCC contracts a * b + c into one FMA there (C++ keeps
// -ffp-contract=fast even under -std=c++17), which rounds once instead of twice; it is the faster
// clone where the CPU has it (benchmarks/README.md, "The kernels' other choices").
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define MINIRNN_POINTWISE __attribute__((target_clones("avx512f", "avx2", "default")))
#else
#define MINIRNN_POINTWISE
#endif

template <typename T>
inline T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }
template <typename T>
inline T dsigmoid(T s) { return s * (T(1) - s); }  // s = sigmoid(x)

template <typename T>
inline T tanh_(T x) { return std::tanh(x); }
template <typename T>
inline T dtanh(T t) { return T(1) - t * t; }  // t = tanh(x)

// float32 fast paths: branch-free (selects, no calls) so that the gate loops vectorise
// under `#pragma omp simd` without -ffast-math; a few ulp from the correctly rounded
// value (checked against PyTorch in tests/test_kernels.py). float64 keeps std::exp/std::tanh.
namespace detail {
// e^x, Cephes' expf polynomial on x - n ln2, scaled by 2^n through the exponent bits. Adding
// 1.5 * 2^23 rounds x / ln2 to the integer n and leaves n in the low mantissa bits of `shifted`
// (its bits are 0x4B400000 + n), so shifting them up by 23 gives n << 23 with no float-to-int
// conversion (and no NaN guard for it: a NaN's bits give a finite scale, and y is NaN already).
// Bit-identical to converting n, and cheaper.
inline float exp_f32(float x) {
  const float hi = 88.3762626647949f, lo = -87.3365447505531f;  // 2^n stays a normal float
  x = x > hi ? hi : x;                                           // NaN compares false: stays NaN
  x = x < lo ? lo : x;
  const float shifted = x * 1.44269504088896341f + 12582912.0f;  // 1.5 * 2^23 + round(x / ln2)
  const float n = shifted - 12582912.0f;
  const float r = (x - n * 0.693359375f) - n * -2.12194440e-4f;      // x - n ln2 in two parts
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * (r * r) + r + 1.0f;
  const uint32_t bits = (__builtin_bit_cast(uint32_t, shifted) << 23) + 0x3F800000u;
  return y * __builtin_bit_cast(float, bits);
}
}  // namespace detail

template <>
inline float sigmoid<float>(float x) { return 1.0f / (1.0f + detail::exp_f32(-x)); }

// tanh: x P(x^2) / Q(x^2), a rational fit of degrees 6 and 3 in x^2 (13/6 in x) to tanh on
// |x| <= 9, with x clamped there (where tanh rounds to +-1 in float32). Coefficients and errors:
// csrc/fit_tanh.py. In float32: at most 5.4 ulp (3.2e-7 relative) from the correctly rounded
// tanh over [-12, 12], exact (x) near 0, odd, |tanh| <= 1. One division and no exp per value: cheaper
// than 1 - 2 / (e^{2|x|} + 1) (benchmarks/README.md, "The kernels' other choices").
template <>
inline float tanh_<float>(float x) {
  x = x > 9.0f ? 9.0f : x;  // NaN compares false: stays NaN
  x = x < -9.0f ? -9.0f : x;
  const float z = x * x;
  float p = -8.4871515e-14f;
  p = p * z + 5.2774157e-11f;
  p = p * z - 2.0224295e-08f;
  p = p * z + 1.115412e-05f;
  p = p * z + 0.003103941f;
  p = p * z + 0.13083997f;
  p = p * z + 1.0f;
  float q = 0.00025461212f;
  q = q * z + 0.024495121f;
  q = q * z + 0.46417326f;
  q = q * z + 1.0f;
  const float t = x * p / q;
  return t > 1.0f ? 1.0f : (t < -1.0f ? -1.0f : t);  // rounding may overshoot 1 by an ulp
}

template <typename T>
inline T relu(T x) { return x < T(0) ? T(0) : x; }  // NaN < 0 is false: NaN stays NaN
template <typename T>
inline T drelu(T r) { return r > T(0) ? T(1) : T(0); }  // r = relu(x)

}  // namespace minirnn
