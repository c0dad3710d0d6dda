"""Data-parallel training over MPI (mpi4py): every rank holds the whole model and a shard of the data.

Launch any training script (or ``python -m minirnn train charlm``) with an MPI launcher::

    mpiexec -n 2 python -m minirnn train charlm --threads 1

Each rank runs forward and backward on its own part of the global batch; :class:`DistributedDataParallel`
averages the gradients across ranks while backward still runs (buckets of a few MB, each sent with a
non-blocking ``Iallreduce`` as soon as backward has produced all of its gradients), so that clipping and
the optimizer step see the gradient of the global batch: N ranks with B/N sequences each make the update
one process makes with B. Every rank then takes the same step and the parameters stay identical.

Nothing here imports mpi4py unless an MPI launcher started the process (``PMI_SIZE`` from MPICH's
Hydra, Intel MPI or Slurm's PMI; ``OMPI_COMM_WORLD_SIZE`` from Open MPI; ``PMIX_RANK`` from a PMIx
launch): a plain ``python`` run is a world of one at no cost. A launch with several ranks but no mpi4py raises instead of silently
training N unrelated copies (``pip install "minirnn[mpi]"``).

**Failure.** A rank that raises while the others wait in a collective would hang the job; wrap the
program in :func:`abort_on_error` (``python -m minirnn`` does) so that an uncaught exception prints its
traceback and ends every rank with ``MPI_Abort``.
"""
from __future__ import annotations

import contextlib
import functools
import os
import sys
import threading
import time
import traceback
from typing import Any, Iterator, cast

import numpy as np

from .tensor import Tensor

#: Environment variables by which MPI launchers announce the number of ranks.
_LAUNCHER_SIZE_VARIABLES = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")


def _launched_size() -> int:
    for name in _LAUNCHER_SIZE_VARIABLES:
        value = os.environ.get(name, "")
        if value.isdigit():
            return int(value)
    return 1


@functools.lru_cache(maxsize=None)
def _world() -> Any:
    """``MPI.COMM_WORLD`` when an MPI launcher started more than one rank, else None. A PMIx launch
    (``PMIX_RANK``: Slurm's ``srun --mpi=pmix``, Open MPI 5) does not say its size: MPI is asked."""
    size = _launched_size()
    if size <= 1 and "PMIX_RANK" not in os.environ:
        return None
    try:
        from mpi4py import MPI
    except ImportError as exc:
        if size <= 1:
            return None  # (a PMIx launch, size unknown, no mpi4py: one process as far as can be told)
        raise ImportError(f"minirnn.distributed: launched as one of {size} MPI ranks, but mpi4py is not "
                          f"installed: pip install 'minirnn[mpi]' (or mpi4py built against your MPI)") from exc
    return MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None


def rank() -> int:
    """This process's rank, 0 .. world_size() - 1 (0 when not launched under MPI)."""
    comm = _world()
    return 0 if comm is None else comm.Get_rank()


def world_size() -> int:
    """The number of ranks (1 when not launched under MPI)."""
    comm = _world()
    return 1 if comm is None else comm.Get_size()


def is_distributed() -> bool:
    """True when this process is one of several MPI ranks."""
    return _world() is not None


def local_size() -> int:
    """The number of ranks on this machine (they share its cores)."""
    comm = _world()
    if comm is None:
        return 1
    from mpi4py import MPI
    local = comm.Split_type(MPI.COMM_TYPE_SHARED)
    try:
        return local.Get_size()
    finally:
        local.Free()


def agree(value: Any, root: int = 0) -> Any:
    """``root``'s ``value`` on every rank (a small picklable value: loop decisions such as "stop now"
    or "save a checkpoint now", which all ranks must take together or they deadlock)."""
    comm = _world()
    return value if comm is None else comm.bcast(value, root=root)


def mean_across_ranks(value: float) -> float:
    """The mean of ``value`` over all ranks (``value`` itself in one process)."""
    comm = _world()
    if comm is None:
        return value
    from mpi4py import MPI
    return comm.allreduce(float(value), op=MPI.SUM) / comm.Get_size()


