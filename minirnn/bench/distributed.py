"""The ``distributed`` section: data-parallel training of the main job over MPI (needs the mpi extra).

The main job (``python -m minirnn train charlm``'s model and batch, TBPTT on the default corpus) is
timed twice on this machine's cores: one process with all of them, and 2 ranks under ``mpiexec``
sharing them (the global batch split across the ranks, gradients averaged by
:class:`minirnn.distributed.DistributedDataParallel`). Per step, the 2-rank run also records the
time backward waited for the gradients' allreduce with the overlap on (buckets sent while backward
runs) and off (every bucket sent after backward), interleaved step by step, and the time of a
blocking allreduce of all the gradients alone: ``hidden = 1 - wait(overlap) / wait(after backward)``.

Run by the harness; the measuring side is :func:`main`, which the harness starts on every rank
under ``mpiexec``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .targets import Target

#: The distributed goals: 2 ranks x (cores / 2) threads against 1 rank x all cores, and the share of
#: the allreduce the overlap hides.
RATIO_GOAL, HIDDEN_GOAL = 0.9, 0.5


@dataclass(frozen=True)
class DistributedConfig:
    """The main job's sizes (``train charlm``'s defaults) and how many steps to time."""

    seq_len: int = 64
    batch: int = 32
    embed: int = 32
    hidden: int = 128
    layers: int = 2
    steps: int = 10  # timed steps, after 2 untimed ones (and as many backwards of each overlap mode)
    bucket_mb: float | None = None  # DistributedDataParallel's default


def mpiexec() -> str | None:
    """The ``mpiexec`` beside this Python (the mpi extra's) or on PATH; None without mpi4py too."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    beside = Path(sys.executable).with_name("mpiexec")
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def _launch(ranks: int, threads: int, cfg: DistributedConfig) -> dict[str, Any]:
    """Run the measuring program on ``ranks`` ranks (1: a plain process) and return rank 0's record."""
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "record.json")
        command = [sys.executable, "-c", "import sys; from minirnn.bench.distributed import main; main(sys.argv[1:])",
                   "--threads", str(threads), "--json", out, "--config", json.dumps(asdict(cfg))]
        if ranks > 1:
            launcher = mpiexec()
            if launcher is None:
                raise RuntimeError("the distributed benchmark needs mpi4py and mpiexec (pip install 'minirnn[mpi]')")
            command = [launcher, "-n", str(ranks), *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=600, stdin=subprocess.DEVNULL)
        if done.returncode != 0:
            raise RuntimeError(f"distributed bench: {' '.join(command[:4])}... failed: {done.stderr[-2000:]}")
        return json.loads(Path(out).read_text())


