"""The lectures' model variants beside the mode each one varies, so their speed is visible: Elman
with a sigmoid beside tanh, the GRU with the reset gate before the recurrent product
(``reset_after=False``) beside PyTorch's. PyTorch has neither, so the peers are minirnn's own:

  fused  the fused layer (nn.RNN / nn.GRU), the variant and its base mode
  cells  the cells unrolled on the tape (skipped above the harness's FLOP cap for slow contenders)
  numpy  the NumPy reference forward + BPTT

At one shape, training and inference, every contender of both modes timed interleaved in one run,
so ``variant / base`` compares like with like on the same machine state.
"""
from __future__ import annotations

from typing import Any

from ..modes import VARIANTS
from .contenders import cells_step, fused_step, numpy_step
from .grid import SLOW, SPINS
from .problem import Shape, make_problem
from .threads import use_threads
from .timing import Contender, time_interleaved

CONTENDERS = (("fused", fused_step), ("cells", cells_step), ("numpy", numpy_step))


def run_variants(shape: Shape, threads: int, repeats: int, budget_s: float,
                 slow_max_flops: float | None) -> list[dict[str, Any]]:
    """One record per (variant, task): ``median_s`` of each contender on the variant, and
    ``base_median_s`` on its base mode, from the same interleaved run."""
    records = []
    for variant, base in VARIANTS.items():
        problems = {mode: make_problem(mode, shape) for mode in (variant, base)}
        for train in (True, False):
            flops = problems[variant].flops(train)
            skip = slow_max_flops is not None and flops > slow_max_flops
            contenders = [Contender(f"{name} {mode}", build(problem, train), spins=name in SPINS)
                          for mode, problem in problems.items() for name, build in CONTENDERS
                          if not (skip and name in SLOW)]
            with use_threads(threads):
                timings = time_interleaved(contenders, repeats, budget_s)
            times = {name: t.median_s for name, t in timings.items()}
            records.append(shape.record(variant, base=base, threads=threads, task="train" if train else "infer",
                                        flops=flops, median_s={n: times[f"{n} {variant}"] for n, _ in CONTENDERS
                                                               if f"{n} {variant}" in times},
                                        base_median_s={n: times[f"{n} {base}"] for n, _ in CONTENDERS
                                                       if f"{n} {base}" in times}))
    return records


def variants_table(records: list[dict[str, Any]]) -> str:
    """Median ms per step of each contender on the variant, and its ratio to the base mode's."""
    head = (f"{'variant':17s} {'base':9s} {'T':>4s} {'B':>3s} {'H':>5s} {'thr':>3s} {'task':5s}"
            + "".join(f"{name + ' ms':>11s}{'/base':>7s}" for name, _ in CONTENDERS))
    lines = ["Lecture variants beside their base mode (same run, interleaved):", head, "-" * len(head)]
    for r in records:
        cells = ""
        for name, _ in CONTENDERS:
            t, b = r["median_s"].get(name), r["base_median_s"].get(name)
            cells += f"{t * 1e3:11.2f}{t / b:7.2f}" if t is not None and b is not None else f"{'-':>11s}{'-':>7s}"
        lines.append(f"{r['mode']:17s} {r['base']:9s} {r['T']:4d} {r['B']:3d} {r['H']:5d} {r['threads']:3d} "
                     f"{r['task']:5s}{cells}")
    return "\n".join(lines)
