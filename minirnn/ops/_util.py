"""Helpers shared by the op files."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor, _as_array


def unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum ``grad`` back down to ``shape``: the backward of NumPy broadcasting.

    Broadcasting prepends axes and stretches size-1 axes; the gradient of a stretched value is
    the sum over the copies it was stretched into.
    """
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad.reshape(shape)


def check_broadcast(op: str, *shapes: tuple[int, ...]) -> None:
    """Raise a ValueError naming ``op`` unless ``shapes`` broadcast together (NumPy's rules)."""
    try:
        np.broadcast_shapes(*shapes)
    except ValueError:
        raise ValueError(f"{op}(): expected shapes that broadcast together, got "
                         f"{' and '.join(str(s) for s in shapes)}") from None


def lift(value: Any, like: Any = None) -> Any:
    """Wrap a non-Tensor operand as a constant Tensor, matching ``like``'s float dtype.

    ``x * 2`` on a float64 tensor stays float64 (a Python scalar does not promote or demote).
    """
    if isinstance(value, Tensor):
        return value
    array = _as_array(value)
    if like is not None and isinstance(like, Tensor) and like.dtype.kind == "f" and array.dtype.kind in "fiu" \
            and not isinstance(value, np.ndarray):
        array = np.asarray(value, dtype=like.dtype)  # not via float32: 0.1 stays exact in float64
    return Tensor(array)


def normalize_axes(op: str, axis: Any, ndim: int) -> tuple[int, ...]:
    """``axis`` (None, an int or a sequence of ints, negatives allowed) as sorted non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    try:
        axes = (axis,) if isinstance(axis, (int, np.integer)) else tuple(axis)
    except TypeError:
        raise TypeError(f"{op}(): expected axis to be an int or a tuple of ints, got {axis!r}") from None
    out = []
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, (int, np.integer)):
            raise TypeError(f"{op}(): expected axis to be an int or a tuple of ints, got {axis!r}")
        if not -ndim <= a < max(ndim, 1):
            raise IndexError(f"{op}(): axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(int(a) % max(ndim, 1))
    if len(set(out)) != len(out):
        raise ValueError(f"{op}(): expected distinct axes, got {axis!r}")
    return tuple(sorted(out))
