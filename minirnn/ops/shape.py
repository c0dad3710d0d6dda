"""Shape changes that move no values around logically: reshape, permute, transpose."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..autograd import Context, Function
from ..tensor import Tensor
from ..checks import check_tensor


class Reshape(Function):
    """y = x viewed with a new shape (same elements, row-major order);  dx = dy reshaped back."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        ctx.shape = x.shape
        return x.reshape(shape)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple[np.ndarray, None]:
        return grad.reshape(ctx.shape), None


class Permute(Function):
    """y = x with its axes reordered, y.shape[i] = x.shape[dims[i]];  dx = dy permuted by the inverse.

    Both are views: nothing is copied (``W.T`` costs no pass over W). Whatever needs contiguous
    memory copies then, and the products read a transposed 2-D operand as a GEMM flag instead.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, dims: tuple[int, ...]) -> np.ndarray:
        ctx.inverse = tuple([dims.index(k) for k in range(len(dims))])
        return x.transpose(dims)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple[np.ndarray, None]:
        return grad.transpose(ctx.inverse), None


def reshape(x: Tensor, shape: int | Sequence[int]) -> Tensor:
    """``x`` with shape ``shape`` (one entry may be -1); the element count must not change."""
    check_tensor("reshape", "x", x, floating=False)
    dims: Sequence[Any] = (shape,) if isinstance(shape, (int, np.integer)) else shape
    if not all(isinstance(s, (int, np.integer)) and not isinstance(s, bool) for s in dims):
        raise TypeError(f"reshape(): expected shape to be ints, got {dims!r}")
    new_shape = tuple(int(s) for s in dims)
    try:
        np.empty(x.shape, dtype=np.bool_).reshape(new_shape)
    except ValueError:
        raise ValueError(f"reshape(): cannot reshape a tensor of shape {x.shape} ({x.size} elements) "
                         f"into shape {new_shape}") from None
    return Reshape.apply(x, new_shape)


def permute(x: Tensor, dims: Sequence[int]) -> Tensor:
    """Reorder the axes of ``x``: ``dims`` is a permutation of range(x.ndim) (negatives allowed)."""
    check_tensor("permute", "x", x, floating=False)
    dims = tuple(int(d) % x.ndim if -x.ndim <= d < x.ndim else d for d in dims)
    if sorted(dims) != list(range(x.ndim)):
        raise ValueError(f"permute(): expected a permutation of range({x.ndim}), got {dims}")
    return Permute.apply(x, dims)


def transpose(x: Tensor, dim0: int = -2, dim1: int = -1) -> Tensor:
    """Swap axes ``dim0`` and ``dim1`` of ``x``."""
    check_tensor("transpose", "x", x, floating=False)
    dims = list(range(x.ndim))
    for d in (dim0, dim1):
        if not -x.ndim <= d < x.ndim:
            raise IndexError(f"transpose(): dim {d} is out of range for a tensor with {x.ndim} dimensions")
    dims[dim0], dims[dim1] = dims[dim1], dims[dim0]
    return permute(x, dims)
