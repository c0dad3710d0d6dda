"""On-the-fly batching of dynamic graphs (Neubig, Goldberg and Dyer 2017, "On-the-fly Operation
Batching in Dynamic Computation Graphs").

Write the model one example at a time -- a recursion over one tree, a loop over one graph's
nodes -- and run it inside ``with minirnn.autobatch():``. Ops are then recorded, not run
(:mod:`.lazy`); when a value is needed, the recorder (:mod:`.recorder`) runs the pending ops in
batches: ops of the same signature at the same depth become one op over their stacked inputs
(:mod:`.rules`), e.g. one GEMM for every node of one height in every tree. The tape records the
batched ops, so backward runs per batch too.

Reading a value inside the block (``.item()``, ``.numpy()``, ``.data``, an ``if`` on a value)
runs everything pending first and then goes on: correct, just less batched.
"""
from __future__ import annotations

import contextlib
import gc
from typing import Iterator

from ..autograd import _autobatch_state
from .lazy import LazyTensor
from .recorder import BatchLog, BatchRecord, Recorder

SCHEDULES = ("agenda", "depth")
__all__ = ["autobatch", "BatchLog", "BatchRecord", "LazyTensor"]


@contextlib.contextmanager
def autobatch(enabled: bool = True, schedule: str = "agenda") -> Iterator[BatchLog]:
    """Record ops lazily inside the block and run them in batches (see the module docstring).

    ``schedule``: "agenda" (DyNet's: of the ready ops, batch the signature that lies shallowest on
    average) or "depth" (TensorFlow Fold's: one batch per signature and depth); see
    :mod:`minirnn.autobatch.recorder` and docs/06-autobatch.md for what each batches.

    Yields a :class:`BatchLog` of the batches formed (``minirnn.graph.batch_table(log)`` prints
    it). ``enabled=False`` runs the block eagerly (the log stays empty), so a script can offer a
    flag. Nested blocks join the outer one. Leaving the block runs what is still pending.
    """
    if schedule not in SCHEDULES:
        raise ValueError(f"autobatch(): expected schedule to be one of {SCHEDULES}, got {schedule!r}")
    log = BatchLog()
    if not enabled or _autobatch_state.recorder is not None:
        yield log if _autobatch_state.recorder is None else _autobatch_state.recorder.log
        return
    recorder = Recorder(log, schedule)
    _autobatch_state.recorder = recorder
    # The block keeps every recorded op alive until it runs: tens of thousands of objects that
    # would make the cyclic garbage collector walk them again and again (it cost more than the
    # recording itself). They hold no cycles once run, so the collector waits until the block ends.
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield log
        recorder.flush()
    finally:
        _autobatch_state.recorder = None
        if collecting:
            gc.enable()
