"""An op-level profiler for the tape: where a forward+backward spends its time and memory.

::

    with minirnn.profile() as p:
        loss = model(x).sum()
        loss.backward()
    print(p)

For each op kind (the ``Function`` class name: ``MatMul``, ``Tanh``, ``FusedRNNLayer``, ...) it
counts forward calls and their wall time, backward calls and their wall time, and the bytes its
saved-for-backward arrays held at the moment the total held by all saved arrays peaked.

How it works: while a profile is open, :mod:`minirnn.autograd` calls its hook methods --
``on_forward`` after every ``Function.apply`` (with the forward's duration), ``timed_backward``
around every node's ``backward``, ``on_free`` when backward frees a node's saved arrays. Saved
arrays of a graph that is dropped without backward are released when the graph is garbage
collected (a ``weakref.finalize`` on the node's context). Bytes are those of the distinct buffers
the saved arrays refer to: a view counts as the array that owns its memory, and a buffer saved by
several nodes counts once (for the op kind that saved it first) until the last of them lets go.
That includes parameters saved by a matmul: the number is what backward keeps reachable.

Profiles nest: an inner profile also feeds the outer one. A profile measures the thread that
opened it; ops run by other threads meanwhile are not counted, and opening a profile while one is
open in another thread raises ``RuntimeError``.
"""
from __future__ import annotations

import contextlib
import threading
import time
import weakref
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np

from . import autograd
from .autograd import Node, saved_arrays
from .graph import format_bytes

_lock = threading.Lock()


@dataclass
class OpStats:
    """What one op kind did while the profile was open (times in seconds)."""

    forward_calls: int = 0
    forward_seconds: float = 0.0
    backward_calls: int = 0
    backward_seconds: float = 0.0
    saved_bytes_at_peak: int = 0