def with_mean_value(loss: Tensor) -> Tensor:
    """``loss`` plus a constant that makes its value the mean of the ranks' losses; its gradient is
    ``loss``'s. Every rank then sees the same (global batch's) loss, so a non-finite loss on one
    rank makes all of them skip the update together -- one rank skipping backward alone would
    leave the others waiting in the gradients' allreduce for ever. In one process: ``loss``."""
    if _world() is None:
        return loss
    return loss + Tensor(np.asarray(mean_across_ranks(loss.item()) - loss.item(), loss.data.dtype))


def gather_along(array: np.ndarray, axis: int, root: int = 0) -> np.ndarray | None:
    """On ``root``: the ranks' ``array`` (same shape on each) concatenated along ``axis`` in rank
    order; None on the other ranks. In one process: ``array``."""
    comm = _world()
    if comm is None:
        return array
    moved = np.ascontiguousarray(np.moveaxis(array, axis, 0))
    out = np.empty((comm.Get_size() * moved.shape[0],) + moved.shape[1:], moved.dtype) if comm.Get_rank() == root \
        else None
    comm.Gather(moved, out, root=root)
    return None if out is None else np.moveaxis(out, 0, axis)


def broadcast_parameters(module: Any, root: int = 0) -> None:
    """Overwrite every parameter and buffer of ``module`` with ``root``'s, in place (so that all ranks
    start from the same weights whatever their random generators did)."""
    comm = _world()
    if comm is None:
        return
    arrays = [p.data for p in module.parameters()] + [b for _, b in module.named_buffers()]
    for array in arrays:
        if not array.flags.c_contiguous:  # (minirnn keeps parameter data contiguous; say so if not)
            raise ValueError(f"broadcast_parameters: expected C-contiguous arrays, got one of shape {array.shape}")
        comm.Bcast(array, root=root)


def shard(n: int) -> slice:
    """This rank's contiguous block of ``n`` items (a batch of streams, say): ``n`` must divide
    evenly, so that every rank's mean loss weighs the same and their average is the global mean."""
    size = world_size()
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < size or n % size:
        raise ValueError(f"batch: expected a multiple of the {size} ranks, got {n!r}")
    part = n // size
    return slice(rank() * part, (rank() + 1) * part)


class DistributedSampler:
    """Indices ``0 .. num_samples-1`` for this rank: each epoch a permutation (seeded by ``seed`` and
    the epoch, the same on every rank; ``shuffle=False``: in order) cut into ``world_size()``
    disjoint, equal shards; the last ``num_samples % world_size()`` of it are dropped so every rank
    takes the same number of steps. ``set_epoch(e)`` before each epoch reshuffles."""

    def __init__(self, num_samples: int, shuffle: bool = True, seed: int = 0):
        if isinstance(num_samples, bool) or not isinstance(num_samples, (int, np.integer)) or \
                num_samples < world_size():
            raise ValueError(f"num_samples: expected an int >= world_size() = {world_size()}, got {num_samples!r}")
        self.num_samples, self.shuffle, self.seed, self.epoch = int(num_samples), shuffle, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return self.num_samples // world_size()

    def __iter__(self) -> Iterator[int]:
        order = np.random.default_rng((self.seed, self.epoch)).permutation(self.num_samples) if self.shuffle \
            else np.arange(self.num_samples)
        return iter(order[rank():len(self) * world_size():world_size()].tolist())


@contextlib.contextmanager
def abort_on_error() -> Iterator[None]:
    """Run the block; when it raises (anything but ``SystemExit``) on one of several ranks,
    print the traceback naming the rank and end the whole job with ``MPI_Abort`` -- the other
    ranks may be waiting for this one in a collective and would otherwise wait for ever."""
    try:
        yield
    except SystemExit:  # an exit status the ranks agreed on (or argparse's, the same on every rank)
        raise
    except BaseException as exc:
        if not is_distributed():
            raise
        traceback.print_exc()
        abort(1, f"{type(exc).__name__}: {exc}")


