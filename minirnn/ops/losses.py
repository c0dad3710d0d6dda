"""Loss functions, composed from tape ops (so their gradients need no hand-written backward).

Legend: N batch, C classes, ``...`` optional extra dimensions (e.g. time steps).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor
from ..checks import check_tensor
from ._util import lift
from .arithmetic import mul, sub
from .indexing import getitem
from .nn_ops import log_softmax
from .pointwise import softplus
from .reduce import mean, sum as sum_
from .shape import permute, reshape

REDUCTIONS = ("mean", "sum", "none")


def _reduce(loss: Tensor, reduction: str) -> Tensor:
    """Apply ``reduction`` ('mean', 'sum' or 'none') to an elementwise loss."""
    if reduction == "mean":
        return mean(loss)
    if reduction == "sum":
        return sum_(loss)
    return loss


def _check_reduction(op: str, reduction: Any) -> None:
    if reduction not in REDUCTIONS:
        raise ValueError(f"{op}(): expected reduction to be one of {REDUCTIONS}, got {reduction!r}")


def cross_entropy(logits: Tensor, target: Any, ignore_index: int = -100, reduction: str = "mean") -> Tensor:
    """Softmax cross-entropy:  loss_n = -log softmax(logits_n)[target_n].

    Shapes: logits (N, C) with target (N,), or logits (N, C, ...) with target (N, ...).  Targets
    equal to ``ignore_index`` contribute 0 and are left out of the mean (as in PyTorch), so
    'mean' divides by the number of non-ignored targets.  Uses log-sum-exp: finite for huge logits.
    """
    _check_reduction("cross_entropy", reduction)
    check_tensor("cross_entropy", "logits", logits)
    t = target.data if isinstance(target, Tensor) else np.asarray(target)
    if t.dtype.kind not in "iu":
        raise TypeError(f"cross_entropy(): expected target to hold integer class indices, got dtype {t.dtype}")
    if logits.ndim < 2 or t.shape != logits.shape[:1] + logits.shape[2:]:
        raise ValueError(f"cross_entropy(): expected logits (N, C, ...) and target (N, ...), got logits "
                         f"{logits.shape} and target {t.shape}")
    classes = logits.shape[1]
    keep = t != ignore_index
    bad = keep & ((t < 0) | (t >= classes))
    if bad.any():
        raise IndexError(f"cross_entropy(): expected target values in [0, {classes}) (C = {classes} classes) "
                         f"or ignore_index={ignore_index}, got {t[bad].flat[0]}")
    if logits.ndim > 2:  # (N, C, ...) -> (N*..., C), the class axis last
        logits = permute(logits, (0, *range(2, logits.ndim), 1))
    flat = reshape(logits, (-1, classes))
    rows = np.arange(flat.shape[0])
    picked = getitem(log_softmax(flat, axis=1), (rows, np.where(keep, t, 0).reshape(-1)))
    loss = reshape(mul(picked, lift(-keep.reshape(-1).astype(flat.dtype))), t.shape)
    if reduction == "mean":
        return sum_(loss) * (1.0 / keep.sum() if keep.any() else np.nan)
    return _reduce(loss, reduction)


def _as_target(target: Any, like: Tensor) -> Tensor:
    """A target given as data (array, list, number) takes the prediction's float dtype."""
    return target if isinstance(target, Tensor) else Tensor(np.asarray(target, dtype=like.dtype))


def mse_loss(input: Tensor, target: Any, reduction: str = "mean") -> Tensor:  # noqa: A002
    """Squared error (input - target)^2, averaged, summed or kept elementwise."""
    _check_reduction("mse_loss", reduction)
    check_tensor("mse_loss", "input", input)
    target = _as_target(target, input)
    if target.shape != input.shape:
        raise ValueError(f"mse_loss(): expected target of shape {input.shape} (the input's), got {target.shape}")
    diff = sub(input, target)
    return _reduce(mul(diff, diff), reduction)


def binary_cross_entropy_with_logits(logits: Tensor, target: Any, reduction: str = "mean",
                                     pos_weight: Any = None) -> Tensor:
    """BCE on logits x with targets y in [0, 1], stable for any x:

        loss = pos_weight * y * softplus(-x) + (1 - y) * softplus(x)

    where softplus(z) = log(1 + e^z) is computed without overflow.  ``pos_weight`` (broadcast
    over the last dimension, like PyTorch) weights the positive term; None means 1.
    """
    _check_reduction("binary_cross_entropy_with_logits", reduction)
    check_tensor("binary_cross_entropy_with_logits", "logits", logits)
    target = _as_target(target, logits)
    if target.shape != logits.shape:
        raise ValueError(f"binary_cross_entropy_with_logits(): expected target of shape {logits.shape} "
                         f"(the logits' shape), got {target.shape}")
    positive = mul(target, softplus(-logits))
    if pos_weight is not None:
        positive = mul(positive, _as_target(pos_weight, logits))
    loss = positive + mul(1 - target, softplus(logits))
    return _reduce(loss, reduction)
