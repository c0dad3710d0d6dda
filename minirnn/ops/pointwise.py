"""Elementwise functions: exp, log, tanh, sigmoid, relu, clip, where, and the dtype cast.

Each forward sits beside its local derivative.  Where the derivative is cheapest in terms of the
output (tanh' = 1 - y^2, sigmoid' = y (1 - y), exp' = y) the output is what gets saved.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import _extension
from ..autograd import Context, Function
from ..tensor import Tensor
from ..checks import check_tensor
from ._util import check_broadcast, lift, unbroadcast


def _numpy_sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x) with e = e^-|x| (never overflows; few-ulp relative accuracy on both sides,
    as e / (1 + e) for x < 0): the sigmoid when the extension is absent."""
    e = np.exp(-np.abs(x))
    r = 1 / (1 + e)
    return np.where(x >= 0, r, e * r)


#: The vectorised sigmoid: the extension's one C++ pass, or NumPy's when it is absent.
_sigmoid: Callable[[np.ndarray], np.ndarray] = _numpy_sigmoid if _extension.C is None else _extension.C.sigmoid


class OutputDerivative(Function):
    """y = f(x) for an f whose derivative is cheapest written in terms of y: dy/dx = f'(y).

    Subclasses set ``f`` and ``derivative`` (both on arrays); only y is saved for backward.
    """

    f: Callable[..., np.ndarray]
    derivative: Callable[..., np.ndarray]

    @classmethod
    def forward(cls, ctx: Context, x: np.ndarray) -> np.ndarray:
        y = cls.f(x)
        ctx.save_for_backward(y)
        return y

    @classmethod
    def backward(cls, ctx: Context, grad: np.ndarray) -> np.ndarray:
        (y,) = ctx.saved_tensors
        return grad * cls.derivative(y)


class Exp(OutputDerivative):
    """y = e^x;  dy/dx = y."""
    f = staticmethod(np.exp)
    derivative = staticmethod(lambda y: y)


class Tanh(OutputDerivative):
    """y = tanh x;  dy/dx = 1 - y^2."""
    f = staticmethod(np.tanh)
    derivative = staticmethod(lambda y: 1 - y * y)


class Sigmoid(OutputDerivative):
    """y = 1 / (1 + e^-x);  dy/dx = y (1 - y).

    Forward is ``_C.sigmoid``: one vectorised pass with the fused cells' activation (NumPy has no
    sigmoid, and composing one overflow-free took nine passes; without the extension it is a few
    NumPy passes). Overflow-free; in float32, 0 where the sigmoid is below the
    smallest normal number (x < -87.3) with the extension.
    """
    f = staticmethod(_sigmoid)
    derivative = staticmethod(lambda y: y * (1 - y))


class Log(Function):
    """y = ln x;  dy/dx = 1 / x."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x)
        return np.log(x)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        (x,) = ctx.saved_tensors
        return grad / x


class Softplus(Function):
    """y = ln(1 + e^x), computed as max(x, 0) + ln(1 + e^-|x|) (never overflows);  dy/dx = sigmoid(x)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(x)
        return np.maximum(x, 0) + np.log1p(np.exp(-np.abs(x)))

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        (x,) = ctx.saved_tensors
        return grad * _sigmoid(x)


class Clip(Function):
    """y = min(max(x, lo), hi);  dy/dx = 1 where lo <= x <= hi, else 0 (torch.clamp's convention)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, lo: float | None, hi: float | None) -> np.ndarray:
        inside = np.ones(x.shape, dtype=bool)
        if lo is not None:
            inside &= x >= lo
        if hi is not None:
            inside &= x <= hi
        ctx.save_for_backward(inside)
        return np.clip(x, lo, hi).astype(x.dtype, copy=False)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple[np.ndarray, None, None]:
        (inside,) = ctx.saved_tensors
        return grad * inside, None, None


class Where(Function):
    """z = a where cond else b (broadcast);  dz/da = cond, dz/db = not cond."""

    @staticmethod
    def forward(ctx: Context, cond: np.ndarray, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(cond)
        ctx.shapes = (a.shape, b.shape)
        return np.where(cond, a, b)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple[None, np.ndarray | None, np.ndarray | None]:
        (cond,) = ctx.saved_tensors
        a_shape, b_shape = ctx.shapes
        da = unbroadcast(np.where(cond, grad, 0), a_shape) if ctx.needs_input_grad[1] else None
        db = unbroadcast(np.where(cond, 0, grad), b_shape) if ctx.needs_input_grad[2] else None
        return None, da, db


class Cast(Function):
    """y = x converted to another float dtype;  dy/dx = 1 (the gradient is cast back)."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, dtype: np.dtype) -> np.ndarray:
        ctx.dtype = x.dtype
        return x.astype(dtype)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple[np.ndarray, None]:
        return grad.astype(ctx.dtype), None


class Relu(Function):
    """y = max(x, 0);  dy/dx = 1 where x > 0, else 0."""

    @staticmethod
    def forward(ctx: Context, x: np.ndarray) -> np.ndarray:
        positive = x > 0
        ctx.save_for_backward(positive)
        return x * positive

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        (positive,) = ctx.saved_tensors
        return grad * positive


def _elementwise(function: type[Function], name: str) -> Callable[[Tensor], Tensor]:
    """The user-facing op for a one-input ``function``: checks x, applies it, shares its docstring."""
    def op(x: Tensor) -> Tensor:
        return function.apply(check_tensor(name, "x", x))
    op.__name__ = op.__qualname__ = name
    op.__doc__ = function.__doc__
    return op


exp = _elementwise(Exp, "exp")
log = _elementwise(Log, "log")
tanh = _elementwise(Tanh, "tanh")
sigmoid = _elementwise(Sigmoid, "sigmoid")
softplus = _elementwise(Softplus, "softplus")
relu = _elementwise(Relu, "relu")


def clip(x: Tensor, min: float | None = None, max: float | None = None) -> Tensor:  # noqa: A002
    """Clamp ``x`` into [min, max] (either bound may be None, not both)."""
    check_tensor("clip", "x", x)
    if min is None and max is None:
        raise ValueError("clip(): expected at least one of min and max, got neither")
    for name, bound in (("min", min), ("max", max)):
        if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float, np.number))):
            raise TypeError(f"clip(): expected {name} to be a number or None, got {type(bound).__name__}")
    return Clip.apply(x, min, max)


def where(cond: Any, a: Any, b: Any) -> Tensor:
    """Elementwise ``a if cond else b`` with broadcasting; ``cond`` is a bool array or Tensor."""
    mask = cond.data if isinstance(cond, Tensor) else np.asarray(cond)
    if mask.dtype != np.bool_:
        raise TypeError(f"where(): expected cond to have dtype bool, got {mask.dtype}")
    a, b = lift(a, b), lift(b, a)
    try:
        return Where.apply(mask, a, b)
    except ValueError:
        check_broadcast("where", mask.shape, a.shape, b.shape)
        raise


def cast(x: Tensor, dtype: Any) -> Tensor:
    """``x`` as ``dtype``; float-to-float casts are differentiable."""
    check_tensor("cast", "x", x, floating=False)
    target = np.dtype(dtype)
    if x.requires_grad and target.kind != "f":
        raise TypeError(f"cast(): a tensor that requires grad can only be cast to a float dtype, got {target}")
    return Cast.apply(x, target)
