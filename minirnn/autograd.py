"""The tape: how minirnn records operations and runs them backwards.

Every differentiable operation is a :class:`Function` subclass with two static methods::

    forward(ctx, *arrays, **options) -> ndarray | tuple[ndarray, ...]
    backward(ctx, *output_grads)     -> one gradient (ndarray or None) per positional input

``Function.apply`` unwraps the :class:`~minirnn.Tensor` inputs to their NumPy arrays, runs
``forward``, wraps the results in new Tensors and -- when some input needs a gradient and grad
mode is on -- records a :class:`Node` on each output (the forward reads that decision as
``ctx.recording``: nothing need be saved when it is False).  The recorded nodes form a DAG that
points from outputs back to inputs; that DAG *is* the tape.

:func:`run_backward` walks that DAG in reverse topological order (found with an explicit stack,
so an RNN unrolled over many thousands of steps never hits Python's recursion limit), calls each
node's ``backward`` once all gradients flowing into it have been summed, and accumulates the
results into the ``.grad`` of leaf tensors.  Unless ``retain_graph=True`` it then frees what the
forward passes saved and lets go of each node's input arrays (see :class:`Released`), so a long
training loop does not grow memory, and a ``loss`` kept after backward holds only the graph's
skeleton, not its activations.
"""
from __future__ import annotations

import contextlib
import itertools
import operator
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .tensor import Tensor

Hook = Callable[[np.ndarray], "np.ndarray | None"]

class _GradMode(threading.local):
    """Grad mode is per thread (as in PyTorch): one thread's no_grad() does not stop another's tape."""

    enabled = True  # every thread starts recording


_grad_mode_state = _GradMode()


class _AutobatchState(threading.local):
    """Inside ``minirnn.autobatch()`` (per thread): the recorder that takes every op lazily."""

    recorder: Any = None


_autobatch_state = _AutobatchState()


def is_grad_enabled() -> bool:
    """True when new operations are recorded on the tape (the default)."""
    return _grad_mode_state.enabled


@contextlib.contextmanager
def _grad_mode(enabled: bool) -> Iterator[None]:
    previous = is_grad_enabled()
    _grad_mode_state.enabled = enabled
    try:
        yield
    finally:
        _grad_mode_state.enabled = previous


def no_grad() -> contextlib.AbstractContextManager[None]:
    """Context manager: operations inside it are not recorded (inference, optimizer updates)."""
    return _grad_mode(False)


def enable_grad() -> contextlib.AbstractContextManager[None]:
    """Context manager: re-enable recording inside a ``no_grad`` block."""
    return _grad_mode(True)


def saved_arrays(values: Iterable[Any]) -> Iterator[np.ndarray]:
    """The arrays among values a node saved for backward, a fused layer's saved state
    (``reference.SavedLayer``, ``_C.SavedLayer``) giving those it holds (its ``arrays``)."""
    for value in values:
        if isinstance(value, np.ndarray):
            yield value
        elif hasattr(value, "arrays"):
            yield from value.arrays


class Released:
    """Stands in for an input of a node whose backward has run without ``retain_graph``.

    The node will never run again, so it lets go of the input's values -- otherwise a kept
    ``loss`` would keep every activation of its graph alive. What stays is what walking and
    printing the graph need: the node that produced the input (None for a constant or a plain
    array argument), which of its outputs, the shape and dtype, and ``source``: a weak
    reference to the Tensor it replaced (only for a constant; None for a node's output and for
    a plain array), so inspection can still name a constant the caller keeps. Leaves that
    require grad (the parameters) are never replaced.
    """

    __slots__ = ("_node", "_output_index", "_meta", "source")

    def __init__(self, node: Node | None, output_index: int, meta: tuple[tuple[int, ...], np.dtype] | None,
                 source: weakref.ref[Tensor] | None):
        self._node, self._output_index, self._meta, self.source = node, output_index, meta, source

    @property
    def shape(self) -> tuple[int, ...]:
        return (self._node.output_meta[self._output_index] if self._meta is None else self._meta)[0]  # type: ignore[union-attr]

    @property
    def dtype(self) -> np.dtype:
        return (self._node.output_meta[self._output_index] if self._meta is None else self._meta)[1]  # type: ignore[union-attr]

    @property
    def grad_fn(self) -> Node | None:
        return self._node

    @property
    def requires_grad(self) -> bool:
        return self._node is not None  # leaves that require grad are never released


