"""Gradient clipping (Pascanu, Mikolov & Bengio 2013): rescale or clamp ``.grad`` in place."""
from __future__ import annotations

import math
from typing import Iterable

import numpy as np

from ..tensor import Tensor
from ..checks import check_number


def _grads(parameters: Tensor | Iterable[Tensor], fn: str) -> list[np.ndarray]:
    params = [parameters] if isinstance(parameters, Tensor) else list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, Tensor):
            raise TypeError(f"{fn}: parameters[{i}]: expected a Tensor/Parameter, got {type(p).__name__}")
    return [p.grad for p in params if p.grad is not None]


def _total_norm(grads: list[np.ndarray], norm_type: float) -> float:
    if not grads:
        return 0.0
    if math.isinf(norm_type):
        return float(np.max([np.abs(g).max(initial=0.0) for g in grads]))  # (np.max: NaN anywhere wins)
    norms = np.array([np.linalg.norm(g.ravel(), ord=norm_type) for g in grads], dtype=np.float64)
    return float(np.linalg.norm(norms, ord=norm_type))


def _check_norm_type(norm_type: float, fn: str) -> float:
    norm_type = float(norm_type)
    if not norm_type > 0:
        raise ValueError(f"{fn}: expected norm_type > 0 (or inf), got {norm_type}")
    return norm_type


def grad_norm(parameters: Tensor | Iterable[Tensor], norm_type: float = 2.0) -> float:
    """The joint ``norm_type``-norm of all gradients (as :func:`clip_grad_norm_` measures it),
    changing nothing; 0.0 when no parameter has a gradient, inf/NaN when a gradient holds them."""
    norm_type = _check_norm_type(norm_type, "grad_norm")
    return _total_norm(_grads(parameters, "grad_norm"), norm_type)


def clip_grad_norm_(parameters: Tensor | Iterable[Tensor], max_norm: float, norm_type: float = 2.0,
                    error_if_nonfinite: bool = False) -> float:
    """Scale all gradients together so that their joint norm is at most ``max_norm``.

    total = || (||g_1||_q, ..., ||g_n||_q) ||_q  (the q-norm of all gradients as one vector;
    q = inf: the largest |g|).  Every g is multiplied by min(1, max_norm / (total + 1e-6)).
    Returns ``total`` (measured before clipping), as ``torch.nn.utils.clip_grad_norm_``.
    """
    check_number("max_norm", max_norm)
    norm_type = _check_norm_type(norm_type, "clip_grad_norm_")
    grads = _grads(parameters, "clip_grad_norm_")
    if not grads:
        return 0.0
    total = _total_norm(grads, norm_type)
    if error_if_nonfinite and not math.isfinite(total):
        raise RuntimeError(f"clip_grad_norm_: the total norm of order {norm_type} of the gradients is "
                           f"non-finite ({total}), so it cannot be clipped; pass error_if_nonfinite=False "
                           f"to scale them by it anyway")
    coef = min(max_norm / (total + 1e-6), 1.0)
    for g in grads:
        g *= g.dtype.type(coef)
    return total


def clip_grad_value_(parameters: Tensor | Iterable[Tensor], clip_value: float) -> None:
    """Clamp every gradient element into ``[-clip_value, clip_value]``."""
    check_number("clip_value", clip_value)
    for g in _grads(parameters, "clip_grad_value_"):
        np.clip(g, -clip_value, clip_value, out=g)
