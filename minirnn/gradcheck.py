"""Check analytic gradients against central finite differences (float64)."""
from __future__ import annotations

from typing import Callable, Sequence

import numpy as np

from .tensor import Tensor


def _scalar_of(output: Tensor | Sequence[Tensor], weights: list[np.ndarray]) -> float:
    outs = [output] if isinstance(output, Tensor) else list(output)
    return float(sum((o.data * w).sum() for o, w in zip(outs, weights)))


def gradcheck(fn: Callable[..., Tensor | Sequence[Tensor]], inputs: Sequence[Tensor],
              eps: float = 1e-6, atol: float = 1e-7, rtol: float = 1e-5, seed: int = 0) -> bool:
    """Compare ``fn``'s backward with central differences, for every input that requires grad.

    The outputs of ``fn`` are reduced to a scalar ``L = sum_k <w_k, out_k>`` with fixed random
    weights ``w_k`` (so every output element matters and errors cannot cancel), then for each
    element x_i of each input::

        dL/dx_i  ~=  (L(x_i + eps) - L(x_i - eps)) / (2 eps)

    Inputs must be float64 (float32 rounding swamps the differences). Returns True, or raises
    AssertionError naming the input, the element, and both values.
    """
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor) and x.requires_grad and x.dtype != np.float64:
            raise TypeError(f"gradcheck: input {i} has dtype {x.dtype}, expected float64")
    rng = np.random.default_rng(seed)
    out = fn(*inputs)
    outs = [out] if isinstance(out, Tensor) else list(out)
    weights = [rng.standard_normal(o.shape) for o in outs]
    for x in inputs:
        if isinstance(x, Tensor):
            x.grad = None
    for o, w in zip(outs, weights):  # d<w, out>/d out = w, so seeding backward with w gives dL/dx
        if o.requires_grad:
            o.backward(w, retain_graph=True)
    for i, x in enumerate(inputs):
        if not (isinstance(x, Tensor) and x.requires_grad):
            continue
        analytic = x.grad if x.grad is not None else np.zeros_like(x.data)
        numeric = np.empty(x.shape)
        for j in np.ndindex(x.shape):  # x.data itself is perturbed, even when it is not contiguous
            saved = x.data[j]
            try:
                x.data[j] = saved + eps
                plus = _scalar_of(fn(*inputs), weights)
                x.data[j] = saved - eps
                minus = _scalar_of(fn(*inputs), weights)
            finally:  # the caller's input comes back unperturbed even when fn raises
                x.data[j] = saved
            numeric[j] = (plus - minus) / (2 * eps)
        bad = ~np.isclose(analytic, numeric, atol=atol, rtol=rtol)
        if bad.any():
            j = np.unravel_index(np.argmax(bad), x.shape)
            raise AssertionError(
                f"gradcheck: input {i} (shape {x.shape}) element {tuple(int(k) for k in j)}: "
                f"analytic {analytic[j]!r} vs numeric {numeric[j]!r} "
                f"({int(bad.sum())} of {bad.size} elements differ; max abs diff "
                f"{np.abs(analytic - numeric).max():.3g})")
    return True
