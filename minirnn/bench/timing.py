"""The timing method: warm-up, then repeated interleaved runs, reported as medians.

Interleaving (contender A, B, C, then B, C, A, ...) spreads slow drifts of the machine -- other
processes, clock changes -- over all contenders instead of charging them to whichever ran last.

Switching contenders disturbs the next one in two ways, both measured on the 2-core VM:
NumPy's OpenBLAS workers keep spinning ~0.1 s (2^28 cycles) after a call and take a core from
the next contender's threads (+16% on a 280 ms step at 2 threads), and after an idle gap a
short step starts with cold caches and sleeping OpenMP workers (a 1 ms step ran up to 10x
slower). So a timed call that follows a contender calling NumPy's BLAS (``Contender.spins``)
waits ``PAUSE_S`` first (the spinners stop), and, for steps shorter than ``REWARM_BELOW_S``,
follows one untimed call of the same step. Below a millisecond or so one call is not enough:
a single call after the pause and re-warm read up to 2x the time the same step takes in a loop
(GRU T100 B1 H64 training at 2 threads: minirnn 0.71-0.87 ms against 0.45 in a loop, the GEMM
floor 0.40-0.44 against 0.22). So a sample is ``k`` back-to-back calls lasting about
``SAMPLE_MIN_S`` in all (google-benchmark's iterations), and its time is their mean; with 10-50 ms
samples that point read 0.45-0.49 and 0.22-0.26 ms. The timed calls measure the steady state a
training loop runs in. minirnn's kernels (OpenBLAS pinned to one thread inside their OpenMP
team) and torch (the same libgomp, whose workers spin well under a millisecond) leave no
spinners, so calls after them need no pause.
"""
from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from typing import Callable

#: Seconds to wait before each timed sample, longer than OpenBLAS's worker spin (~0.1 s).
PAUSE_S = 0.12
#: Steps shorter than this get an untimed re-warm call before each timed sample.
REWARM_BELOW_S = 0.1
#: A sample of a shorter step repeats it back to back until it lasts about this long.
SAMPLE_MIN_S = 0.02
#: The most calls one sample makes (a no-op step would otherwise make millions).
MAX_CALLS_PER_SAMPLE = 1000


@dataclass
class Contender:
    """A named zero-argument callable doing one full step (training or inference); ``spins``:
    it calls NumPy's (multi-threaded) BLAS, so the next timed call must wait ``PAUSE_S``."""

    name: str
    run: Callable[[], object]
    spins: bool = True


@dataclass
class Timing:
    """Seconds per step: the median and minimum over ``repeats`` timed samples, each the mean of
    ``calls_per_sample`` back-to-back calls."""

    median_s: float
    min_s: float
    repeats: int
    calls_per_sample: int = 1


def time_interleaved(contenders: list[Contender], repeats: int, budget_s: float,
                     warmup: int = 1) -> dict[str, Timing]:
    """Time every contender ``repeats`` times, interleaved, after ``warmup`` untimed runs.

    A sample of a step shorter than ``SAMPLE_MIN_S`` (by one more, warm, run) is that many
    back-to-back calls, at most ``MAX_CALLS_PER_SAMPLE``; its time is their mean. A contender
    whose warm-up run shows that ``repeats`` samples would exceed ``budget_s`` seconds is timed
    fewer times (at least once): slow paths (the unrolled tape, NumPy) stay affordable. A sample
    right after a contender with ``spins`` waits ``PAUSE_S`` first.
    """
    if repeats < 1:
        raise ValueError(f"time_interleaved: expected repeats >= 1, got {repeats}")
    caps: dict[str, int] = {}
    calls: dict[str, int] = {}
    rewarm: dict[str, bool] = {}
    for c in contenders:
        start = time.perf_counter()
        for _ in range(warmup):
            c.run()
        per_run = max((time.perf_counter() - start) / max(warmup, 1), 1e-9)
        if per_run < REWARM_BELOW_S:  # a short step: time a warm call (the first call can be 10x slower)
            start = time.perf_counter()
            c.run()
            per_run = max(time.perf_counter() - start, 1e-9)
        calls[c.name] = max(1, min(MAX_CALLS_PER_SAMPLE, round(SAMPLE_MIN_S / per_run)))
        caps[c.name] = max(1, min(repeats, int(budget_s / (per_run * calls[c.name]))))
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
            for _ in range(calls[c.name]):
                c.run()
            samples[c.name].append((time.perf_counter() - start) / calls[c.name])
            previous_spins = c.spins
    return {name: Timing(statistics.median(s), min(s), len(s), calls[name]) for name, s in samples.items()}