def abort(code: int, reason: str = "") -> None:
    """End every rank of the job now with exit status ``code`` (a message naming this rank first)."""
    print(f"rank {rank()} of {world_size()}: aborting the job (exit {code}){': ' + reason if reason else ''}",
          file=sys.stderr, flush=True)
    sys.stdout.flush()
    _world().Abort(code)


#: The bounds of the default bucket size (see DistributedDataParallel).
MIN_BUCKET_MB, MAX_BUCKET_MB = 0.25, 25.0


class _Bucket:
    """Parameters whose gradients travel together: one flat buffer, one Iallreduce."""

    def __init__(self, params: list[Tensor]):
        self.params = params
        sizes = [p.data.size for p in params]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).tolist()
        self.buffer = np.zeros(self.offsets[-1], params[0].data.dtype)
        self.ready: set[int] = set()  # ids of the parameters whose gradient is in the buffer
        self.request: Any = None

    def put(self, index: int, grad: np.ndarray) -> None:
        self.buffer[self.offsets[index]:self.offsets[index + 1]] = grad.ravel()
        self.ready.add(index)

    @property
    def full(self) -> bool:
        return len(self.ready) == len(self.params)

    def unpack(self, size: int) -> None:
        """Each parameter's ``.grad`` := its slice of the summed buffer / ``size`` (the mean)."""
        for i, p in enumerate(self.params):
            mean = self.buffer[self.offsets[i]:self.offsets[i + 1]].reshape(p.data.shape) / size
            p.grad = mean.astype(p.data.dtype, copy=False)
        self.ready.clear()
        self.request = None


def _buckets(params: list[Tensor], bucket_bytes: int) -> list[_Bucket]:
    """``params`` in reverse order (backward produces the last layers' gradients first), cut into
    runs of one dtype of about ``bucket_bytes`` each."""
    buckets: list[_Bucket] = []
    run: list[Tensor] = []
    run_bytes = 0
    for p in reversed(params):
        if run and (run_bytes + p.data.nbytes > bucket_bytes or p.data.dtype != run[0].data.dtype):
            buckets.append(_Bucket(run))
            run, run_bytes = [], 0
        run.append(p)
        run_bytes += p.data.nbytes
    if run:
        buckets.append(_Bucket(run))
    return buckets


