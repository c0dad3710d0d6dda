"""The GEMM floor: a layer's GEMM FLOPs done as a few large BLAS calls, with no time loop.

A fused kernel cannot beat this on the same BLAS -- it does the same products, but the
recurrent ones are split into T small (B, H) x (H, G*H) steps -- so ``time / floor`` says how
much of the time goes to the recurrence and the pointwise work. Legend as in problem.py.

Forward:   Z_x = X (T*B, I) @ W_ih^T,    Z_h = Hs (T*B, H) @ W_hh^T             -> (T*B, G*H)
Backward:  dX = dZ @ W_ih, dW_ih = dZ^T @ X, dHs = dZ @ W_hh, dW_hh = dZ^T @ Hs
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .problem import Problem


def floor_step(problem: Problem, train: bool) -> Callable[[], None]:
    """A callable doing the floor's GEMMs (all six for training, the two forward ones otherwise)
    with NumPy's BLAS into preallocated outputs."""
    s = problem.shape
    rows = s.T * s.B
    x = problem.x.reshape(rows, s.I)
    hs = np.ascontiguousarray(np.resize(problem.dy, (rows, s.H)))  # any (T*B, H) values will do
    w_ih, w_hh = problem.weights["weight_ih_l0"], problem.weights["weight_hh_l0"]
    gh = w_ih.shape[0]
    z_x, z_h = np.empty((rows, gh), np.float32), np.empty((rows, gh), np.float32)
    dz = np.resize(problem.x, (rows, gh)).astype(np.float32)
    dx, dhs = np.empty_like(x), np.empty_like(hs)
    dw_ih, dw_hh = np.empty_like(w_ih), np.empty_like(w_hh)

    def forward() -> None:
        np.matmul(x, w_ih.T, out=z_x)
        np.matmul(hs, w_hh.T, out=z_h)

    def training_step() -> None:
        forward()
        np.matmul(dz, w_ih, out=dx)
        np.matmul(dz.T, x, out=dw_ih)
        np.matmul(dz, w_hh, out=dhs)
        np.matmul(dz.T, hs, out=dw_hh)

    return training_step if train else forward
