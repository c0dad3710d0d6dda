"""The GEMM floor's products, one by one: the kernels' OpenBLAS against torch's BLAS (MKL), per layout.

    python benchmarks/gemm_layouts.py 1,2                  # thread counts (default: 1 and all cores)
    python benchmarks/gemm_layouts.py 1 --shape 100,64,256 # shapes T,B,H or T,B,I,H (LSTM: G = 4)

Why: torch's LSTM training step runs at about our GEMM floor at B=64 (README, Results), so whether
our fused LSTM can beat it rests on the big GEMMs. This times each of the floor's products
(legend as in minirnn/bench/floor.py; R = T*B rows, G*H gate columns) through ``_C.matmul``
(OpenBLAS on the kernels' team) and ``torch.matmul`` on the same arrays, plus the same backward
products computed from transposed copies of the operands (the copy not timed), to see whether
another layout recovers what OpenBLAS loses:

    Z_x = X @ W^T          (R, I) x (G*H, I)^T   NT  -- the forward's input projection
    dX  = dZ @ W           (R, G*H) x (G*H, I)   NN  -- as the kernels do it
        = dZ @ (W^T)^T                           NT  -- from W^T, (I, G*H)
    dW  = dZ^T @ X         (R, G*H)^T x (R, I)   TN  -- as the kernels do it (dW_ih; dW_hh alike)
        = (dZ^T) @ X                             NN  -- from dZ^T, (G*H, R)
        = (dZ^T) @ (X^T)^T                       NT  -- from dZ^T and X^T

Each line: median ms over interleaved rounds (minirnn.bench.timing), GFLOP/s, and OpenBLAS / torch.
"""
from __future__ import annotations

import argparse
import time
from typing import Callable

import numpy as np

from minirnn import _C
from minirnn.bench import timing
from minirnn.bench.problem import Shape
from minirnn.bench.threads import all_cores, use_threads
from minirnn.arguments import positive_argument, shape_argument, thread_counts_argument

DEFAULT_SHAPES = (Shape(100, 64, 256, 256), Shape(50, 64, 512, 512), Shape(100, 16, 1024, 1024))
GATES = 4  # LSTM


def products(s: Shape, seed: int = 0) -> list[tuple[str, Callable[[], object], Callable[[], object]]]:
    """(name, OpenBLAS call, torch call) for each product and layout above, on seeded float32 data."""
    import torch

    rng = np.random.default_rng(seed)
    rows, gh = s.T * s.B, GATES * s.H
    x = rng.standard_normal((rows, s.I), dtype=np.float32)
    w = rng.standard_normal((gh, s.I), dtype=np.float32)
    dz = rng.standard_normal((rows, gh), dtype=np.float32)
    w_t, dz_t, x_t = (np.ascontiguousarray(a.T) for a in (w, dz, x))
    tx, tw, tdz, tw_t, tdz_t, tx_t = (torch.from_numpy(a) for a in (x, w, dz, w_t, dz_t, x_t))
    return [
        ("Z_x = X W^T      NT", lambda: _C.matmul(x, w, transpose_b=True), lambda: torch.matmul(tx, tw.T)),
        ("dX = dZ W        NN", lambda: _C.matmul(dz, w), lambda: torch.matmul(tdz, tw)),
        ("dX = dZ (W^T)^T  NT", lambda: _C.matmul(dz, w_t, transpose_b=True), lambda: torch.matmul(tdz, tw_t.T)),
        ("dW = dZ^T X      TN", lambda: _C.matmul(dz, x, transpose_a=True), lambda: torch.matmul(tdz.T, tx)),
        ("dW = (dZ^T) X    NN", lambda: _C.matmul(dz_t, x), lambda: torch.matmul(tdz_t, tx)),
        ("dW = (dZ^T)(X^T)^T NT", lambda: _C.matmul(dz_t, x_t, transpose_b=True),
         lambda: torch.matmul(tdz_t, tx_t.T)),
    ]


def main(threads: tuple[int, ...], shapes: tuple[Shape, ...] = DEFAULT_SHAPES, repeats: int = 7,
         log: Callable[[str], None] = print) -> None:
    import torch  # noqa: F401  (imported before use_threads, so that it sets torch's threads too)

    start = time.perf_counter()
    for n in threads:
        for s in shapes:
            gflop = 2 * s.T * s.B * GATES * s.H * s.I / 1e9
            for name, ours, theirs in products(s):
                contenders = [timing.Contender("openblas", ours, spins=False),
                              timing.Contender("torch", theirs, spins=False)]
                with use_threads(n):
                    t = timing.time_interleaved(contenders, repeats, 3.0)
                a, b = t["openblas"].median_s, t["torch"].median_s
                log(f"{s.label} thr={n} {name:22s} openblas {a * 1e3:8.3f} ms ({gflop / a:6.1f} GFLOP/s)"
                    f"  torch {b * 1e3:8.3f} ms ({gflop / b:6.1f} GFLOP/s)  openblas/torch {a / b:.2f}")
    log(f"done in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("threads", nargs="?", type=thread_counts_argument, default=f"1,{all_cores()}",
                        help="comma-separated thread counts (default: 1 and all cores)")
    parser.add_argument("--shape", action="append", type=shape_argument, metavar="T,B,H",
                        help="a shape (repeatable; default: the benchmark grid's three largest)")
    parser.add_argument("--repeats", type=positive_argument(int), default=7)
    args = parser.parse_args()
    main(args.threads, tuple(args.shape or DEFAULT_SHAPES), args.repeats, log=lambda text: print(text, flush=True))
