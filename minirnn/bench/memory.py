"""Peak memory of a training step.

NumPy reports its array allocations to ``tracemalloc``. The C++ extension allocates its
temporaries and its large result arrays (workspace, y, dx, matmul products: 1 MB and more) from its own reuse
cache (csrc/scratch.h), which tracemalloc does not see; the extension counts those bytes itself.
A step's peak is the sum of the two peaks, an upper bound (they need not coincide).
The fused kernels' saved state holds one workspace array, of
``itemsize * (a*T*B*H + b*B*H)`` bytes with (a, b) per mode from :func:`workspace_elements`; its
size per (T, B, H) element says how many floats per hidden unit and time step the layer keeps
for backward.
"""
from __future__ import annotations

import tracemalloc
from typing import Any, Callable

import numpy as np

from .. import _C
from .problem import Problem


def peak_step_bytes(step: Callable[[], object]) -> int:
    """Peak bytes above the starting level during one call of ``step`` (what it returns is not
    used): NumPy's (tracemalloc) plus the kernels' (their own count), after one untraced warm-up
    call, so lazily built caches are not counted."""
    step()
    tracemalloc.start()
    try:
        base, kernel_base = tracemalloc.get_traced_memory()[0], _C.scratch_bytes_in_use()
        _C.reset_scratch_peak()
        step()
        kernel_peak = _C.reset_scratch_peak() - kernel_base
        return tracemalloc.get_traced_memory()[1] - base + kernel_peak
    finally:
        tracemalloc.stop()


def workspace_elements(mode: str) -> tuple[int, int]:
    """(a, b): the fused workspace holds ``a*T*B*H + b*B*H`` elements (per step: the gates and
    states backward reads; once: the initial states), read off ``_C.workspace_size`` at T = 1 and 2
    (csrc/rnn.cpp ``workspace_layout`` owns the layout)."""
    one, two = _C.workspace_size(mode, 1, 1, 1), _C.workspace_size(mode, 2, 1, 1)
    return two - one, 2 * one - two


def workspace_formula(mode: str, itemsize: int = 4) -> str:
    """The fused workspace's size in bytes as a formula in T, B, H, e.g. ``4*(7*T*B*H + 2*B*H)``."""
    per_tbh, per_bh = workspace_elements(mode)
    return f"{itemsize}*({per_tbh}*T*B*H + {per_bh}*B*H)"


def workspace_bytes(mode: str, T: int, B: int, H: int, itemsize: int = 4) -> int:  # noqa: N803 (legend letters)
    """The value of :func:`workspace_formula` at (T, B, H)."""
    per_tbh, per_bh = workspace_elements(mode)
    return itemsize * (per_tbh * T * B * H + per_bh * B * H)


def workspace_record(problem: Problem) -> dict[str, Any]:
    """The fused forward's workspace on ``problem``: its measured bytes, the formula those bytes
    follow (checked against the measured size), and the bytes per T*B*H (what the layer keeps for
    backward per hidden unit and step)."""
    s, w = problem.shape, problem.weights
    h0 = np.zeros((s.B, s.H), problem.x.dtype)
    c0 = h0 if problem.mode == "lstm" else None
    workspace = _C.rnn_forward(problem.mode, problem.x, w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"],
                               w["bias_hh_l0"], h0, c0, problem.lengths)[3].workspace
    formula = workspace_formula(problem.mode, workspace.itemsize)
    if workspace_bytes(problem.mode, s.T, s.B, s.H, workspace.itemsize) != workspace.nbytes:
        formula = f"unknown ({formula} does not match: the layout is not linear in T)"
    return {"workspace_bytes": workspace.nbytes, "workspace_formula": formula,
            "workspace_bytes_per_tbh": workspace.nbytes / (s.T * s.B * s.H)}