class DistributedDataParallel:
    """``module`` with its gradients averaged across ranks during backward.

    ``ddp = DistributedDataParallel(model)`` broadcasts rank 0's parameters to every rank, then
    ``ddp(*args)`` calls ``model``. Each parameter gets a post-accumulate hook; when backward has
    produced every gradient of a bucket (about ``bucket_mb`` MiB of parameters, in reverse order of
    ``parameters()``, which is roughly the order backward finishes them), the bucket's ``Iallreduce``
    starts -- buckets start in order, so every rank starts the same collectives in the same order --
    and a thread keeps MPI moving them while backward goes on. The last gradient's hook waits for
    all of them and sets each ``.grad`` to the mean over ranks, so that when ``loss.backward()``
    returns, clipping and ``optimizer.step()`` see the global batch's gradient. ``overlap=False``
    (an attribute too, which may change between backwards) starts every bucket only then.

    ``bucket_mb`` defaults to a quarter of all the gradients, within [0.25, 25] MiB: several
    buckets, so the first ones travel while backward works on the earlier layers (with the main
    job's 0.9 MiB in one bucket nothing overlaps), and no more collectives than that, since each
    one costs a latency that grows with the number of ranks (docs/07-data-parallel.md).

    Every parameter that requires grad must get a gradient in every backward (a backward that
    leaves one out raises at the next call). Outside MPI this is ``model`` itself, at no cost.
    """

    def __init__(self, module: Any, bucket_mb: float | None = None, overlap: bool = True):
        if bucket_mb is not None and not bucket_mb > 0:
            raise ValueError(f"bucket_mb: expected a number > 0 (or None), got {bucket_mb!r}")
        self.module, self.overlap = module, overlap
        self.wait_seconds = 0.0  # time spent waiting for allreduces to finish, summed over backwards
        self._names = {id(p): name for name, p in module.named_parameters()}
        comm = _world()
        self._comm: Any = None if comm is None else comm.Dup()  # its own communicator: never mixed with the caller's
        params = [p for p in module.parameters() if p.requires_grad]
        if bucket_mb is None:
            bucket_mb = min(MAX_BUCKET_MB, max(MIN_BUCKET_MB, sum(p.data.nbytes for p in params) / 2**20 / 4))
        self.buckets = _buckets(params, int(bucket_mb * 2**20))
        self._sent = 0  # buckets [0, _sent) have their Iallreduce started in this backward
        self._poller: _Poller | None = None  # moves them along while backward runs
        if self._comm is None:
            return
        from mpi4py import MPI
        # A thread may call MPI beside the main one only under MPI_THREAD_MULTIPLE (mpi4py asks for it;
        # an MPI built without it gives less): otherwise buckets start early but move only at the end.
        self._progress_thread = MPI.Query_thread() == MPI.THREAD_MULTIPLE
        broadcast_parameters(module)
        for bucket in self.buckets:
            for index, p in enumerate(bucket.params):
                p.register_post_accumulate_grad_hook(functools.partial(self._on_gradient, bucket, index))

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        if any(b.ready for b in self.buckets):  # a backward ended before all gradients came in
            unfinished = [self._names.get(id(p), "?") for b in self.buckets for i, p in enumerate(b.params)
                          if i not in b.ready]
            raise RuntimeError(f"DistributedDataParallel: the last backward produced no gradient for "
                               f"{unfinished}; every parameter that requires grad must get one on every rank")
        return self.module(*args, **kwargs)

    def parameters(self) -> Iterator[Tensor]:
        return self.module.parameters()

    def _on_gradient(self, bucket: _Bucket, index: int, param: Tensor) -> None:
        bucket.put(index, cast(np.ndarray, param.grad))  # (set: this runs after it is accumulated)
        if all(b.full for b in self.buckets):
            self._finish()
        elif self.overlap:
            self._start_ready_buckets()
            if self._poller is None and self._sent and self._progress_thread:
                self._poller = _Poller(self.buckets)

    def _start_ready_buckets(self) -> None:
        from mpi4py import MPI
        while self._sent < len(self.buckets) and self.buckets[self._sent].full:
            bucket = self.buckets[self._sent]
            bucket.request = self._comm.Iallreduce(MPI.IN_PLACE, bucket.buffer, op=MPI.SUM)
            self._sent += 1

    def _finish(self) -> None:
        from mpi4py import MPI
        if self._poller is not None:
            self._poller.stop()
            self._poller = None
        self._start_ready_buckets()
        start = time.perf_counter()
        MPI.Request.Waitall([b.request for b in self.buckets])
        self.wait_seconds += time.perf_counter() - start
        size = self._comm.Get_size()
        for bucket in self.buckets:
            bucket.unpack(size)
        self._sent = 0


class _Poller:
    """A thread that calls ``MPI_Testall`` on the buckets in flight every ``interval_s`` until stopped.

    MPICH moves a non-blocking collective only inside MPI calls, and the hooks run only between
    layers: without this thread a bucket sent after the last layer's backward would wait, unmoved,
    through the whole backward of the layer before it (one fused kernel call, which releases the GIL,
    so this thread runs meanwhile). The thread reads the buckets' requests afresh each time (a bucket
    not yet sent has None), and it alone tests them until :meth:`stop` returns; the main thread
    meanwhile only starts new ones (allowed under ``MPI_THREAD_MULTIPLE``).
    """

    def __init__(self, buckets: list[_Bucket], interval_s: float = 1e-4):
        self._buckets, self._interval_s = buckets, interval_s
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._run, name="minirnn-allreduce-progress", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        from mpi4py import MPI
        while not self._stopped.wait(self._interval_s):
            MPI.Request.Testall([b.request for b in self._buckets if b.request is not None])

    def stop(self) -> None:
        self._stopped.set()
        self._thread.join()
