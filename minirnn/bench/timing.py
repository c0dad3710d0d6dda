"""The timing method: warm-up, then repeated interleaved runs, reported as medians.

Interleaving (contender A, B, C, then B, C, A, ...) spreads slow drifts of the machine -- other
processes, clock changes -- over all contenders instead of charging them to whichever ran last.

Each timed call of a short step is preceded by one untimed call of the same step: switching
contenders leaves cold caches, sleeping OpenMP workers and, after NumPy's BLAS, its spinning
pthreads (they spin ~0.1 s after a call and take a core from the next contender's team). On
the 2-core VM this was measured to inflate the next 1 ms step up to 100x. The untimed call
absorbs that, so the timed one measures the steady state a training loop runs in.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

#: Steps shorter than this get an untimed re-warm call before each timed one.
REWARM_BELOW_S = 0.1


@dataclass
class Contender:
    """A named zero-argument callable doing one full step (training or inference)."""

    name: str
    run: Callable[[], object]


@dataclass
class Timing:
    """Seconds per step: the median and minimum over ``repeats`` timed runs."""

    median_s: float
    min_s: float
    repeats: int


def time_interleaved(contenders: list[Contender], repeats: int, budget_s: float,
                     warmup: int = 1) -> dict[str, Timing]:
    """Time every contender ``repeats`` times, interleaved, after ``warmup`` untimed runs.

    A contender whose warm-up run shows that ``repeats`` runs would exceed ``budget_s`` seconds
    is timed fewer times (at least once): slow paths (the unrolled tape, NumPy) stay affordable.
    """
    if repeats < 1:
        raise ValueError(f"time_interleaved: expected repeats >= 1, got {repeats}")
    caps: dict[str, int] = {}
    rewarm: dict[str, bool] = {}
    for c in contenders:
        start = time.perf_counter()
        for _ in range(warmup):
            c.run()
        per_run = (time.perf_counter() - start) / max(warmup, 1)
        caps[c.name] = max(1, min(repeats, int(budget_s / max(per_run, 1e-9))))
        rewarm[c.name] = per_run < REWARM_BELOW_S
    samples: dict[str, list[float]] = {c.name: [] for c in contenders}
    for r in range(repeats):
        for c in contenders[r % len(contenders):] + contenders[:r % len(contenders)]:
            if len(samples[c.name]) >= caps[c.name]:
                continue
            if rewarm[c.name]:
                c.run()
            start = time.perf_counter()
            c.run()
            samples[c.name].append(time.perf_counter() - start)
    return {name: Timing(statistics.median(s), min(s), len(s)) for name, s in samples.items()}
