"""Variable-length batches: lengths uniform over [T/10, T], one training step each way.

  fused         minirnn's fused layer with ``lengths=`` (padded steps skipped in the kernels)
  torch_packed  torch through pack_padded_sequence (never reaches torch's fused CPU kernels)
  torch_padded  torch on the padded batch, ignoring the lengths (computes every padded step)
  floor         the GEMM floor (floor.py) of the sum(lengths) rows the layer computes
"""
from __future__ import annotations

import functools
from typing import Any, cast

import numpy as np

from . import torch_peer
from .contenders import fused_step
from .floor import floor_step
from .problem import Shape, make_problem
from .threads import use_threads
from .timing import Contender, time_interleaved


def run_varlen(modes: tuple[str, ...], shapes: tuple[Shape, ...], threads: int, repeats: int, budget_s: float,
               with_torch: bool) -> list[dict[str, Any]]:
    """One record per (mode, shape): median seconds of a training step for each path."""
    records = []
    for mode in modes:
        for shape in shapes:
            problem = make_problem(mode, shape, seed=1, varlen=True)
            contenders = [Contender("fused", fused_step(problem, True), spins=False)]
            if with_torch:
                torch_step = functools.partial(torch_peer.step, problem, True)
                contenders += [Contender("torch_packed", torch_step(packed=True), spins=False),
                               Contender("torch_padded", torch_step(packed=False), spins=False)]
            contenders.append(Contender("floor", floor_step(problem, True), spins=False))
            with use_threads(threads):
                timings = time_interleaved(contenders, repeats, budget_s)
            records.append(shape.record(mode, threads=threads, mean_length=float(cast(np.ndarray, problem.lengths).mean()),
                                        median_s={name: t.median_s for name, t in timings.items()}))
    return records
