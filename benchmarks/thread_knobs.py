"""A/B of the fused time loop's two thread knobs, at chosen thread counts, on the harness's problems.

    python benchmarks/thread_knobs.py 16,8          # thread counts to test (default: all cores)

1. ``min_step_work`` (``_C.set_min_step_work``): the multiply-adds of a step's recurrent GEMM each
   thread must get before a time loop uses more threads (fewer threads below it; the default is
   set once, in csrc/parallel.cpp). Timed at the current value (``_C.min_step_work()``: the
   default unless changed), 2x and 4x, training and inference, at small layers where it decides.
2. Step sharing (``_C._set_step_sharing``): the automatic choice against forcing every step to be
   shared by hidden units or by batch rows, training, at the sizes where the choice flips.

Each line gives the median ms of every variant (interleaved rounds, as in ``minirnn.bench``) and
its ratio to the first (the default). The knobs are set inside each timed call, so variants
alternate freely; both are restored at the end. Results: benchmarks/results/*-thread-knobs.txt.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable

from minirnn import _C
from minirnn.bench import timing
from minirnn.bench.contenders import fused_step
from minirnn.bench.problem import MODES, Shape, make_problem
from minirnn.bench.threads import all_cores, use_threads
from minirnn.arguments import positive_argument, thread_counts_argument

WORK_SHAPES = (Shape(50, 32, 128, 128), Shape(100, 16, 64, 64), Shape(100, 64, 128, 128))
SHARING_SHAPES = (Shape(50, 32, 128, 128), Shape(100, 64, 256, 256), Shape(50, 64, 512, 512))


def with_knobs(step: Callable[[], None], work: int | None = None, sharing: str | None = None) -> Callable[[], None]:
    """``step`` run with min_step_work = ``work`` and step sharing ``sharing`` ('' automatic)."""
    def run() -> None:
        if work is not None:
            _C.set_min_step_work(work)
        if sharing is not None:
            _C._set_step_sharing(sharing)
        step()
    return run


def line(title: str, timings: dict[str, timing.Timing]) -> str:
    first = next(iter(timings.values())).median_s
    return f"{title:36s} " + "  ".join(f"{name} {t.median_s * 1e3:8.3f} ms ({t.median_s / first:.2f})"
                                       for name, t in timings.items())


def min_step_work_ab(threads: list[int], shapes: tuple[Shape, ...], repeats: int, base: int) -> list[str]:
    lines = []
    for n in threads:
        for mode in MODES:
            for shape in shapes:
                problem = make_problem(mode, shape)
                for train in (True, False):
                    variants = [timing.Contender(f"w{w}", with_knobs(fused_step(problem, train), work=w), spins=False)
                                for w in (base, 2 * base, 4 * base)]
                    with use_threads(n):
                        timings = timing.time_interleaved(variants, repeats, 2.0)
                    lines.append(line(f"{mode} {shape.label} thr={n} {'train' if train else 'infer'}", timings))
    return lines


def sharing_ab(threads: list[int], shapes: tuple[Shape, ...], repeats: int) -> list[str]:
    lines = []
    for n in threads:
        for mode in ("lstm", "gru"):
            for shape in shapes:
                problem = make_problem(mode, shape)
                variants = [timing.Contender(s or "auto", with_knobs(fused_step(problem, True), sharing=s), spins=False)
                            for s in ("", "units", "rows")]
                with use_threads(n):
                    timings = timing.time_interleaved(variants, repeats, 3.0)
                lines.append(line(f"{mode} {shape.label} thr={n} train", timings))
    return lines


def main(threads: list[int], repeats: int = 7, work_shapes: tuple[Shape, ...] = WORK_SHAPES,
         sharing_shapes: tuple[Shape, ...] = SHARING_SHAPES, log: Callable[[str], None] = print) -> None:
    start = time.perf_counter()
    saved_work = _C.min_step_work()
    try:
        log(f"== min_step_work {saved_work} (current) / {2 * saved_work} / {4 * saved_work}")
        for text in min_step_work_ab(threads, work_shapes, repeats, saved_work):
            log(text)
        log("== step sharing: automatic / units / rows")
        for text in sharing_ab(threads, sharing_shapes, max(1, repeats - 2)):
            log(text)
    finally:
        _C.set_min_step_work(saved_work)
        _C._set_step_sharing("")
    log(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("threads", nargs="?", type=thread_counts_argument, default=str(all_cores()),
                        help="comma-separated thread counts (default: all cores)")
    parser.add_argument("--repeats", type=positive_argument(int), default=7)
    args = parser.parse_args()
    main(list(args.threads), args.repeats, log=lambda text: print(text, flush=True))
