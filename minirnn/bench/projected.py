"""PyTorch's projected LSTM (``nn.LSTM(proj_size=P)``, P = H / 4) beside the plain LSTM of the same
H, so the projection's cost is visible:

  fused  minirnn's fused layers (the projected one: csrc/lstm_proj.cpp; the LSTM: the shared time loop)
  torch  torch.nn.LSTM with and without proj_size (absent without torch; torch runs a projected LSTM
         without oneDNN, on its per-step ATen path)

At one shape, training and inference, all timed interleaved in one run.
"""
from __future__ import annotations

from typing import Any

from . import torch_peer
from .contenders import fused_step
from .problem import Shape, make_problem
from .threads import use_threads
from .timing import Contender, time_interleaved


def run_projected(shape: Shape, threads: int, repeats: int, budget_s: float, with_torch: bool) -> list[dict[str, Any]]:
    """One record per task: ``median_s`` of each contender on the projected LSTM (P = H // 4, at
    least 1) and ``base_median_s`` on the LSTM."""
    P = max(1, shape.H // 4)
    problems = {"proj": make_problem("lstm", shape, proj_size=P), "base": make_problem("lstm", shape)}
    builders = {"fused": fused_step, **({"torch": torch_peer.step} if with_torch else {})}
    records = []
    for train in (True, False):
        contenders = [Contender(f"{name} {kind}", build(problem, train), spins=False)
                      for kind, problem in problems.items() for name, build in builders.items()]
        with use_threads(threads):
            times = {n: t.median_s for n, t in time_interleaved(contenders, repeats, budget_s).items()}
        records.append(shape.record("lstm_proj", base="lstm", proj_size=P, threads=threads,
                                    task="train" if train else "infer", flops=problems["proj"].flops(train),
                                    median_s={n: times[f"{n} proj"] for n in builders},
                                    base_median_s={n: times[f"{n} base"] for n in builders}))
    return records


def projected_table(records: list[dict[str, Any]]) -> str:
    """Median ms per step of each contender on the projected LSTM, its ratio to the LSTM's, and
    fused / torch on the projected LSTM."""
    head = (f"{'T':>4s} {'B':>3s} {'H':>5s} {'P':>4s} {'thr':>3s} {'task':5s}"
            + "".join(f"{name + ' ms':>11s}{'/lstm':>7s}" for name in ("fused", "torch")) + f"{'fused/torch':>12s}")
    lines = ["Projected LSTM (proj_size P) beside the LSTM of the same H (same run, interleaved):", head,
             "-" * len(head)]
    for r in records:
        t, b = r["median_s"], r["base_median_s"]
        cells = "".join(f"{t[n] * 1e3:11.2f}{t[n] / b[n]:7.2f}" if n in t else f"{'-':>11s}{'-':>7s}"
                        for n in ("fused", "torch"))
        versus = f"{t['fused'] / t['torch']:12.2f}" if "torch" in t else f"{'-':>12s}"
        lines.append(f"{r['T']:4d} {r['B']:3d} {r['H']:5d} {r['proj_size']:4d} {r['threads']:3d} {r['task']:5s}"
                     + cells + versus)
    return "\n".join(lines)
