"""One round of message passing on the tape against torch: gather_rows -> segment_sum -> backward.

    python benchmarks/segment_ops.py                 # the default sizes, 1 thread
    python benchmarks/segment_ops.py --size 2000,20000,64 --repeats 15

Each size N,E,D is N nodes, E random directed edges src -> dst and D features (float32). The
step is ``segment_sum(gather_rows(h, src), dst, N)``, the sum of its output, and backward to h:
in minirnn (minirnn.ops.segment), in torch (``index_select`` and ``index_add_``), and the
forward's sum alone through ``np.add.at`` (NumPy's scatter-add, for scale). Medians over
interleaved rounds (minirnn.bench.timing), and minirnn / torch.
"""
from __future__ import annotations

import argparse
from typing import Callable

import numpy as np

from minirnn import Tensor, gather_rows, segment_sum
from minirnn.bench import timing
from minirnn.bench.threads import use_threads
from minirnn.arguments import positive_argument

DEFAULT_SIZES = ((500, 2000, 32), (2000, 20000, 64), (10000, 100000, 32))


def steps(nodes: int, edges: int, features: int, seed: int = 0) -> list[tuple[str, Callable[[], object]]]:
    """(name, step) for each contender, on the same seeded graph and features."""
    import torch

    rng = np.random.default_rng(seed)
    src, dst = rng.integers(0, nodes, edges), rng.integers(0, nodes, edges)
    h = Tensor(rng.standard_normal((nodes, features), dtype=np.float32), requires_grad=True)
    th = torch.tensor(h.data, requires_grad=True)
    tsrc, tdst = torch.from_numpy(src), torch.from_numpy(dst)

    def ours() -> None:
        h.grad = None
        segment_sum(gather_rows(h, src), dst, nodes).sum().backward()

    def theirs() -> None:
        th.grad = None
        torch.zeros(nodes, features).index_add_(0, tdst, th.index_select(0, tsrc)).sum().backward()

    def numpy_forward() -> None:
        np.add.at(np.zeros((nodes, features), np.float32), dst, h.data[src])

    return [("minirnn", ours), ("torch", theirs), ("np.add.at (forward only)", numpy_forward)]


def main(sizes: tuple[tuple[int, int, int], ...] = DEFAULT_SIZES, repeats: int = 11,
         log: Callable[[str], None] = print) -> None:
    import torch  # noqa: F401  (imported before use_threads, so that it sets torch's threads too)

    for n, e, d in sizes:
        contenders = [timing.Contender(name, run, spins=False) for name, run in steps(n, e, d)]
        with use_threads(1):
            t = timing.time_interleaved(contenders, repeats, 3.0)
        ms = {name: t[name].median_s * 1e3 for name in t}
        log(f"N={n} E={e} D={d}: " + ", ".join(f"{name} {v:.3f} ms" for name, v in ms.items()) +
            f"; minirnn/torch {ms['minirnn'] / ms['torch']:.2f}")


def _size(text: str) -> tuple[int, int, int]:
    parts = text.split(",")
    if len(parts) != 3:
        raise argparse.ArgumentTypeError(f"expected N,E,D such as 2000,20000,64, got {text!r}")
    n, e, d = (positive_argument(int)(p) for p in parts)
    return n, e, d


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", action="append", type=_size, metavar="N,E,D",
                        help="nodes, edges, features (repeatable; default: three sizes)")
    parser.add_argument("--repeats", type=positive_argument(int), default=11)
    args = parser.parse_args()
    main(tuple(args.size or DEFAULT_SIZES), args.repeats, log=lambda text: print(text, flush=True))
