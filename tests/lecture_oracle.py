"""The models PyTorch lacks, as plain NumPy formulas: the oracle for the modes torch cannot check.

Written from the lectures' equations, one step at a time, independently of minirnn.reference and
the kernels (no shared code, no workspace, no BPTT): a layer is a loop over this step, a module a
loop over layers and directions. Legend: T steps, B batch, I inputs, H hidden, G gates.

* ``rnn_sigmoid`` (Elman as the lectures write it): ``h' = sigmoid(W_ih x + b_ih + W_hh h + b_hh)``.
* ``gru_reset_before`` (Cho et al. 2014, Keras' ``reset_after=False``), gates r, z, n:
  ``r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)``, ``z`` likewise,
  ``n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)``, ``h' = (1 - z) * n + z * h``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

LECTURE_MODES = ("rnn_sigmoid", "gru_reset_before")


def _sigmoid(v: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-v))


def step(mode: str, x: np.ndarray, h: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
         b_ih: np.ndarray | None, b_hh: np.ndarray | None) -> np.ndarray:
    """One step: x (B, I), h (B, H) -> h' (B, H)."""
    b_ih = np.zeros(w_ih.shape[0]) if b_ih is None else b_ih
    b_hh = np.zeros(w_hh.shape[0]) if b_hh is None else b_hh
    if mode == "rnn_sigmoid":
        return _sigmoid(x @ w_ih.T + b_ih + h @ w_hh.T + b_hh)
    if mode == "gru_reset_before":
        (W_ir, W_iz, W_in), (W_hr, W_hz, W_hn) = np.split(w_ih, 3), np.split(w_hh, 3)
        (b_ir, b_iz, b_in), (b_hr, b_hz, b_hn) = np.split(b_ih, 3), np.split(b_hh, 3)
        r = _sigmoid(x @ W_ir.T + b_ir + h @ W_hr.T + b_hr)
        z = _sigmoid(x @ W_iz.T + b_iz + h @ W_hz.T + b_hz)
        n = np.tanh(x @ W_in.T + b_in + (r * h) @ W_hn.T + b_hn)
        return (1 - z) * n + z * h
    raise ValueError(mode)


def layer(mode: str, x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, b_ih: np.ndarray | None,
          b_hh: np.ndarray | None, h0: np.ndarray, lengths: np.ndarray | None = None,
          reverse: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """x (T, B, I) -> y (T, B, H) zero past each length, h_n (B, H) each sequence's last state.
    ``reverse`` reads each sequence from its own last element back to its first."""
    T, B = x.shape[:2]
    lengths = np.full(B, T) if lengths is None else lengths
    y = np.zeros((T, B, h0.shape[1]))
    h_n = np.array(h0, dtype=np.float64)
    for b in range(B):
        h = h_n[b:b + 1]
        steps = range(lengths[b] - 1, -1, -1) if reverse else range(lengths[b])
        for t in steps:
            h = step(mode, x[t, b:b + 1], h, w_ih, w_hh, b_ih, b_hh)
            y[t, b] = h[0]
        h_n[b] = h[0]
    return y, h_n


def module(mode: str, x: np.ndarray, params: dict[str, Any], num_layers: int, bidirectional: bool,
           h0: np.ndarray, lengths: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A stacked (optionally bidirectional) module with PyTorch's parameter names:
    x (T, B, I), h0 (L*D, B, H) -> output (T, B, D*H), h_n (L*D, B, H)."""
    p = {k: np.asarray(v, dtype=np.float64) for k, v in params.items()}
    out, h_n = np.asarray(x, dtype=np.float64), []
    for k in range(num_layers):
        ys = []
        for d, suffix in enumerate([f"_l{k}", f"_l{k}_reverse"][:1 + bidirectional]):
            y, h = layer(mode, out, p[f"weight_ih{suffix}"], p[f"weight_hh{suffix}"], p.get(f"bias_ih{suffix}"),
                         p.get(f"bias_hh{suffix}"), h0[k * (1 + bidirectional) + d], lengths, reverse=d == 1)
            ys.append(y)
            h_n.append(h)
        out = np.concatenate(ys, axis=2)
    return out, np.stack(h_n)
