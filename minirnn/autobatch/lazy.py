"""``LazyTensor``: a value recorded inside ``autobatch()``, computed later as one row of a batch.

A lazy tensor knows its shape and dtype from the moment it is recorded (the batching rules infer
them), so model code can branch on ``x.shape`` without forcing anything. Its value arrives when
its batch runs: row ``_row`` of the batch's output ``_source`` (``_row`` None: the output is
this tensor's whole value, a batch of one). Anything that needs the numbers -- ``.data``,
``.numpy()``, ``.item()``, ``backward()``, an op that has no batching rule -- first runs all
pending work (:meth:`Recorder.flush`), then reads the row.
"""
from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any, Iterator

import numpy as np

from ..autograd import Hook, Node, _autobatch_state, _grad_mode, apply_hooks
from ..ops.indexing import GetItem
from ..tensor import Tensor

if TYPE_CHECKING:  # pragma: no cover
    from .recorder import PendingOp


@contextlib.contextmanager
def paused() -> Iterator[None]:
    """Ops inside run eagerly, as outside ``autobatch()`` (the batches themselves run this way)."""
    state = _autobatch_state
    recorder, state.recorder = state.recorder, None
    try:
        yield
    finally:
        state.recorder = recorder


class LazyTensor(Tensor):
    """A tensor whose value is computed in a batch (see the module docstring)."""

    __slots__ = ("_op", "_meta", "_source", "_row", "_eager")
    _op: PendingOp | None
    _meta: tuple[tuple[int, ...], np.dtype]
    _source: Tensor  # (once computed; None before)
    _row: int | None
    _eager: Tensor | None

    def __init__(self, *args: Any, **kwargs: Any):
        raise TypeError("LazyTensor is made by ops recorded inside minirnn.autobatch(), not directly")

    @classmethod
    def pending(cls, op: PendingOp, meta: tuple[tuple[int, ...], np.dtype], requires_grad: bool) -> LazyTensor:
        """The output of ``op`` (its recorder and depth are the op's), of ``meta`` (shape, dtype)."""
        t = cls.__new__(cls)
        t._op, t._meta, t._row, t._eager = op, meta, None, None
        t._source = None  # type: ignore[assignment]  # (set when its batch runs)
        t.grad, t._hooks, t.requires_grad = None, None, requires_grad
        return t

    def value(self) -> Tensor:
        """The eager tensor with this value: the pending work is run first if needed, and a row
        of a batch becomes ``source[row]`` (one tape node, so gradients reach the batch)."""
        if self._eager is None:
            if self._op is not None:
                self._op.recorder.flush()
            if self._row is None:
                self._eager = self._source
            else:
                # (made with the grad mode it was recorded under: a read under no_grad must not
                # leave a value cut from the graph for a later backward)
                with paused(), _grad_mode(self.requires_grad):
                    self._eager = GetItem.apply(self._source, self._row)
        return self._eager

    # What eager code reads goes through value(): the engine reads _node and _output_index of
    # every input, users read data.
    @property
    def data(self) -> np.ndarray:  # type: ignore[override]  # (read-only here: the value comes from its batch)
        return self.value().data

    @property
    def _node(self) -> Node | None:  # type: ignore[override]
        return self.value()._node

    @property
    def _output_index(self) -> int:  # type: ignore[override]
        return self.value()._output_index

    @property
    def shape(self) -> tuple[int, ...]:
        return self._meta[0]

    @property
    def dtype(self) -> np.dtype:
        return self._meta[1]

    @property
    def ndim(self) -> int:
        return len(self._meta[0])

    @property
    def size(self) -> int:
        return int(np.prod(self._meta[0]))

    def __len__(self) -> int:
        if not self._meta[0]:
            raise TypeError("len() of a 0-d tensor")
        return self._meta[0][0]

    def register_hook(self, hook: Hook) -> None:
        """As :meth:`Tensor.register_hook`. The hook goes on the batch this value is a row of,
        and sees (and may replace) just that row, so it fires whichever way consumers read it."""
        if not self.requires_grad:
            raise RuntimeError("register_hook(): this tensor does not require grad")
        self.value()
        if self._row is None:
            self._source.register_hook(hook)
            return
        row = self._row

        def on_row(grad: np.ndarray) -> np.ndarray | None:
            own = grad[row]
            replaced = apply_hooks([hook], own)
            if replaced is own:  # the hook only looked
                return None
            grad = grad.copy()
            grad[row] = replaced
            return grad

        self._source.register_hook(on_row)
