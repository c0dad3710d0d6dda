"""The main comparison: every contender on the same problem, per mode, shape, thread count and
task (training step or inference), timed interleaved.

Contenders (names used in the table and the JSON):
  fused  minirnn nn.LSTM/GRU/RNN (C++ time loop, one tape node)
  cells  minirnn cells unrolled over T on the tape
  numpy  the NumPy reference forward + BPTT
  torch  torch.nn.LSTM/GRU/RNN on the CPU (absent without torch)
  floor  the layer's GEMMs as six (training) or two (inference) large BLAS calls (_C.matmul)
"""
from __future__ import annotations

from typing import Any, Callable

from . import torch_peer
from .contenders import cells_step, fused_step, numpy_step
from .floor import floor_step
from .problem import Problem, Shape, make_problem
from .threads import use_threads
from .timing import Contender, time_interleaved

Builder = Callable[[Problem, bool], Callable[[], None]]
#: The contenders that run a Python loop over time steps and get slow at large sizes.
SLOW = ("cells", "numpy")
#: The contenders that call NumPy's multi-threaded BLAS (see ``timing.Contender.spins``).
SPINS = ("cells", "numpy")


def builders(with_torch: bool) -> dict[str, Builder]:
    """Contender name -> step builder, in table order."""
    table: dict[str, Builder] = {"fused": fused_step, "cells": cells_step, "numpy": numpy_step}
    if with_torch:
        table["torch"] = torch_peer.step
    table["floor"] = floor_step
    return table


def run_point(problem: Problem, threads: int, train: bool, repeats: int, budget_s: float,
              with_torch: bool, slow_max_flops: float | None) -> dict[str, Any]:
    """Time every contender on one problem; returns one JSON record.

    The slow contenders are skipped (with a note) when the step's FLOPs exceed ``slow_max_flops``.
    """
    record = problem.shape.record(problem.mode, threads=threads, task="train" if train else "infer",
                                  flops=problem.flops(train), notes=[])
    contenders = []
    for name, build in builders(with_torch).items():
        if name in SLOW and slow_max_flops is not None and problem.flops(train) > slow_max_flops:
            record["notes"].append(f"{name} skipped where a step is above {slow_max_flops / 1e9:g} GFLOP")
            continue
        contenders.append(Contender(name, build(problem, train), spins=name in SPINS))
    with use_threads(threads):
        timings = time_interleaved(contenders, repeats, budget_s)
    record["median_s"] = {name: t.median_s for name, t in timings.items()}
    record["min_s"] = {name: t.min_s for name, t in timings.items()}
    record["repeats"] = {name: t.repeats for name, t in timings.items()}
    record["calls_per_sample"] = {name: t.calls_per_sample for name, t in timings.items()}
    return record


def run_grid(modes: tuple[str, ...], shapes: tuple[Shape, ...], threads: tuple[int, ...], repeats: int,
             budget_s: float, with_torch: bool, slow_max_flops: float | None,
             log: Callable[[str], None]) -> list[dict[str, Any]]:
    """``run_point`` over modes x shapes x threads x (train, infer); one record each."""
    records = []
    for mode in modes:
        for shape in shapes:
            problem = make_problem(mode, shape)
            for n in threads:
                for train in (True, False):
                    record = run_point(problem, n, train, repeats, budget_s, with_torch, slow_max_flops)
                    log(f"  {mode:8s} {shape.label:22s} threads={n} {record['task']:5s} "
                        + " ".join(f"{k}={v * 1e3:.2f}ms" for k, v in record["median_s"].items()))
                    records.append(record)
    return records
