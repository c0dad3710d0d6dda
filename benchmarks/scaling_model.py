"""Data parallel on paper: the step time of N nodes, each training the same model on its own batch.

    python benchmarks/scaling_model.py                   # the tables of docs/07-data-parallel.md
    python benchmarks/scaling_model.py --compute-s 0.05  # with your own measured compute time

A step is one node's compute (forward + backward + update on its batch of sequences) plus the
gradients' ring allreduce over N nodes. Weak scaling: every node keeps the measured batch
(``compute_s`` for ``batch`` sequences), the global batch grows with N. Strong scaling: a fixed
global batch is split, so a node's compute shrinks as 1/N (taken as linear in the batch, which is
optimistic: small batches use the cores worse). The allreduce, per bucket:

    t_allreduce = 2 (N-1)/N * bytes / bandwidth  +  buckets * 2 (N-1) * latency

(a ring sends 2(N-1) messages per collective: reduce-scatter, then allgather). Without overlap the
step is ``compute + allreduce``; with overlap, the buckets travel during backward, which is about
2/3 of the compute, so only ``max(0, allreduce - 2/3 compute)`` remains. Efficiency is compute /
step: the share of N nodes' time spent on the model's arithmetic.
"""
from __future__ import annotations

import argparse
from typing import NamedTuple

#: Links: (name, bytes per second, latency per message in seconds). 10 Gb/s Ethernet through TCP
#: has ~25 us per message; a 100 Gb/s InfiniBand/RoCE fabric ~2 us.
LINKS = (("10 Gb/s", 10e9 / 8, 25e-6), ("100 Gb/s", 100e9 / 8, 2e-6))
NODES = (8, 16, 32, 64, 128, 256)
BACKWARD_SHARE = 2 / 3  # of a step's compute: the time buckets can travel behind


class Model(NamedTuple):
    name: str
    gradient_bytes: float
    buckets: int
    compute_s: float  # measured: one step of one node's batch
    batch: int = 32  # the sequences of that step


#: Measured on a 2-core Intel Xeon (KVM) with 2 kernel threads, busy machine (load ~5): the main job
#: (train charlm's defaults, B=32 T=64 per node; 6 buckets of DistributedDataParallel's default) and
#: a 4-layer H=1024 LSTM with the same head and batch (7 buckets of ~16 MiB: one a weight). Medians of 3 steps.
MODELS = (Model("main job: 2-layer LSTM H=128, 0.23 M params", 0.926e6, 6, 0.11),
          Model("4-layer LSTM H=1024, 29.6 M params", 118.5e6, 7, 8.7))


def ring_allreduce_s(nodes: int, gradient_bytes: float, bytes_per_s: float, latency_s: float, buckets: int = 1) -> float:
    """Seconds for a ring allreduce of ``gradient_bytes`` in ``buckets`` collectives over ``nodes``."""
    return 2 * (nodes - 1) / nodes * gradient_bytes / bytes_per_s + buckets * 2 * (nodes - 1) * latency_s


def table(model: Model, global_batch: int | None = None) -> str:
    """One markdown table: per link and N, a node's batch and compute, the allreduce and the
    efficiency without / with overlap. ``global_batch``: strong scaling (None: weak)."""
    scaling = f"global batch {global_batch} split over the nodes" if global_batch else \
        f"{model.batch} sequences per node"
    lines = [f"**{model.name}**, {scaling}: {model.gradient_bytes / 1e6:.3g} MB of float32 gradients in "
             f"{model.buckets} buckets, compute {model.compute_s * 1e3:.0f} ms per step of {model.batch} sequences", "",
             "| link | N | batch per node | compute ms | allreduce ms | efficiency, no overlap | overlapped |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for link, bandwidth, latency in LINKS:
        for n in NODES:
            batch = global_batch / n if global_batch else model.batch
            compute = model.compute_s * batch / model.batch
            t = ring_allreduce_s(n, model.gradient_bytes, bandwidth, latency, model.buckets)
            exposed = max(0.0, t - BACKWARD_SHARE * compute)
            lines.append(f"| {link} | {n} | {batch:g} | {compute * 1e3:.1f} | {t * 1e3:.1f} | "
                         f"{compute / (compute + t):.0%} | {compute / (compute + exposed):.0%} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--compute-s", type=float, help="replace the main job's measured compute seconds per step")
    p.add_argument("--global-batch", type=int, default=256, help="the strong-scaling tables' global batch (256)")
    args = p.parse_args(argv)
    models = MODELS if args.compute_s is None else (MODELS[0]._replace(compute_s=args.compute_s), *MODELS[1:])
    print("\n\n".join(table(m, batch) for m in models for batch in (None, args.global_batch)))


if __name__ == "__main__":
    main()
