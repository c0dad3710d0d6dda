// pointwise.h -- the tape's elementwise sigmoid, with the fused cells' activation (activations.h).
//
// numpy has no sigmoid: composed from exp, abs and where it took nine passes over the array and
// 18x the time of np.tanh at (32, 512). This is one pass, branch-free, vectorised.
#pragma once

#include <cstdint>

namespace minirnn {

// y(n) = sigmoid(x(n)); y may alias x. NaN propagates; float32 gives 0 below -87.3 (see .cpp).
template <typename T>
void sigmoid(const T* x, T* y, int64_t n);

}  // namespace minirnn
