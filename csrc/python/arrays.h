// arrays.h -- where the Python module's result arrays live, and the kernels' view of them.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "scratch.h"

namespace minirnn::python {

namespace py = pybind11;

// An uninitialised array. One of 1 MB or more lives in Scratch memory (scratch.h), given back to
// the cache when numpy frees the array: a training step's workspace, y, dx and matmul products
// are reused from the previous step's instead of faulting in fresh pages.
template <typename scalar_t>
py::array_t<scalar_t> empty(const std::vector<int64_t>& shape) {
  const std::vector<py::ssize_t> dims(shape.begin(), shape.end());
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  if (n * int64_t(sizeof(scalar_t)) < int64_t(kMinCachedBytes)) return py::array_t<scalar_t>(dims);
  auto block = std::make_unique<Scratch<scalar_t>>(n);
  scalar_t* data = block->data();
  py::capsule owner(block.get(), [](void* p) { delete static_cast<Scratch<scalar_t>*>(p); });
  block.release();  // the capsule owns it now
  return py::array_t<scalar_t>(dims, data, owner);
}

// The kernels' pointers into an array, or null for an absent one (no_array).
template <typename scalar_t>
const scalar_t* ptr(const py::array& a) { return a ? static_cast<const scalar_t*>(a.data()) : nullptr; }
template <typename scalar_t>
scalar_t* mut(py::array& a) { return a ? static_cast<scalar_t*>(a.mutable_data()) : nullptr; }

// An absent result array as Python's None.
inline py::object or_none(const py::array& a) { return a ? py::object(a) : py::object(py::none()); }

}  // namespace minirnn::python
