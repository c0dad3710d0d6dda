"""Reductions over an axis, a tuple of axes, or everything: sum, mean, max.

Backward puts the reduced axes back (as size 1) and broadcasts the gradient over them.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Context, Function
from ..tensor import Tensor
from ..checks import check_tensor
from ._util import normalize_axes


def _expand(grad: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
    """Re-insert the reduced ``axes`` as size-1 axes so ``grad`` broadcasts against the input."""
    return grad if keepdims else np.expand_dims(grad, axes)


class Sum(Function):
    """y = sum_{axes} x;  dy/dx = 1 (the gradient is copied over the reduced axes)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        ctx.shape, ctx.axes, ctx.keepdims = x.shape, axes, keepdims
        return x.sum(axis=axes, keepdims=keepdims)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple[np.ndarray, None, None]:
        return np.broadcast_to(_expand(grad, ctx.axes, ctx.keepdims), ctx.shape).copy(), None, None


class Max(Function):
    """y = max_{axes} x;  dy/dx_i = 1 / k if x_i is one of the k maxima, else 0.

    Ties split the gradient evenly (like ``torch.amax`` and ``torch.max()`` without a dim);
    without ties every convention, ``torch.max(x, dim)`` included, gives the same gradient.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, axes: tuple[int, ...], keepdims: bool) -> np.ndarray:
        y = x.max(axis=axes, keepdims=True)
        is_max = x == y
        ctx.save_for_backward((is_max / is_max.sum(axis=axes, keepdims=True)).astype(x.dtype))
        ctx.axes, ctx.keepdims = axes, keepdims
        return y if keepdims else y.squeeze(axis=axes)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple[np.ndarray, None, None]:
        (share,) = ctx.saved_tensors
        return _expand(grad, ctx.axes, ctx.keepdims) * share, None, None


def sum(x: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Sum over ``axis`` (None: all axes; an int; or a tuple of ints)."""
    check_tensor("sum", "x", x)
    return Sum.apply(x, normalize_axes("sum", axis, x.ndim), bool(keepdims))


def mean(x: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:
    """Mean over ``axis``: the sum divided by the number of elements reduced."""
    check_tensor("mean", "x", x)
    axes = normalize_axes("mean", axis, x.ndim)
    count = int(np.prod([x.shape[a] for a in axes]))
    return Sum.apply(x, axes, bool(keepdims)) * (1.0 / count if count else np.nan)


def max(x: Tensor, axis: Any = None, keepdims: bool = False) -> Tensor:  # noqa: A001
    """Largest value over ``axis``; ties share the gradient evenly (see :class:`Max`)."""
    check_tensor("max", "x", x)
    if x.size == 0:
        raise ValueError(f"max(): expected a non-empty tensor, got shape {x.shape}")
    return Max.apply(x, normalize_axes("max", axis, x.ndim), bool(keepdims))