def run_distributed(cfg: DistributedConfig, cores: int) -> dict[str, Any] | None:
    """1 rank x ``cores`` threads vs 2 ranks x ``cores // 2`` threads (at least 1); None without MPI."""
    if mpiexec() is None:
        return None
    one = _launch(1, cores, cfg)
    two = _launch(2, max(1, cores // 2), cfg)
    return {"config": asdict(cfg), "one_rank": one, "two_ranks": two,
            "ratio": two["chars_per_s"] / one["chars_per_s"]}


def table(record: dict[str, Any]) -> str:
    """The section's lines: chars/s of each run, and the allreduce per step with what overlap hides."""
    c, one, two = record["config"], record["one_rank"], record["two_ranks"]
    return "\n".join([
        f"Distributed (MPI, the main job: T{c['seq_len']} B{c['batch']} H{c['hidden']} layers={c['layers']}, "
        f"{two['gradient_bytes'] / 2**20:.2f} MiB of gradients in {two['buckets']} bucket(s)):",
        f"  1 rank x {one['threads']} threads: {one['chars_per_s']:,.0f} chars/s; "
        f"2 ranks x {two['threads']} thread(s): {two['chars_per_s']:,.0f} chars/s ({record['ratio']:.2f}x)",
        f"  2 ranks, per step (median): step {two['step_s'] * 1e3:.1f} ms, blocking allreduce of all gradients "
        f"{two['allreduce_s'] * 1e3:.2f} ms; backward waited {two['wait_after_s'] * 1e3:.2f} ms with every bucket "
        f"sent after backward, {two['wait_overlap_s'] * 1e3:.2f} ms overlapped: {two['hidden']:.0%} hidden"])


def targets(record: dict[str, Any] | None) -> list[Target]:
    """The two distributed goals, RATIO_GOAL and HIDDEN_GOAL (n/a without MPI)."""
    texts = (f"distributed: 2 ranks x 1 thread >= {RATIO_GOAL}x the chars/s of 1 rank x 2 threads",
             f"distributed: overlap hides >= {HIDDEN_GOAL:.0%} of the allreduce")
    if record is None:
        return [Target(text, "n/a") for text in texts]
    values = ((record["ratio"], RATIO_GOAL), (record["two_ranks"]["hidden"], HIDDEN_GOAL))
    return [Target(text, "PASS" if value >= goal else "MISS", value,
                   [] if value >= goal else [f"{value:.2f} < {goal:.2f}"]) for text, (value, goal) in zip(texts, values)]


# ---------------------------------------------------------------- the measuring program (every rank)

def _measure(cfg: DistributedConfig, threads: int) -> dict[str, Any]:
    from .. import _C, distributed, optim
    from ..charlm import CharLM, default_corpus, encode_corpus, streams, training_loss
    from ..random import manual_seed
    from ..tbptt import tbptt
    _C.set_num_threads(threads)
    vocab, ids = encode_corpus(default_corpus())
    data = np.ascontiguousarray(streams(ids, cfg.batch)[:, distributed.shard(cfg.batch)])
    manual_seed(0)
    model = CharLM(len(vocab), cfg.embed, cfg.hidden, cfg.layers)
    ddp = distributed.DistributedDataParallel(model, bucket_mb=cfg.bucket_mb)
    params = list(model.parameters())
    opt = optim.Adam(params, lr=3e-3)
    chunks = [data[a:a + cfg.seq_len + 1] for a in range(0, (cfg.steps + 2) * cfg.seq_len, cfg.seq_len)]
    steps, state = [], None
    for i, chunk in enumerate(chunks):  # the main job's steps, overlapped
        distributed.agree(None)  # start each step together
        start = time.perf_counter()
        state = tbptt(ddp, training_loss, opt, chunk[:-1], chunk[1:], cfg.seq_len, state=state, max_norm=1.0,
                      parameters=params).state
        if i >= 2:
            steps.append(time.perf_counter() - start)
    step_s = float(np.median(steps))
    record = {"ranks": distributed.world_size(), "threads": threads, "step_s": step_s,
              "chars_per_s": cfg.seq_len * cfg.batch / step_s,
              "vocab_size": len(vocab), "buckets": len(ddp.buckets), "gradient_bytes": sum(b.buffer.nbytes for b in ddp.buckets)}
    if distributed.is_distributed():
        record.update(_overlap(ddp, training_loss, chunks, cfg.steps))
    return record


def _overlap(ddp: Any, loss_fn: Any, chunks: list[np.ndarray], repeats: int) -> dict[str, float]:
    """The communication backward leaves exposed, with overlap on and off (interleaved), and a
    blocking allreduce of every bucket alone. All ranks start each backward together; a rank that
    finishes its backward first also waits for the others' compute, so the exposed communication is
    the wait of the rank that finished its backward last."""
    waits: dict[bool, list[float]] = {True: [], False: []}
    for i in range(2 * repeats):
        ddp.overlap = i % 2 == 0
        chunk = chunks[i % len(chunks)]
        loss = loss_fn(ddp(chunk[:-1])[0], chunk[1:])
        for p in ddp.parameters():
            p.grad = None
        ddp._comm.Barrier()
        start, waited = time.perf_counter(), ddp.wait_seconds
        loss.backward()
        wait = ddp.wait_seconds - waited
        computed = time.perf_counter() - start - wait
        waits[ddp.overlap].append(max(ddp._comm.allgather((computed, wait)))[1])
    ddp.overlap = True
    overlapped, after = float(np.median(waits[True])), float(np.median(waits[False]))
    return {"allreduce_s": _allreduce_seconds(ddp, repeats), "wait_overlap_s": overlapped, "wait_after_s": after,
            "hidden": 1 - overlapped / max(after, 1e-12)}


def _allreduce_seconds(ddp: Any, repeats: int) -> float:
    """Median time of blocking allreduces of every bucket, nothing else running."""
    from mpi4py import MPI
    times = []
    for _ in range(repeats):
        ddp._comm.Barrier()
        start = time.perf_counter()
        for bucket in ddp.buckets:
            ddp._comm.Allreduce(MPI.IN_PLACE, bucket.buffer, op=MPI.SUM)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main(argv: list[str] | None = None) -> None:
    """The measuring program: ``--threads N --json OUT [--config JSON]``; rank 0 writes the record."""
    from .. import distributed
    p = argparse.ArgumentParser(prog="minirnn.bench.distributed")
    p.add_argument("--threads", type=int, required=True)
    p.add_argument("--json", required=True)
    p.add_argument("--config", type=json.loads, default={})
    args = p.parse_args(argv)
    with distributed.abort_on_error():
        record = _measure(DistributedConfig(**args.config), args.threads)
        if distributed.rank() == 0:
            Path(args.json).write_text(json.dumps(record))
