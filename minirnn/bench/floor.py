"""The GEMM floor: a layer's GEMM FLOPs done as a few large BLAS calls, with no time loop.

The products run through ``minirnn._C.matmul``: the kernels' own OpenBLAS, split over the kernels'
OpenMP team (one thread for a small product, as the kernels' big GEMMs). The fused kernels do
the same products, but the recurrent ones are split into T small (B, H) x (H, G*H) steps, so
``time / floor`` says how much of the time goes to the recurrence and the pointwise work; it can
dip just under 1 where the per-step micro-kernel (packed_gemm.h) beats OpenBLAS on skinny products.
(NumPy's matmul would use NumPy's separate OpenBLAS, whose thread wake-ups made this "floor"
slower than the whole fused layer at B=32.) Legend as in problem.py.

Forward:   Z_x = X (T*B, I) @ W_ih^T,    Z_h = Hs (T*B, H) @ W_hh^T             -> (T*B, G*H)
(T*B: rows, sum(lengths) with variable lengths)
Backward:  dX = dZ @ W_ih, dW_ih = dZ^T @ X, dHs = dZ @ W_hh, dW_hh = dZ^T @ Hs
"""
from __future__ import annotations

from typing import Callable

import numpy as np

from .. import _C
from .problem import Problem


def floor_step(problem: Problem, train: bool) -> Callable[[], None]:
    """A callable doing the floor's GEMMs (all six for training, the two forward ones otherwise)
    with ``_C.matmul`` (each returns a new array, as the kernels' results are). With lengths the
    layer computes only sum(lengths) of the T*B rows, and so does its floor."""
    s = problem.shape
    rows = s.T * s.B if problem.lengths is None else int(problem.lengths.sum())
    x = problem.x.reshape(s.T * s.B, s.I)[:rows]
    hs = np.ascontiguousarray(np.resize(problem.dy, (rows, s.H)))  # any (rows, H) values will do
    w_ih, w_hh = problem.weights["weight_ih_l0"], problem.weights["weight_hh_l0"]
    dz = np.resize(problem.x, (rows, w_ih.shape[0])).astype(np.float32)

    def forward() -> None:
        _C.matmul(x, w_ih, transpose_b=True)   # Z_x (T*B, G*H)
        _C.matmul(hs, w_hh, transpose_b=True)  # Z_h (T*B, G*H)

    def training_step() -> None:
        forward()
        _C.matmul(dz, w_ih)                    # dX (T*B, I)
        _C.matmul(dz, x, transpose_a=True)     # dW_ih (G*H, I)
        _C.matmul(dz, w_hh)                    # dHs (T*B, H)
        _C.matmul(dz, hs, transpose_a=True)    # dW_hh (G*H, H)

    return training_step if train else forward