def _release(inputs: tuple[Any, ...]) -> tuple[Any, ...]:
    """A node's ``inputs`` without their arrays, except leaves that require grad (the parameters).

    (A loop rather than a call per input: this runs once per node of every backward.)
    """
    Tensor = tensor.Tensor
    released = list(inputs)
    for i, value in enumerate(released):
        if isinstance(value, Tensor):
            if value._node is not None:  # its shape and dtype are in the producing node's output_meta
                released[i] = Released(value._node, value._output_index, None, None)
            elif not value.requires_grad:
                released[i] = Released(None, 0, (value.data.shape, value.data.dtype), weakref.ref(value))
        elif isinstance(value, np.ndarray):
            released[i] = Released(None, 0, (value.shape, value.dtype), None)
        elif isinstance(value, tuple):  # e.g. an index with integer arrays in it
            released[i] = _release(value)
    return tuple(released)


# Every node gets the next number when it is made. A node's inputs exist before it does, so
# their nodes have smaller numbers: decreasing numbers are a valid order for backward.
_node_numbers = itertools.count()


class Node:
    """One recorded operation, and the context its forward shares with its backward.

    As in PyTorch, the ``ctx`` a Function's ``forward`` and ``backward`` receive IS its node:
    arrays go through :meth:`save_for_backward` (so they can be freed after backward and counted
    by the profiler), small Python values can be plain attributes. ``Function.apply`` makes one
    per call and, when it records, fills in which inputs it read, its outputs' shapes and dtypes,
    and ``number`` (the order of creation, see :func:`topological_order`); ``output_hooks`` is
    None until a hook is registered on one of the outputs. ``recording`` tells the forward whether
    this call goes on the tape (grad mode on and some input requires grad): only then will its
    backward run, so only then need it save anything.
    """

    __slots__ = ("function", "needs_input_grad", "recording", "inputs", "output_meta", "output_hooks", "number",
                 "_saved", "__dict__", "__weakref__")

    def __init__(self, function: type[Function], needs_input_grad: tuple[bool, ...], recording: bool):
        self.function = function
        self.needs_input_grad = needs_input_grad
        self.recording = recording
        self._saved: tuple[Any, ...] | None = ()  # None once freed
        self.output_hooks: list[list[Hook]] | None = None

    if TYPE_CHECKING:  # a Function's forward keeps what its backward needs as attributes of its own
        def __getattr__(self, name: str) -> Any: ...
        def __setattr__(self, name: str, value: Any) -> None: ...

    def record(self, inputs: tuple[Any, ...], output_meta: tuple[tuple[tuple[int, ...], np.dtype], ...]) -> None:
        """Put this node on the tape: its ``inputs`` as passed to apply (Tensors or plain values),
        the ``(shape, dtype)`` of each output, and the next creation number."""
        self.inputs = inputs
        self.output_meta = output_meta
        self.number = next(_node_numbers)

    @property
    def freed(self) -> bool:
        """Whether a backward has freed the saved arrays (this node cannot run again)."""
        return self._saved is None

    # ------------------------------------------------------------------ the context
    def save_for_backward(self, *values: Any) -> None:
        self._saved = values

    @property
    def saved_tensors(self) -> tuple[Any, ...]:
        if self.freed:
            raise RuntimeError(
                "Trying to backward through the graph a second time: the arrays saved by the "
                "forward pass were freed by the first backward(). Pass retain_graph=True to the "
                "first backward() if you need to call it twice.")
        return self._saved  # type: ignore[return-value]

    def saved_nbytes(self) -> int:
        """Bytes held by the arrays saved for backward (:func:`saved_arrays`), 0 once freed."""
        return sum(a.nbytes for a in saved_arrays(self._saved or ()))

    def free(self) -> None:
        self._saved = None

    # ------------------------------------------------------------------ the graph
    @property
    def name(self) -> str:
        return self.function.__name__

    def add_output_hook(self, output_index: int, hook: Hook) -> None:
        if self.output_hooks is None:
            self.output_hooks = [[] for _ in self.output_meta]
        self.output_hooks[output_index].append(hook)

    def __repr__(self) -> str:
        return f"<Node {self.name} outputs={[m[0] for m in self.output_meta]}>"


#: What forward and backward call their first argument: the node (see :class:`Node`).
Context = Node


