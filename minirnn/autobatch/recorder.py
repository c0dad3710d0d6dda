"""The recorder: takes each op lazily, groups ops by signature, runs each group as one batch.

An op's depth is one more than the deepest pending op it reads. Two schedules order the batches:
by depth (as TensorFlow Fold does: all ops of one signature at one depth form one batch,
shallower first; every op reads only shallower ones, so that respects every dependence), and
DyNet's agenda (the default: of the ops whose inputs have run, all of the signature that lies
shallowest on average). In a tree, depth follows the height of a node above its leaves: the
nodes of one height in all trees of a minibatch run together, as one batches a tree by hand.

A signature says what the members of a batch must share: the op, its options, the identity of
every tensor that requires grad and is not itself lazy (a weight: run once for all members), and
the shape and dtype of everything else (a member's own input: stacked along a new leading axis).
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..autograd import Function, _grad_mode, _grad_mode_state
from ..ops.indexing import GetItem
from ..ops.join import Cat, Stack
from ..ops.shape import Permute
from ..tensor import Tensor
from ..nn.module import Parameter
from .lazy import LazyTensor, paused
from .rules import ANY, RULES, NotBatchable

class _Marker:
    """How an argument of an op is given to its batch, first in its key in a signature (an
    object of its own, so that no option's value can be taken for one)."""

    __slots__ = ("name",)

    def __init__(self, name: str):
        self.name = name

    def __repr__(self) -> str:
        return self.name


BATCHED = _Marker("batched")  # stacked along a new leading axis, one row per member
SHARED = _Marker("shared")    # one object for all members (a weight)
PER_MEMBER = _Marker("per-member")  # a structure holding arrays (an index): the rule combines the members'


def _kind(key: Any) -> _Marker | None:
    """BATCHED, SHARED or PER_MEMBER for an argument's key that is marked so, else None (an option)."""
    if type(key) is tuple and key and type(key[0]) is _Marker:
        return key[0]
    return None


class _Slice:
    """A hashable stand-in for a slice in a signature (slices are unhashable before Python 3.12)."""

    __slots__ = ()


def _key(a: Any) -> Any:
    """What argument ``a`` contributes to its op's signature when it is not a weight (see the
    module docstring): a tensor or an array is a member's own."""
    if isinstance(a, Tensor):
        return BATCHED, (a.data.shape, a.data.dtype)
    if isinstance(a, np.ndarray):
        return BATCHED, (a.shape, a.dtype)
    if type(a) is tuple:
        parts = tuple(_key(p) for p in a)
        if any(_kind(p) in (BATCHED, PER_MEMBER) for p in parts):
            return PER_MEMBER, parts
        return parts
    if type(a) is slice:
        return _Slice, a.start, a.stop, a.step
    if isinstance(a, np.integer):
        return int(a)
    hash(a)  # TypeError for an unhashable option: that op runs on its own
    return a


class PendingOp:
    """One recorded op: what to apply to what, the lazy tensors it will fill in, its signature
    and depth, for the agenda how many pending ops it still waits for and who waits for it, and
    the recorder that will run it."""

    __slots__ = ("function", "args", "kwargs", "outputs", "signature", "depth", "waiting", "consumers", "recorder")

    def __init__(self, function: type[Function], args: tuple[Any, ...], kwargs: dict[str, Any], signature: int,
                 depth: int, producers: list[PendingOp], recorder: Recorder):
        self.function, self.args, self.kwargs, self.signature, self.depth = function, args, kwargs, signature, depth
        self.recorder = recorder
        self.outputs: list[LazyTensor] = []
        self.waiting = len(producers)
        self.consumers: list[PendingOp] = []
        for producer in producers:
            producer.consumers.append(self)


@dataclass
class BatchRecord:
    """One batch that ran: the op, its signature in words, how many members, how it ran."""

    op: str
    signature: str
    size: int
    how: str  # "batched", "single", or "alone: <why>" for an op that could not be batched


@dataclass
class BatchLog:
    """What an ``autobatch()`` block did (returned by the context manager).

    ``batches`` lists every batch in the order it ran; ``record_seconds`` is the time spent
    recording ops and working out their signatures, ``schedule_seconds`` the time spent in
    flushes outside the ops themselves (grouping, gathering inputs, handing out rows): together
    the cost of batching, to compare with the step's time.
    """

    batches: list[BatchRecord] = field(default_factory=list)
    record_seconds: float = 0.0
    schedule_seconds: float = 0.0

    @property
    def ops(self) -> int:
        return sum(b.size for b in self.batches)


def _signature_text(args: tuple[Any, ...], keys: tuple[Any, ...]) -> str:
    parts = []
    for a, k in zip(args, keys):
        kind = _kind(k)
        if kind == BATCHED:
            parts.append(f"{tuple(k[1][0])}")
        elif kind == SHARED:
            parts.append(f"shared{tuple(a.shape)}")
        elif kind == PER_MEMBER:
            parts.append("index")
        else:
            parts.append(repr(a) if not isinstance(a, slice) else f"{a.start}:{a.stop}")
    return ", ".join(parts)


class Recorder:
    """Holds the pending ops of one ``autobatch()`` block and runs them (see the module docstring)."""

    def __init__(self, log: BatchLog, schedule: str):
        self.log = log
        self.pending: list[PendingOp] = []
        self.schedule = self._by_agenda if schedule == "agenda" else self._by_depth
        # Signatures are numbered as they are first met: the scheduler's dictionaries then hash
        # small ints, not nested tuples (a tuple's hash is recomputed at every lookup). ``known``
        # keeps each signature's (number, output metas, returns a tuple): a rule's checks and
        # shapes depend on the signature alone (except where ``meta_per_call`` says otherwise).
        self.known: dict[Any, tuple[int, Any, bool]] = {}
        self.signatures: list[Any] = []

    # ------------------------------------------------------------------ recording
    def record(self, cls: type[Function], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        start = time.perf_counter()
        rule = RULES.get(cls)
        if rule is None:
            return self._alone(cls, args, kwargs, "no batching rule")
        # One pass over the arguments (this runs for every op): their keys, whether any is a
        # member's own, the depth, whether the outputs will require grad.
        keys, per_member, depth, needs_grad, producers = [], False, 0, False, []
        weights = rule.weights
        try:
            for i, a in enumerate(args):
                kind = type(a)
                if kind is LazyTensor:
                    keys.append((BATCHED, a._meta))
                    per_member = True
                    producer = a._op
                    if producer is not None:
                        producers.append(producer)
                        depth = producer.depth if producer.depth > depth else depth
                    needs_grad = needs_grad or a.requires_grad
                elif kind is int or a is None:  # (an option: an axis, a count)
                    keys.append(a)
                elif isinstance(a, Tensor) and a.requires_grad and (
                        weights is ANY or i in weights or isinstance(a, Parameter)):
                    keys.append((SHARED, a))  # (the object, not its id: an id can be reused once it dies)
                    needs_grad = True
                else:
                    key = _key(a)
                    keys.append(key)
                    needs_grad = needs_grad or (isinstance(a, Tensor) and a.requires_grad)
                    if _kind(key) in (BATCHED, PER_MEMBER):
                        per_member = True
            options = tuple(kwargs.items())
            hash(options)
        except TypeError:
            return self._alone(cls, args, kwargs, "an unhashable option")
        if not per_member:  # only weights and options (e.g. W.T): the same for every member, so it runs now, once
            with paused():
                return cls.apply(*args, **kwargs)
        grad = _grad_mode_state.enabled
        signature = (cls, grad, tuple(keys), options)
        known = self.known.get(signature)
        if known is None or rule.meta_per_call:
            described = self._describe(rule, signature, args, kwargs)
            if isinstance(described, str):
                return self._alone(cls, args, kwargs, described)
            known = described
        number, metas, is_tuple = known
        op = PendingOp(cls, args, kwargs, number, depth + 1, producers, self)
        requires_grad = grad and needs_grad
        outputs = op.outputs = [LazyTensor.pending(op, meta, requires_grad) for meta in metas]
        self.pending.append(op)
        self.log.record_seconds += time.perf_counter() - start
        return tuple(outputs) if is_tuple else outputs[0]

    def _describe(self, rule: Any, signature: Any, args: tuple[Any, ...],
                  kwargs: dict[str, Any]) -> tuple[int, Any, bool] | str:
        """The signature's number and the outputs' metas (the rule's checks, the op's own errors
        for bad shapes), or why the op cannot be batched."""
        keys = signature[2]
        shared = [_kind(k) == SHARED for k in keys]
        if rule.weights and rule.weights is not ANY:
            for i in rule.weights:
                if i < len(args) and not shared[i] and args[i] is not None:
                    return f"argument {i} should be a weight and is not"
        try:
            metas, is_tuple = rule.meta(args, kwargs, shared)
        except NotBatchable as why:
            return str(why)
        known = self.known.get(signature)
        if known is None:
            known = self.known[signature] = (len(self.signatures), metas, is_tuple)
            self.signatures.append(signature)
        return known[0], metas, is_tuple

    def _alone(self, cls: type[Function], args: tuple[Any, ...], kwargs: dict[str, Any], why: str) -> Any:
        """Run an op that cannot be batched now, on its own: first everything pending it may read."""
        self.flush()
        with paused():
            out = cls.apply(*[a.value() if type(a) is LazyTensor else a for a in args], **kwargs)
        self.log.batches.append(BatchRecord(cls.__name__, "", 1, f"alone: {why}"))
        return out

    # ------------------------------------------------------------------ running
    def flush(self) -> None:
        """Run every pending op, batch by batch, in the order the schedule gives."""
        with paused():
            while self.pending:
                ops, self.pending = self.pending, []
                self.schedule(ops)

    def _by_depth(self, ops: list[PendingOp]) -> None:
        """All ops of one signature at one depth make a batch; shallower batches first."""
        groups: dict[Any, list[PendingOp]] = {}
        for op in ops:
            key = (op.depth, op.signature)
            members = groups.get(key)
            if members is None:
                groups[key] = [op]
            else:
                members.append(op)
        for key in sorted(groups, key=lambda g: g[0]):  # (a stable sort: recording order within a depth)
            self._run(key[1], groups[key])

    def _by_agenda(self, ops: list[PendingOp]) -> None:
        """DyNet's agenda: of the ops whose inputs are ready, run all of one signature at once,
        choosing the signature whose ops lie shallowest on average (so that ops of that signature
        at other depths, not yet ready, can still join a later batch of it)."""
        totals: dict[Any, list[int]] = {}
        ready: dict[Any, list[PendingOp]] = {}
        for op in ops:
            total = totals.get(op.signature)
            if total is None:
                totals[op.signature] = [op.depth, 1]
            else:
                total[0] += op.depth
                total[1] += 1
            if op.waiting == 0:
                ready.setdefault(op.signature, []).append(op)
        mean_depth = {sig: total / count for sig, (total, count) in totals.items()}
        while ready:
            signature = min(ready, key=mean_depth.__getitem__)
            batch = ready.pop(signature)
            self._run(signature, batch)
            for op in batch:
                for consumer in op.consumers:
                    consumer.waiting -= 1
                    if consumer.waiting == 0:
                        ready.setdefault(consumer.signature, []).append(consumer)
                op.consumers = []

    def _run(self, signature: int, ops: list[PendingOp]) -> None:
        start = time.perf_counter()
        cls, grad, keys, _ = self.signatures[signature]
        first = ops[0]
        with _grad_mode(grad):
            if len(ops) == 1:
                if cls is Stack and len(first.args) > 2:  # (the sum of many losses): one gather, not a node per piece
                    pieces = _stacked(list(first.args[1:]))
                    kernel_start = time.perf_counter()
                    out = _move_axis_0(pieces, first.args[0])
                else:
                    kernel_start = time.perf_counter()
                    out = cls.apply(*[a.value() if type(a) is LazyTensor else a for a in first.args], **first.kwargs)
                kernel = time.perf_counter() - kernel_start
                for lazy, o in zip(first.outputs, out if type(out) is tuple else (out,)):
                    lazy._source, lazy._op = o, None
            else:
                args = [_gather(k, [op.args[i] for op in ops]) for i, k in enumerate(keys)]
                batched = [_kind(k) in (BATCHED, PER_MEMBER) for k in keys]
                kernel_start = time.perf_counter()
                out = RULES[cls].run(cls, args, batched, first.kwargs, len(ops))
                kernel = time.perf_counter() - kernel_start
                for j, source in enumerate(out if type(out) is tuple else (out,)):
                    for row, op in enumerate(ops):
                        lazy = op.outputs[j]
                        lazy._source, lazy._row, lazy._op = source, row, None
        text = _signature_text(first.args, keys)
        for op in ops:  # (what a run op still holds would keep the graph's values alive)
            op.args = ()
        self.log.batches.append(BatchRecord(cls.__name__, text, len(ops),
                                            "single" if len(ops) == 1 else "batched"))
        self.log.schedule_seconds += time.perf_counter() - start - kernel


def _gather(key: Any, values: list[Any]) -> Any:
    """The argument a batch gets in one position, from its members' (see the signature markers)."""
    kind = _kind(key)
    if kind == BATCHED:
        return _stacked(values)
    if kind == PER_MEMBER:
        return values
    return values[0]  # a weight or an option: the same for all


def _stacked(values: list[Any]) -> Any:
    """The members' values stacked along a new axis 0, as cheaply as their sources allow.

    Rows of earlier batches are taken from them directly: all of one batch in order costs
    nothing, a run of rows is a slice, other rows one indexing node per source batch (whose
    backward adds each row's gradient back); anything else is stacked. Pieces from several
    sources are concatenated and put back in the members' order with one more indexing node.
    """
    first = values[0]
    if type(first) is np.ndarray:
        return np.stack(values)
    if type(first) is LazyTensor and first._row == 0:  # the common case: all of one batch, in order
        source = first._source
        if len(values) == source.shape[0] and all(
                type(v) is LazyTensor and v._source is source and v._row == i for i, v in enumerate(values)):
            return source
    by_source: dict[int, tuple[Tensor, list[int], list[int]]] = {}
    loose: list[Tensor] = []
    loose_positions: list[int] = []
    for position, v in enumerate(values):
        if type(v) is LazyTensor and v._row is not None:
            entry = by_source.get(id(v._source))
            if entry is None:
                entry = by_source[id(v._source)] = (v._source, [], [])
            entry[1].append(v._row)
            entry[2].append(position)
        else:
            loose.append(v.value() if type(v) is LazyTensor else v)
            loose_positions.append(position)
    pieces = [_rows(source, rows) for source, rows, _ in by_source.values()]
    positions = [p for _, _, ps in by_source.values() for p in ps]
    if loose:
        pieces.append(Stack.apply(0, *loose) if any(t.requires_grad for t in loose)
                      else Tensor(np.stack([t.data for t in loose])))
        positions += loose_positions
    if len(pieces) == 1 and not loose:
        return pieces[0]
    joined = pieces[0] if len(pieces) == 1 else Cat.apply(0, *pieces)
    if positions == list(range(len(values))):
        return joined
    return GetItem.apply(joined, np.argsort(positions, kind="stable"))


def _move_axis_0(x: Tensor, axis: int) -> Tensor:
    """``x`` with its axis 0 moved to ``axis`` (what stack(axis) is, given the pieces stacked on axis 0)."""
    if axis == 0:
        return x
    dims = list(range(1, x.ndim))
    dims.insert(axis, 0)
    return Permute.apply(x, tuple(dims))


def _rows(source: Tensor, rows: list[int]) -> Tensor:
    """``source[rows]``: the source itself, a slice, or one indexing node."""
    n, first = len(rows), rows[0]
    if rows == list(range(first, first + n)):
        return source if n == source.shape[0] else GetItem.apply(source, slice(first, first + n))
    return GetItem.apply(source, np.array(rows))
