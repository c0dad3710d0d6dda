"""Gradient-flow analysis: how strongly the loss reaches back to each time step.

For a recurrent cell unrolled over ``h_1 .. h_T``, the gradient of the loss with respect to a
hidden state is a product of Jacobians::

    dL/dh_t = dL/dh_T * prod_{s=t+1..T} dh_s/dh_{s-1}   (+ direct terms if the loss reads h_t)

For an Elman cell ``dh_s/dh_{s-1} = diag(1 - h_s^2) W_hh``: when the spectral radius of ``W_hh``
(its largest |eigenvalue|) is below 1 the norms ``||dL/dh_t||`` shrink geometrically as ``t``
moves away from the loss (vanishing gradients); well above 1 they can grow (exploding).
:func:`hidden_grad_norms` measures the norms (with tensor hooks on a cell's steps, or from the fused
kernels' backward for a layer), :func:`spectral_radius` the radius.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from .fused import rnn_layer
from .nn.rnn import RNNBase
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

    ``cell`` is a cell (``nn.RNNCell``/``GRUCell``, or ``LSTMCell`` whose state is ``(h, c)``) or a
    one-layer, one-direction fused layer (``nn.RNN``/``GRU``/``LSTM``, ``hx`` shaped as its
    forward takes it). A cell runs step by step over ``inputs`` (T, B, I) on the tape with a hook
    on every ``h_t``; a layer runs as one fused node whose backward reports the kernels' dL/dh_t of
    every step (the same numbers, one C++ call). Then ``L = loss_fn([h_1, ..., h_T])`` is
    back-propagated. The parameters' ``.grad`` accumulate as in any backward; zero them if that
    matters. A step whose ``h_t`` the loss does not reach gets norm 0.
    """
    x = inputs if isinstance(inputs, Tensor) else Tensor(np.asarray(inputs))
    if x.ndim != 3 or x.shape[0] == 0:
        raise ValueError(f"inputs: expected shape (T, B, I) with T >= 1, got {x.shape}")
    if isinstance(cell, RNNBase):
        hs, dh_steps = _layer_states(cell, x, hx)
        _backward(loss_fn(hs))
        return np.linalg.norm(dh_steps.reshape(len(dh_steps), -1), axis=1)
    norms = np.zeros(x.shape[0])
    hs, state = [], hx
    for t in range(x.shape[0]):
        state = cell(x[t], state)
        h = state[0] if isinstance(state, tuple) else state
        h.register_hook(lambda g, t=t: norms.__setitem__(t, np.linalg.norm(g)))
        hs.append(h)
    _backward(loss_fn(hs))
    return norms


def _backward(loss: Any) -> None:
    if not isinstance(loss, Tensor) or loss.size != 1:
        raise ValueError(f"loss_fn: expected a scalar Tensor, got {type(loss).__name__} "
                         f"{getattr(loss, 'shape', '')}")
    loss.backward()


def _layer_states(layer: RNNBase, x: Tensor, hx: Any) -> tuple[list[Tensor], np.ndarray]:
    """A one-layer, one-direction module's ``[h_1, ..., h_T]`` (its output's steps, from one fused
    node) and the (T, B, H) array its backward fills with every step's dL/dh_t."""
    if layer.num_layers != 1 or layer.bidirectional or layer.batch_first:
        raise ValueError(f"cell: expected a cell or a one-layer, one-direction, time-major layer, got "
                         f"{type(layer).__name__} with num_layers={layer.num_layers}, bidirectional="
                         f"{layer.bidirectional}, batch_first={layer.batch_first}")
    if layer.proj_size:  # its kernels do not report dL/dh_t
        raise ValueError(f"cell: expected a layer without proj_size (the projected LSTM's kernels do not report "
                         f"dL/dh_t), got proj_size={layer.proj_size}; unroll it by hand to hook each step")
    lstm = layer.mode == "lstm"
    if lstm and hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
        raise TypeError(f"hx: expected a pair (h0, c0) or None for {type(layer).__name__}, got {type(hx).__name__}")
    x, _ = layer._check_input(x)
    B = x.shape[1]
    h0 = layer._check_state("hx", hx[0] if lstm and hx is not None else hx, B, True)
    c0 = layer._check_state("hx[1]", None if hx is None else hx[1], B, True) if lstm else None
    dh_steps = np.zeros((x.shape[0], B, layer.hidden_size), layer.dtype)
    y = rnn_layer(layer.mode, x, *layer._layer_parameters("_l0"), h0[0], None if c0 is None else c0[0],
                  dh_steps=dh_steps)[0]
    return [y[t] for t in range(y.shape[0])], dh_steps