class Profile:
    """A context manager that records per-op statistics; ``str(profile)`` is the table.

    Attributes:
        stats: op kind -> :class:`OpStats`, in the order the kinds were first run.
        peak_saved_bytes: the most bytes held at once by arrays saved for backward by ops
            recorded inside the profile.
    """

    def __init__(self) -> None:
        self.stats: dict[str, OpStats] = {}
        self.peak_saved_bytes = 0
        self._held_bytes = 0
        self._held_by_kind: dict[str, int] = {}
        self._live: dict[int, tuple[list[int], weakref.finalize]] = {}  # ctx id -> buffer ids
        self._buffers: dict[int, list[Any]] = {}  # buffer id -> [holders, nbytes, kind]
        self._thread: int | None = None
        self._previous: Any = None
        self._open = False

    # ------------------------------------------------------------------ context manager
    def __enter__(self) -> Profile:
        with _lock:
            if self._thread is not None:
                raise RuntimeError("profile(): this profile was already used; open a new minirnn.profile()")
            current = autograd._profiler_hook
            me = threading.get_ident()
            if current is not None and current._thread != me:
                raise RuntimeError("profile(): a profile is already open in another thread; minirnn "
                                   "profiles one thread at a time")
            self._thread, self._previous, self._open = me, current, True
            autograd._profiler_hook = self
        return self

    def __exit__(self, *exc_info: Any) -> None:
        with _lock:
            if autograd._profiler_hook is not self:
                raise RuntimeError("profile(): profiles must be closed in the reverse order they were "
                                   "opened (an inner profile is still open)")
            autograd._profiler_hook = self._previous
            self._open = False
        for _, finalizer in self._live.values():
            finalizer.detach()
        self._live.clear()

    # ------------------------------------------------------------------ hook methods
    def _kind(self, name: str) -> OpStats:
        stats = self.stats.get(name)
        if stats is None:
            stats = self.stats[name] = OpStats()
        return stats

    def on_forward(self, cls: type, node: Node | None, outputs: tuple[np.ndarray, ...], seconds: float) -> None:
        if threading.get_ident() != self._thread:
            return
        stats = self._kind(cls.__name__)
        stats.forward_calls += 1
        stats.forward_seconds += seconds
        if node is not None:
            self._hold(cls.__name__, node)
        if self._previous is not None:
            self._previous.on_forward(cls, node, outputs, seconds)

    @contextlib.contextmanager
    def timed_backward(self, node: Node) -> Iterator[None]:
        if threading.get_ident() != self._thread:
            yield
            return
        outer = self._previous.timed_backward(node) if self._previous is not None else contextlib.nullcontext()
        with outer:
            start = time.perf_counter()
            yield
            stats = self._kind(node.name)
            stats.backward_calls += 1
            stats.backward_seconds += time.perf_counter() - start

    def on_free(self, node: Node) -> None:
        if threading.get_ident() != self._thread:
            return
        entry = self._live.get(id(node))
        if entry is not None:
            entry[1].detach()
            self._release(id(node))
        if self._previous is not None:
            self._previous.on_free(node)

    # ------------------------------------------------------------------ saved-bytes bookkeeping
    def _hold(self, kind: str, node: Node) -> None:
        buffers = {id(root): root for root in map(_buffer, saved_arrays(node.saved_tensors)) if root is not None}
        if not buffers:
            return
        for key, root in buffers.items():
            entry = self._buffers.get(key)
            if entry is not None:  # already held by another node: counted once, by its first holder
                entry[0] += 1
                continue
            self._buffers[key] = [1, root.nbytes, kind]
            self._held_bytes += root.nbytes
            self._held_by_kind[kind] = self._held_by_kind.get(kind, 0) + root.nbytes
        finalizer = weakref.finalize(node, self._release, id(node))
        self._live[id(node)] = (list(buffers), finalizer)
        if self._held_bytes > self.peak_saved_bytes:
            self.peak_saved_bytes = self._held_bytes
            for name, stats in self.stats.items():
                stats.saved_bytes_at_peak = self._held_by_kind.get(name, 0)

    def _release(self, node_key: int) -> None:
        keys, _ = self._live.pop(node_key)
        for key in keys:
            entry = self._buffers[key]
            entry[0] -= 1
            if entry[0] == 0:
                del self._buffers[key]
                self._held_bytes -= entry[1]
                self._held_by_kind[entry[2]] -= entry[1]

    # ------------------------------------------------------------------ report
    def table(self) -> str:
        """The statistics as a text table, op kinds by total (forward + backward) time, slowest first."""
        header = ("op", "fwd calls", "fwd ms", "bwd calls", "bwd ms", "saved at peak")
        rows = sorted(self.stats.items(), key=lambda kv: -(kv[1].forward_seconds + kv[1].backward_seconds))
        total = OpStats(sum(s.forward_calls for _, s in rows), sum(s.forward_seconds for _, s in rows),
                        sum(s.backward_calls for _, s in rows), sum(s.backward_seconds for _, s in rows),
                        self.peak_saved_bytes)
        cells = [header] + [(name, str(s.forward_calls), f"{s.forward_seconds * 1e3:.3f}", str(s.backward_calls),
                             f"{s.backward_seconds * 1e3:.3f}", format_bytes(s.saved_bytes_at_peak))
                            for name, s in rows + [("total", total)]]
        widths = [max(len(row[c]) for row in cells) for c in range(len(header))]
        lines = ["  ".join(cell.ljust(w) if c == 0 else cell.rjust(w) for c, (cell, w) in enumerate(zip(row, widths)))
                 for row in cells]
        lines.insert(1, "-" * len(lines[0]))
        lines.insert(len(lines) - 1, "-" * len(lines[0]))
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.table()

    def __repr__(self) -> str:
        state = "open" if self._open else "closed"
        peak = format_bytes(self.peak_saved_bytes)
        return f"<minirnn.Profile {state}: {len(self.stats)} op kinds, peak saved {peak}>"


def _buffer(value: Any) -> np.ndarray | None:
    """The array that owns ``value``'s memory (``value`` itself unless it is a view), or None."""
    if not isinstance(value, np.ndarray):
        return None
    while isinstance(value.base, np.ndarray):
        value = value.base
    return value


def profile() -> Profile:
    """A new :class:`Profile`; use it as ``with minirnn.profile() as p: ...`` then ``print(p)``."""
    return Profile()
