"""Neural-network building blocks: log_softmax (and softmax from it), embedding lookup, dropout.

Legend: V vocabulary size, D embedding width; ``...`` any leading shape.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Context, Function
from ..random import get_generator
from ..tensor import Tensor
from ..checks import check_tensor
from ._util import lift, normalize_axes
from .arithmetic import mul
from .indexing import RowsGrad
from .pointwise import exp


class LogSoftmax(Function):
    """y_i = x_i - log sum_j e^{x_j}, with the max subtracted first (log-sum-exp: no overflow).

    dx = dy - softmax(x) * sum_j dy_j   (softmax = e^y).
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, axis: int) -> np.ndarray:
        shifted = x - x.max(axis=axis, keepdims=True)
        y = shifted - np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
        ctx.save_for_backward(y)
        ctx.axis = axis
        return y

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple[np.ndarray, None]:
        (y,) = ctx.saved_tensors
        return grad - np.exp(y) * grad.sum(axis=ctx.axis, keepdims=True), None


class Embedding(Function):
    """out[...] = weight[indices[...]]  (indices (...), weight (V, D), out (..., D)).

    dweight[v] = sum of dout over the positions where indices == v, returned as a
    :class:`~minirnn.ops.indexing.RowsGrad`; the row ``padding_idx``, if given, gets no gradient.
    """

    @staticmethod
    def forward(ctx: Context, indices: np.ndarray, weight: np.ndarray, padding_idx: int | None) -> np.ndarray:
        ctx.save_for_backward(indices)
        ctx.shape, ctx.dtype, ctx.padding_idx = weight.shape, weight.dtype, padding_idx
        return weight.take(indices, axis=0)  # weight[indices], without fancy indexing's set-up

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple[None, RowsGrad, None]:
        (indices,) = ctx.saved_tensors
        if ctx.padding_idx is not None:
            used = indices != ctx.padding_idx
            indices, grad = indices[used], grad[used]
        return None, RowsGrad(ctx.shape, ctx.dtype, indices, grad), None


def _one_axis(op: str, axis: int, ndim: int) -> int:
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(f"{op}(): expected axis to be an int, got {type(axis).__name__}")
    return normalize_axes(op, axis, ndim)[0]


def softmax(x: Tensor, axis: int = -1) -> Tensor:
    """Softmax along ``axis`` (each slice sums to 1): exp(log_softmax(x)), so it shares the
    log-sum-exp stabilisation and needs no backward of its own."""
    check_tensor("softmax", "x", x)
    return exp(LogSoftmax.apply(x, _one_axis("softmax", axis, x.ndim)))


def log_softmax(x: Tensor, axis: int = -1) -> Tensor:
    """log(softmax(x)) along ``axis``, computed stably (finite for logits of any size)."""
    check_tensor("log_softmax", "x", x)
    return LogSoftmax.apply(x, _one_axis("log_softmax", axis, x.ndim))


def embedding(indices: Any, weight: Tensor, padding_idx: int | None = None) -> Tensor:
    """Rows of ``weight`` (V, D) picked by integer ``indices`` of any shape -> (*indices.shape, D)."""
    check_tensor("embedding", "weight", weight)
    if weight.ndim != 2:
        raise ValueError(f"embedding(): expected weight of shape (V, D), got {weight.shape}")
    ids = indices.data if isinstance(indices, Tensor) else np.asarray(indices)
    if ids.dtype.kind not in "iu":
        raise TypeError(f"embedding(): expected integer indices, got dtype {ids.dtype}")
    vocab = weight.shape[0]
    if ids.size:
        # A few ids (a tree's leaf, one token) are checked in Python: two NumPy reductions would
        # cost more than the lookup itself.
        values = ids.ravel().tolist() if ids.size <= 16 else None
        lo, hi = (min(values), max(values)) if values is not None else (ids.min(), ids.max())
        if lo < 0 or hi >= vocab:
            raise IndexError(f"embedding(): expected indices in [0, {vocab}) (the rows of weight), "
                             f"got {lo if lo < 0 else hi}")
    return Embedding.apply(ids, weight, padding_idx)


def check_dropout_p(owner: str, p: Any) -> float:
    """``p`` as a float if it is a probability in [0, 1), else ValueError naming ``owner``."""
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not 0 <= p < 1:
        raise ValueError(f"{owner}: expected p in [0, 1), got {p!r}")
    return float(p)


def dropout(x: Tensor, p: float = 0.5, training: bool = True,
            generator: np.random.Generator | None = None) -> Tensor:
    """Inverted dropout: zero each element with probability ``p`` and scale the rest by 1/(1-p).

    The expected value is unchanged, so evaluation (``training=False``) is the identity.  Random
    numbers come from ``generator`` or the package default (see :func:`minirnn.manual_seed`).
    """
    check_tensor("dropout", "x", x)
    check_dropout_p("dropout()", p)
    if not training or p == 0:
        return x
    keep = get_generator(generator).random(x.shape) >= p
    return mul(x, lift(keep.astype(x.dtype) / x.dtype.type(1 - p)))
