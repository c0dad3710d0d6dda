"""Denormals: the same training step on inputs that drive the activations to subnormal floats.

All inputs are -0.1 and every weight is uniform in +-1e-39 -- below float32's smallest normal
(1.18e-38) -- so gate pre-activations, states and weight gradients are subnormal. Without
flush-to-zero each operation on them can take ~100 cycles of microcode; the ratio slow / normal
says whether the kernels are protected (the target: at most 1.5x).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import reference
from . import torch_peer
from .contenders import fused_step
from .problem import Problem, Shape, make_problem
from .threads import use_threads
from .timing import Contender, time_interleaved

SUBNORMAL_WEIGHT_SCALE = 1e-39
DENORMAL_INPUT = -0.1


def subnormal_fraction(problem: Problem) -> float:
    """Fraction of the NumPy reference forward's outputs y (T, B, H) that are nonzero subnormal
    floats. NumPy does not flush them to zero, so this shows the data does what it claims."""
    s, w = problem.shape, problem.weights
    h0 = np.zeros((s.B, s.H), problem.x.dtype)
    y = reference.rnn_forward(problem.mode, problem.x, w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"],
                              w["bias_hh_l0"], h0, h0 if problem.mode == "lstm" else None, None)[0]
    return float(np.mean((y != 0) & (np.abs(y) < np.finfo(y.dtype).tiny)))


def run_denormals(modes: tuple[str, ...], shape: Shape, threads: int, repeats: int, budget_s: float,
                  with_torch: bool) -> list[dict[str, Any]]:
    """One record per mode: median seconds on normal and on subnormal data, and their ratio,
    for minirnn's fused layer (and torch's, for comparison); ``subnormal_outputs``: see
    :func:`subnormal_fraction`."""
    records = []
    for mode in modes:
        normal = make_problem(mode, shape, seed=2)
        tiny = make_problem(mode, shape, seed=2, weight_scale=SUBNORMAL_WEIGHT_SCALE,
                            constant_input=DENORMAL_INPUT)
        contenders = [Contender("fused normal", fused_step(normal, True), spins=False),
                      Contender("fused subnormal", fused_step(tiny, True), spins=False)]
        if with_torch:
            contenders += [Contender("torch normal", torch_peer.step(normal, True), spins=False),
                           Contender("torch subnormal", torch_peer.step(tiny, True), spins=False)]
        with use_threads(threads):
            timings = time_interleaved(contenders, repeats, budget_s)
        median = {name: t.median_s for name, t in timings.items()}
        ratios = {who: median[f"{who} subnormal"] / median[f"{who} normal"]
                  for who in ("fused", "torch") if f"{who} normal" in median}
        records.append(shape.record(mode, threads=threads, median_s=median, slowdown=ratios,
                                    subnormal_outputs=subnormal_fraction(tiny)))
    return records
