"""Joining and splitting along an axis: cat, stack, split.

cat and split are each other's backward: the gradient of a concatenation is split back into the
pieces' sizes, and the gradient of a split is the concatenation of the pieces' gradients.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from ..autograd import Context, Function
from ..tensor import Tensor
from ..checks import check_tensor


def _cuts(sizes: Sequence[int]) -> list[int]:
    """Split points along the axis for pieces of the given sizes (np.split's indices)."""
    return list(np.cumsum(sizes)[:-1])


class Cat(Function):
    """y = [x_0 | x_1 | ...] along ``axis``;  dx_k = the slice of dy that x_k occupies."""

    @staticmethod
    def forward(ctx: Context, axis: int, *xs: np.ndarray) -> np.ndarray:
        ctx.axis, ctx.sizes = axis, [x.shape[axis] for x in xs]
        return np.concatenate(xs, axis=axis)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
        # Slices, not np.split: a tree joins two children at every node, where np.split's set-up
        # cost more than the copy.
        pieces: list[np.ndarray | None] = [None]
        index = [slice(None)] * grad.ndim
        start = 0
        for size in ctx.sizes:
            index[ctx.axis] = slice(start, start + size)
            pieces.append(grad[tuple(index)])
            start += size
        return tuple(pieces)


class Stack(Function):
    """y = the x_k stacked along a new ``axis``;  dx_k = dy indexed at k along that axis."""

    @staticmethod
    def forward(ctx: Context, axis: int, *xs: np.ndarray) -> np.ndarray:
        ctx.axis = axis
        return np.stack(xs, axis=axis)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple[np.ndarray | None, ...]:
        moved = np.moveaxis(grad, ctx.axis, 0)
        # (g[k, ...] keeps a 0-d piece an array; ascontiguousarray would make it 1-d)
        return (None, *(g if g.flags.c_contiguous else g.copy() for g in (moved[k, ...] for k in range(len(moved)))))


class Split(Function):
    """(y_0, y_1, ...) = x cut along ``axis`` into pieces of ``sizes``;  dx = [dy_0 | dy_1 | ...]."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, sizes: tuple[int, ...], axis: int) -> tuple[np.ndarray, ...]:
        ctx.axis = axis
        return tuple(np.ascontiguousarray(p) for p in np.split(x, _cuts(sizes), axis=axis))

    @staticmethod
    def backward(ctx: Context, *grads: np.ndarray) -> tuple[np.ndarray, None, None]:
        return np.concatenate(grads, axis=ctx.axis), None, None


def _check_many(op: str, tensors: Sequence[Tensor], axis: int, extra_dim: int) -> int:
    """Validate a non-empty list of same-rank tensors; return ``axis`` made non-negative."""
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)) or not tensors:
        raise TypeError(f"{op}(): expected a non-empty list or tuple of Tensors, got {type(tensors).__name__}")
    for k, t in enumerate(tensors):
        check_tensor(op, f"tensors[{k}]", t, floating=False)
    ndim = tensors[0].ndim + extra_dim
    if not -ndim <= axis < ndim:
        raise IndexError(f"{op}(): axis {axis} is out of range for {ndim} dimensions")
    return axis % ndim


def cat(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Concatenate along an existing ``axis``; all other dimensions must match."""
    axis = _check_many("cat", tensors, axis, 0)
    first = tensors[0].shape
    for k, t in enumerate(tensors):
        shape = t.shape
        if len(shape) != len(first) or shape[:axis] != first[:axis] or shape[axis + 1:] != first[axis + 1:]:
            raise ValueError(f"cat(): expected tensors[{k}] to match shape {first} except on axis {axis}, "
                             f"got {t.shape}")
    return Cat.apply(axis, *tensors)


concatenate = cat


def stack(tensors: Sequence[Tensor], axis: int = 0) -> Tensor:
    """Stack same-shape tensors along a new ``axis``."""
    axis = _check_many("stack", tensors, axis, 1)
    for k, t in enumerate(tensors):
        if t.shape != tensors[0].shape:
            raise ValueError(f"stack(): expected every tensor to have shape {tensors[0].shape}, "
                             f"got {t.shape} for tensors[{k}]")
    return Stack.apply(axis, *tensors)


def split(x: Tensor, split_size_or_sections: Any, axis: int = 0) -> tuple[Tensor, ...]:
    """Cut ``x`` along ``axis``, like ``torch.split``.

    An int gives pieces of that size (the last may be smaller); a list gives the exact sizes,
    which must add up to ``x.shape[axis]``.
    """
    check_tensor("split", "x", x, floating=False)
    if not -x.ndim <= axis < x.ndim:
        raise IndexError(f"split(): axis {axis} is out of range for a tensor with {x.ndim} dimensions")
    axis %= x.ndim
    length = x.shape[axis]
    if isinstance(split_size_or_sections, (int, np.integer)) and not isinstance(split_size_or_sections, bool):
        size = int(split_size_or_sections)
        if size <= 0:
            raise ValueError(f"split(): expected a positive split size, got {size}")
        sizes = tuple(min(size, length - start) for start in range(0, length, size))
    else:
        sizes = tuple(int(s) for s in split_size_or_sections)
        if sum(sizes) != length or any(s < 0 for s in sizes):
            raise ValueError(f"split(): expected non-negative sections adding up to {length} "
                             f"(x.shape[{axis}]), got {list(sizes)}")
    return Split.apply(x, sizes, axis)
