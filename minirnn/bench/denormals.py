"""Denormals: the same training step on inputs that drive the activations to subnormal floats.

All inputs are -0.1 and every weight is uniform in +-1e-39 -- below float32's smallest normal
(1.18e-38) -- so gate pre-activations, states and weight gradients are subnormal. Without
flush-to-zero each operation on them can take ~100 cycles of microcode; the ratio slow / normal
says whether the kernels are protected (the issue's target: at most 1.5x).
"""
from __future__ import annotations

from typing import Any

from . import torch_peer
from .contenders import fused_step
from .problem import Shape, make_problem
from .threads import use_threads
from .timing import Contender, time_interleaved

SUBNORMAL_WEIGHT_SCALE = 1e-39
DENORMAL_INPUT = -0.1


def run_denormals(modes: tuple[str, ...], shape: Shape, threads: int, repeats: int, budget_s: float,
                  with_torch: bool) -> list[dict[str, Any]]:
    """One record per mode: median seconds on normal and on subnormal data, and their ratio,
    for minirnn's fused layer (and torch's, for comparison)."""
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
        records.append(shape.record(mode, threads=threads, median_s=median, slowdown=ratios))
    return records