class Function:
    """Base class of every differentiable operation (see the module docstring)."""

    #: False for fused kernels whose backward is itself not recorded (PyTorch's
    #: ``once_differentiable``); create_graph through them raises.
    differentiable_backward = True
    #: True: ``backward`` gets a zero array for an output that received no gradient (the unused
    #: half of a split). False: it gets None there and skips that work (the fused kernels).
    materialize_grads = True

    # (ctx, *inputs, **options) and (ctx, *output_grads): spelled (*args, **kwargs) so that the type
    # checker lets each subclass name its own arguments.
    @staticmethod
    def forward(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(*args: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        # This runs for every op, so it avoids what costs per call: list comprehensions rather
        # than generators, one output without a loop, grad mode looked up only when it matters.
        recorder = _autobatch_state.recorder
        if recorder is not None:  # inside autobatch(): recorded now, run later in batches
            return recorder.record(cls, args, kwargs)
        Tensor = tensor.Tensor
        needs = tuple([isinstance(a, Tensor) and a.requires_grad for a in args])
        record = True in needs and _grad_mode_state.enabled
        ctx = Node(cls, needs, record)
        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        hook = _profiler_hook
        start = time.perf_counter() if hook is not None else 0.0
        out = cls.forward(ctx, *raw, **kwargs)
        if type(out) is not tuple:  # one output
            if type(out) is not np.ndarray:
                out = np.asarray(out)
            node = None
            if record:
                node = ctx
                node.record(args, ((out.shape, out.dtype),))
            if hook is not None:
                hook.on_forward(cls, node, (out,), time.perf_counter() - start)
            return Tensor._from_op(out, node, 0)
        outputs = tuple([o if type(o) is np.ndarray else np.asarray(o) for o in out])
        node = None
        if record:
            node = ctx
            node.record(args, tuple([(o.shape, o.dtype) for o in outputs]))
        if hook is not None:
            hook.on_forward(cls, node, outputs, time.perf_counter() - start)
        return tuple([Tensor._from_op(o, node, i) for i, o in enumerate(outputs)])


# Set by minirnn.profile(): an object with on_forward(cls, node, outputs, seconds) (node is None
# when nothing was recorded), a timed_backward(node) context manager and on_free(node) (called
# when backward frees the node's saved arrays). None when no profiler is active.
_profiler_hook: Any = None


def topological_order(root: Node) -> list[Node]:
    """Nodes reachable from ``root`` with every node before the nodes that produced its inputs.

    This is the order backward visits them: the nodes found by a walk over inputs (an explicit
    stack, so a graph unrolled over 100 000 steps never meets Python's recursion limit), newest
    first. A node is always made after the nodes of its inputs, so its number is larger.
    """
    found = {root}
    stack = [root]
    while stack:
        for x in stack.pop().inputs:
            parent = getattr(x, "_node", None)  # Tensors and Released stand-ins have one
            if parent is not None and parent not in found:
                found.add(parent)
                stack.append(parent)
    return sorted(found, key=_number, reverse=True)


_number = operator.attrgetter("number")


def apply_hooks(hooks: list[Hook], grad: np.ndarray) -> np.ndarray:
    """``grad`` passed through ``hooks`` in order; a hook that returns a value replaces it, which
    must then have the gradient's shape (ValueError otherwise: a wrongly shaped gradient would be
    broadcast by the optimizer, or reshaped, without a word)."""
    for hook in hooks:
        replaced = hook(grad)
        if replaced is not None:
            replaced = np.asarray(replaced, dtype=grad.dtype)
            if replaced.shape != grad.shape:
                raise ValueError(f"register_hook(): the hook {getattr(hook, '__name__', hook)!r} returned a "
                                 f"gradient of shape {replaced.shape}, expected {grad.shape} (the tensor's shape)")
            grad = replaced
    return grad


class LazyGrad:
    """A gradient an op returns in a form that is cheaper to sum than its array.

    A weight used at every step of a loop, or at every node of a tree, gets one gradient per use;
    summing them as arrays costs a full pass over the weight's gradient per use. The engine keeps
    lazy contributions aside (:class:`_Sum`) and has their class add them all into one buffer
    at once (:meth:`add_all`). Functions and hooks only ever see arrays.
    """

    __slots__ = ("shape", "dtype")
    shape: tuple[int, ...]
    dtype: np.dtype

    @property
    def nbytes(self) -> int:  # pragma: no cover - abstract
        """Bytes this contribution holds on to while it waits to be added."""
        raise NotImplementedError

    @staticmethod
    def add_all(grads: list[Any], out: np.ndarray) -> None:  # pragma: no cover - abstract
        """``out += sum(grads)`` (all of this class)."""
        raise NotImplementedError

    def dense(self) -> np.ndarray:
        out = np.zeros(self.shape, self.dtype)
        self.add_all([self], out)
        return out


class ScatteredGrad(LazyGrad):
    """A gradient that is zero outside ``[index]``: what ``x[index]`` sends back to ``x``.

    A loop reading ``x[t]`` for t = 0..T-1 then adds T slices into one buffer instead of T
    full-size arrays (T^2 work). ``index`` is a basic index (ints, slices, None, Ellipsis),
    which selects every element at most once.
    """

    __slots__ = ("index", "values")

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, index: Any, values: np.ndarray):
        self.shape, self.dtype, self.index, self.values = shape, dtype, index, values

    @property
    def nbytes(self) -> int:
        return self.values.nbytes

    @staticmethod
    def add_all(grads: list[Any], out: np.ndarray) -> None:
        for g in grads:
            out[g.index] += g.values


class _Sum:
    """A sum of gradient contributions that this backward owns, so it adds into it in place.

    An array contribution is copied first, never written into (an op may return a view of an
    array it still uses: Add hands the same array to both inputs); lazy ones wait in ``pending``
    until :meth:`total` (or until they hold ``MAX_PENDING_BYTES``) and are added by their class,
    e.g. all of a weight's products as one GEMM.
    """

    __slots__ = ("array", "pending", "pending_bytes")
    MAX_PENDING_BYTES = 64 << 20

    def __init__(self, first: np.ndarray | LazyGrad):
        self.array: np.ndarray | None = None
        self.pending: list[LazyGrad] = []
        self.pending_bytes = 0
        self.add(first)

    def add(self, g: np.ndarray | LazyGrad) -> None:
        if isinstance(g, LazyGrad):
            self.pending.append(g)
            self.pending_bytes += g.nbytes
            if self.pending_bytes > self.MAX_PENDING_BYTES:
                self.total()
        elif self.array is None:
            self.array = g.copy()
        else:
            self.array += g

    def total(self) -> np.ndarray:
        if self.pending:
            first = self.pending[0]
            if self.array is None:
                self.array = np.zeros(first.shape, first.dtype)
            for kind in dict.fromkeys(type(g) for g in self.pending):  # in order of arrival: reproducible sums
                kind.add_all([g for g in self.pending if type(g) is kind], self.array)
            self.pending, self.pending_bytes = [], 0
        return self.array  # type: ignore[return-value]  # (a _Sum holds at least one contribution)


def _plus(old: Any, g: np.ndarray | LazyGrad) -> _Sum:
    """``old + g`` where ``old`` is a first contribution or a :class:`_Sum`: a second
    contribution starts a _Sum, later ones are added into it."""
    if type(old) is not _Sum:
        old = _Sum(old)
    old.add(g)
    return old


def _value(g: Any) -> np.ndarray:
    """The array a slot holds: a first contribution as it came (a lazy one made dense), or a sum."""
    return g.total() if type(g) is _Sum else g.dense() if isinstance(g, LazyGrad) else g


def _grads_in(slots: list[Any], node: Node) -> list[np.ndarray | None]:
    """The summed output gradients of ``node`` (several outputs, or hooks) as arrays, hooks
    applied; for an output that got none, None or (``materialize_grads``) zeros of its shape."""
    grads = [None if g is None else _value(g) for g in slots]
    if len(grads) > 1 and node.function.materialize_grads:  # a single output always has its gradient
        grads = [np.zeros(shape, dtype) if g is None else g for g, (shape, dtype) in zip(grads, node.output_meta)]
    if node.output_hooks is not None:
        for i, hooks in enumerate(node.output_hooks):
            grad = grads[i]
            if hooks and grad is not None:
                grads[i] = apply_hooks(hooks, grad)
    return grads


def run_backward(root: Tensor, grad: np.ndarray, retain_graph: bool = False) -> None:
    """Back-propagate ``grad`` (d loss / d root) through the graph that produced ``root``."""
    if root._node is None:  # a leaf: its gradient is the seed itself
        root._accumulate(grad)
        return
    # pending[node]: one slot per output of node, summing the gradients its consumers send.
    pending: dict[Node, list[Any]] = {root._node: [None] * len(root._node.output_meta)}
    pending[root._node][root._output_index] = grad
    leaf_sums: dict[Tensor, Any] = {}  # leaf -> its gradient (see _plus), summed before its hooks run
    profiler = _profiler_hook
    order = topological_order(root._node)
    finishing = _last_consumers(order) if _post_accumulate_hooks else {}
    for node in order:
        # A node gets its slots when its first gradient arrives, so a node without them got none
        # (it does not lead to root, e.g. the unused output of a split): nothing to do.
        slots = pending.pop(node, None)
        if slots is None:
            continue
        if node.freed:
            node.saved_tensors  # raises the "backward a second time" error
        grads: list[np.ndarray | None]
        if len(slots) == 1 and node.output_hooks is None:  # the common case: one output, no hooks
            grads = [_value(slots[0])]
        else:
            grads = _grads_in(slots, node)
        if profiler is not None:
            with profiler.timed_backward(node):
                input_grads = node.function.backward(node, *grads)
        else:
            input_grads = node.function.backward(node, *grads)
        if type(input_grads) is not tuple:
            input_grads = (input_grads,)
        if len(input_grads) != len(node.inputs):
            raise RuntimeError(f"{node.name}.backward returned {len(input_grads)} gradients, "
                               f"expected {len(node.inputs)} (one per input)")
        for x, g, need in zip(node.inputs, input_grads, node.needs_input_grad):
            if g is None or not need:
                continue
            data = x.data
            if g.shape != data.shape or g.dtype != data.dtype:
                g = _conform(node, g, data)
            parent = x._node
            if parent is None:
                old = leaf_sums.get(x)
                leaf_sums[x] = g if old is None else _plus(old, g)
            else:
                parent_slots = pending.get(parent)
                if parent_slots is None:
                    parent_slots = pending[parent] = [None] * len(parent.output_meta)
                old = parent_slots[x._output_index]
                parent_slots[x._output_index] = g if old is None else _plus(old, g)
        if not retain_graph:
            node.free()
            node.inputs = _release(node.inputs)
            if profiler is not None:
                profiler.on_free(node)
        for leaf in finishing.pop(node, ()):  # their last gradient has arrived: hooks may use it now
            if leaf in leaf_sums:
                _finish_leaf(leaf, leaf_sums.pop(leaf))
    for leaf, g in leaf_sums.items():
        _finish_leaf(leaf, g)


#: Leaf -> the hooks :meth:`Tensor.register_post_accumulate_grad_hook` registered on it.
_post_accumulate_hooks: weakref.WeakKeyDictionary[Tensor, list[Callable[[Tensor], None]]] = \
    weakref.WeakKeyDictionary()


def _last_consumers(order: list[Node]) -> dict[Node, list[Tensor]]:
    """{node: the leaves with post-accumulate hooks that ``node`` is the last in ``order`` to read}:
    once that node's backward has run, their gradients are complete, though backward goes on."""
    last: dict[Tensor, Node] = {}
    for node in order:
        for x in node.inputs:
            if isinstance(x, tensor.Tensor) and x in _post_accumulate_hooks:
                last[x] = node
    finishing: dict[Node, list[Tensor]] = {}
    for leaf, node in last.items():
        finishing.setdefault(node, []).append(leaf)
    return finishing


def _finish_leaf(leaf: Tensor, g: Any) -> None:
    """Accumulate a leaf's summed gradient ``g`` into ``.grad``, then run its post-accumulate hooks."""
    # A _Sum's array and a lazy gradient made dense are this backward's own: no copy needed.
    leaf._accumulate(_value(g), owned=type(g) is _Sum or isinstance(g, LazyGrad))
    if _post_accumulate_hooks:  # (looking a leaf up costs a weak reference: not when there are none)
        for hook in _post_accumulate_hooks.get(leaf, ()):
            hook(leaf)


def _conform(node: Node, g: np.ndarray, data: np.ndarray) -> np.ndarray:
    """A returned gradient ``g`` in the dtype of its input ``data``; a shape mismatch is a bug in
    the Function's backward and raises."""
    g = _value(g)
    if g.shape != data.shape:
        raise RuntimeError(f"{node.name}.backward returned a gradient of shape {g.shape} "
                           f"for an input of shape {data.shape}")
    return g.astype(data.dtype)


# tensor.py imports this module, so it is imported last; functions above look up
# ``tensor.Tensor`` when they run (an import inside each function would cost microseconds per op).
from . import tensor  # noqa: E402
