"""Peak memory of a training step.

NumPy reports every array allocation to ``tracemalloc``, so the peak traced size during one
step is the step's NumPy-side peak (arrays made by the C++ extension are NumPy arrays too).
The fused kernels' saved state is one workspace array; its size per (T, B, H) element says how
many floats per hidden unit and time step the layer keeps for backward.
"""
from __future__ import annotations

import tracemalloc
from typing import Callable

import numpy as np

from .. import _C
from .problem import Problem


def peak_step_bytes(step: Callable[[], None]) -> int:
    """Peak bytes traced by tracemalloc above the starting level during one call of ``step``
    (after one untraced warm-up call, so lazily built caches are not counted)."""
    step()
    tracemalloc.start()
    try:
        base = tracemalloc.get_traced_memory()[0]
        step()
        return tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()


def workspace_bytes_per_tbh(problem: Problem) -> float:
    """Bytes of the fused forward's workspace divided by T * B * H."""
    s, w = problem.shape, problem.weights
    h0 = np.zeros((s.B, s.H), np.float32)
    c0 = h0 if problem.mode == "lstm" else None
    workspace = _C.rnn_forward(problem.mode, problem.x, w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"],
                               w["bias_hh_l0"], h0, c0, problem.lengths)[3]
    return workspace.nbytes / (s.T * s.B * s.H)
