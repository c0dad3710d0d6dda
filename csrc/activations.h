// activations.h -- the pointwise nonlinearities shared by every cell, each beside
// its derivative written in terms of the activation's OUTPUT (what the workspace keeps).
//
// NaN propagates through all of them (relu(NaN) = NaN, as in PyTorch).
#pragma once

#include <cmath>

namespace minirnn {

template <typename T>
inline T sigmoid(T x) { return T(1) / (T(1) + std::exp(-x)); }
template <typename T>
inline T dsigmoid(T s) { return s * (T(1) - s); }  // s = sigmoid(x)

template <typename T>
inline T tanh_(T x) { return std::tanh(x); }
template <typename T>
inline T dtanh(T t) { return T(1) - t * t; }  // t = tanh(x)

template <typename T>
inline T relu(T x) { return x < T(0) ? T(0) : x; }  // NaN < 0 is false: NaN stays NaN
template <typename T>
inline T drelu(T r) { return r > T(0) ? T(1) : T(0); }  // r = relu(x)

}  // namespace minirnn
