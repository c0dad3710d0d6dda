"""The timing method: warm-up, then repeated interleaved runs, reported as medians.

Interleaving (contender A, B, C, then B, C, A, ...) spreads slow drifts of the machine -- other
processes, clock changes -- over all contenders instead of charging them to whichever ran last.

Switching contenders disturbs the next one in two ways, both measured on the 2-core VM:
NumPy's OpenBLAS workers keep spinning ~0.1 s (2^28 cycles) after a call and take a core from
the next contender's threads (+16% on a 280 ms step at 2 threads), and after an idle gap a
short step starts with cold caches and sleeping OpenMP workers (a 1 ms step ran up to 10x
slower). So a timed call that follows a contender calling NumPy's BLAS (``Contender.spins``)
waits ``PAUSE_S`` first (the spinners stop), and, for steps shorter than ``REWARM_BELOW_S``,
follows one untimed call of the same step: the timed call measures the steady state a training
loop runs in. minirnn's kernels (OpenBLAS pinned to one thread inside their OpenMP team) and
torch (the same libgomp, whose workers spin well under a millisecond) leave no spinners, so
calls after them need no pause.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

#: Seconds to wait before each timed call, longer than OpenBLAS's worker spin (~0.1 s).
PAUSE_S = 0.12
#: Steps shorter than this get an untimed re-warm call before each timed one.
REWARM_BELOW_S = 0.1


@dataclass
class Contender:
    """A named zero-argument callable doing one full step (training or inference); ``spins``:
    it calls NumPy's (multi-threaded) BLAS, so the next timed call must wait ``PAUSE_S``."""

    name: str
    run: Callable[[], object]
    spins: bool = True


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
    A timed call right after a contender with ``spins`` waits ``PAUSE_S`` first.
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
    previous_spins = warmup == 0 or any(c.spins for c in contenders[-1:])  # the last warm-up run
    for r in range(repeats):
        for c in contenders[r % len(contenders):] + contenders[:r % len(contenders)]:
            if len(samples[c.name]) >= caps[c.name]:
                continue
            if previous_spins:
                time.sleep(PAUSE_S)
            if rewarm[c.name]:
                c.run()
            start = time.perf_counter()
            c.run()
            samples[c.name].append(time.perf_counter() - start)
            previous_spins = c.spins
    return {name: Timing(statistics.median(s), min(s), len(s)) for name, s in samples.items()}
