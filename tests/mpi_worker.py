"""What tests/test_distributed.py runs under ``mpiexec -n N`` (and, with one rank, in its own process).

``python tests/mpi_worker.py train OUT_DIR [--clip C] [--bucket-mb M] [--no-overlap]``: 20 Adam steps
of a float64 CharLM (Embedding -> 2-layer LSTM -> Linear) on a global batch of 4 random sequences,
each rank training on its shard through DistributedDataParallel; every rank writes its final
parameters to ``OUT_DIR/rank{r}.npz`` and the gradient norms before clipping to ``OUT_DIR/norms{r}.npy``.

``python tests/mpi_worker.py fail RANK [--kill]``: every rank enters a collective, except ``RANK``,
which raises first (inside :func:`minirnn.distributed.abort_on_error`, as ``python -m minirnn`` runs)
or, with ``--kill``, dies of SIGKILL.

``python tests/mpi_worker.py unused``: prints ``rank world_size local_size is_distributed``, then
calls DistributedDataParallel again after a backward that left a layer without gradients.

``python tests/mpi_worker.py nonfinite OUT_DIR``: TBPTT with a NaN loss on rank 1 only, at one update.
"""
from __future__ import annotations

import argparse
import os
import signal
import sys

import numpy as np

from minirnn import Tensor, distributed, manual_seed, nn, optim
from minirnn.charlm import CharLM
from minirnn.generate import sequence_cross_entropy
from minirnn.tbptt import NonFiniteGuard, tbptt

STEPS, T, BATCH, VOCAB = 20, 6, 4, 11


def model() -> CharLM:
    return CharLM(VOCAB, embed_dim=5, hidden_size=7, num_layers=2, dtype=np.float64)


def train(out_dir: str, clip: float | None, bucket_mb: float, overlap: bool) -> None:
    manual_seed(0)
    net = model()
    ddp = distributed.DistributedDataParallel(net, bucket_mb=bucket_mb, overlap=overlap)
    params = list(net.parameters())
    opt = optim.Adam(params, lr=0.01)
    data = np.random.default_rng(1).integers(0, VOCAB, size=(STEPS, T + 1, BATCH))
    mine = distributed.shard(BATCH)
    norms = []
    for ids in data:
        logits, _ = ddp(ids[:-1, mine])
        loss = sequence_cross_entropy(logits, ids[1:, mine])
        opt.zero_grad()
        loss.backward()
        norms.append(optim.clip_grad_norm_(params, clip) if clip else optim.clip.grad_norm(params))
        opt.step()
    np.savez(os.path.join(out_dir, f"rank{distributed.rank()}.npz"), **net.state_dict())
    np.save(os.path.join(out_dir, f"norms{distributed.rank()}.npy"), np.array(norms))


def fail(failing_rank: int, kill: bool) -> None:
    with distributed.abort_on_error():
        if distributed.rank() == failing_rank:
            if kill:
                os.kill(os.getpid(), signal.SIGKILL)
            raise RuntimeError(f"rank {failing_rank} fails on purpose")
        distributed.mean_across_ranks(1.0)  # the others wait here for the failing rank
        print("passed the collective", flush=True)


def unused() -> None:
    """A model with a layer its forward never calls: the next call after backward must say so."""
    class TwoLayers(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.used, self.unused = nn.Linear(3, 2), nn.Linear(3, 2)

        def forward(self, x: Tensor) -> Tensor:
            return self.used(x)

    sys.stdout.write(f"{distributed.rank()} {distributed.world_size()} {distributed.local_size()} "
                     f"{distributed.is_distributed()}\n")  # one write: the ranks' lines do not interleave
    sys.stdout.flush()
    distributed.mean_across_ranks(0.0)  # every rank has printed before one of them aborts the job
    with distributed.abort_on_error():
        ddp = distributed.DistributedDataParallel(TwoLayers())
        x = Tensor(np.ones((4, 3), np.float32))
        ddp(x).sum().backward()
        ddp(x)


def nonfinite(out_dir: str) -> None:
    """6 TBPTT updates of the float64 model where only rank 1's loss is NaN at the 3rd: every rank
    must skip that update (none may wait alone in the gradients' allreduce) and count it."""
    manual_seed(0)
    net = model()
    ddp = distributed.DistributedDataParallel(net)
    params = list(net.parameters())
    opt, guard = optim.Adam(params, lr=0.01), NonFiniteGuard()
    calls = []

    def loss_fn(logits: Tensor, targets: np.ndarray) -> Tensor:
        calls.append(1)
        loss = sequence_cross_entropy(logits, targets)
        poisoned = len(calls) == 3 and distributed.rank() == 1
        return distributed.with_mean_value(loss * float("nan") if poisoned else loss)

    data = np.random.default_rng(2).integers(0, VOCAB, size=(6 * T + 1, BATCH))[:, distributed.shard(BATCH)]
    result = tbptt(ddp, loss_fn, opt, data[:-1], data[1:], T, max_norm=1.0, parameters=params, guard=guard)
    np.savez(os.path.join(out_dir, f"rank{distributed.rank()}.npz"), skipped=guard.skipped,
             losses=np.array(result.losses), **net.state_dict())


def main(argv: list[str]) -> None:
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("out_dir")
    t.add_argument("--clip", type=float)
    t.add_argument("--bucket-mb", type=float)
    t.add_argument("--no-overlap", action="store_true")
    f = sub.add_parser("fail")
    f.add_argument("rank", type=int)
    f.add_argument("--kill", action="store_true")
    sub.add_parser("unused")
    sub.add_parser("nonfinite").add_argument("out_dir")
    args = p.parse_args(argv)
    if args.command == "train":
        train(args.out_dir, args.clip, args.bucket_mb, not args.no_overlap)
    elif args.command == "fail":
        fail(args.rank, args.kill)
    elif args.command == "nonfinite":
        nonfinite(args.out_dir)
    else:
        unused()


if __name__ == "__main__":
    main(sys.argv[1:])
