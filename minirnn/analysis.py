"""Gradient-flow analysis: how strongly the loss reaches back to each time step.

For a recurrent cell unrolled over ``h_1 .. h_T``, the gradient of the loss with respect to a
hidden state is a product of Jacobians::

    dL/dh_t = dL/dh_T * prod_{s=t+1..T} dh_s/dh_{s-1}   (+ direct terms if the loss reads h_t)

For an Elman cell ``dh_s/dh_{s-1} = diag(1 - h_s^2) W_hh``: when the spectral radius of ``W_hh``
(its largest |eigenvalue|) is below 1 the norms ``||dL/dh_t||`` shrink geometrically as ``t``
moves away from the loss (vanishing gradients); well above 1 they can grow (exploding).
:func:`hidden_grad_norms` measures the norms with tensor hooks, :func:`spectral_radius` the radius.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .tensor import Tensor


def spectral_radius(matrix: Any) -> float:
    """``max_i |lambda_i|`` of a square matrix (an ndarray or Tensor); e.g. an Elman ``weight_hh``.

    For gated cells pass one gate's block, ``weight_hh[k*H:(k+1)*H]``.
    """
    m = np.asarray(matrix.data if isinstance(matrix, Tensor) else matrix, dtype=np.float64)
    if m.ndim != 2 or m.shape[0] != m.shape[1] or m.shape[0] == 0:
        raise ValueError(f"matrix: expected a non-empty square matrix (H, H), got shape {m.shape}")
    return float(np.abs(np.linalg.eigvals(m)).max())


def hidden_grad_norms(cell: Callable[..., Any], inputs: Any, loss_fn: Callable[[Sequence[Tensor]], Tensor],
                      hx: Any = None) -> np.ndarray:
    """``(T,)`` array: ``||dL/dh_t||`` (Frobenius over the batch) for ``t = 1..T``.

    Runs ``cell`` (an ``nn.RNNCell``/``GRUCell``, or ``LSTMCell`` whose state is ``(h, c)``) step
    by step over ``inputs`` (T, B, I) on the tape, hooks every ``h_t``, computes
    ``L = loss_fn([h_1, ..., h_T])`` and back-propagates. The parameters' ``.grad`` accumulate as
    in any backward; zero them if that matters. A step whose ``h_t`` the loss does not reach
    gets norm 0.
    """
    x = inputs if isinstance(inputs, Tensor) else Tensor(np.asarray(inputs))
    if x.ndim != 3 or x.shape[0] == 0:
        raise ValueError(f"inputs: expected shape (T, B, I) with T >= 1, got {x.shape}")
    norms = np.zeros(x.shape[0])
    hs, state = [], hx
    for t in range(x.shape[0]):
        state = cell(x[t], state)
        h = state[0] if isinstance(state, tuple) else state
        h.register_hook(lambda g, t=t: norms.__setitem__(t, np.linalg.norm(g)))
        hs.append(h)
    loss = loss_fn(hs)
    if not isinstance(loss, Tensor) or loss.size != 1:
        raise ValueError(f"loss_fn: expected a scalar Tensor, got {type(loss).__name__} "
                         f"{getattr(loss, 'shape', '')}")
    loss.backward()
    return norms
