// pointwise.h -- the tape's elementwise sigmoid, with the fused cells' activation (activations.h).
//
// numpy has no sigmoid: composed overflow-free from exp, abs and where it takes nine passes over
// the array. This is one pass, branch-free, vectorised.
#pragma once

#include <cstdint>

namespace minirnn {

// y(n) = sigmoid(x(n)); y may alias x. NaN propagates; float32 gives 0 below -87.3 (see .cpp).
template <typename T>
void sigmoid(const T* x, T* y, int64_t n);

}  // namespace minirnn
