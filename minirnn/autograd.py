"""The tape: how minirnn records operations and runs them backwards.

Every differentiable operation is a :class:`Function` subclass with two static methods::

    forward(ctx, *arrays, **options) -> ndarray | tuple[ndarray, ...]
    backward(ctx, *output_grads)     -> one gradient (ndarray or None) per positional input

``Function.apply`` unwraps the :class:`~minirnn.Tensor` inputs to their NumPy arrays, runs
``forward``, wraps the results in new Tensors and -- when some input needs a gradient and grad
mode is on -- records a :class:`Node` on each output.  The recorded nodes form a DAG that points
from outputs back to inputs; that DAG *is* the tape.

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
import threading
import time
import weakref
from typing import TYPE_CHECKING, Any, Callable, Iterator

import numpy as np

if TYPE_CHECKING:  # pragma: no cover
    from .tensor import Tensor

Hook = Callable[[np.ndarray], "np.ndarray | None"]

_state = threading.local()


def is_grad_enabled() -> bool:
    """True when new operations are recorded on the tape (the default)."""
    return getattr(_state, "grad_enabled", True)


@contextlib.contextmanager
def _grad_mode(enabled: bool) -> Iterator[None]:
    previous = is_grad_enabled()
    _state.grad_enabled = enabled
    try:
        yield
    finally:
        _state.grad_enabled = previous


def no_grad() -> contextlib.AbstractContextManager[None]:
    """Context manager: operations inside it are not recorded (inference, optimizer updates)."""
    return _grad_mode(False)


def enable_grad() -> contextlib.AbstractContextManager[None]:
    """Context manager: re-enable recording inside a ``no_grad`` block."""
    return _grad_mode(True)


class Context:
    """Scratch space one ``forward`` call shares with its ``backward``.

    Arrays go through :meth:`save_for_backward` (so they can be freed after backward and counted
    by the profiler); small Python values can be plain attributes.
    """

    def __init__(self, needs_input_grad: tuple[bool, ...]):
        self.needs_input_grad = needs_input_grad
        self._saved: tuple[Any, ...] | None = ()
        self.freed = False

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
        """Bytes held by the NumPy arrays saved for backward (0 once freed)."""
        if self.freed or not self._saved:
            return 0
        return sum(v.nbytes for v in self._saved if isinstance(v, np.ndarray))

    def free(self) -> None:
        self._saved = None
        self.freed = True


class Released:
    """Stands in for an input of a node whose backward has run without ``retain_graph``.

    The node will never run again, so it lets go of the input's values -- otherwise a kept
    ``loss`` would keep every activation of its graph alive. What stays is what walking and
    printing the graph need: the node that produced the input (None for a constant or a plain
    array argument), which of its outputs, the shape and dtype, and ``source``: a weak
    reference to the Tensor it replaced (None for a plain array), so inspection can still name
    a constant the caller keeps. Leaves that require grad (the parameters) are never replaced.
    """

    __slots__ = ("_node", "_output_index", "shape", "dtype", "source")

    def __init__(self, node: Node | None, output_index: int, shape: tuple[int, ...], dtype: np.dtype,
                 source: weakref.ref[Tensor] | None):
        self._node, self._output_index, self.shape, self.dtype, self.source = (
            node, output_index, shape, dtype, source)

    @property
    def grad_fn(self) -> Node | None:
        return self._node

    @property
    def requires_grad(self) -> bool:
        return self._node is not None  # leaves that require grad are never released


def _release(value: Any) -> Any:
    """``value`` (a node input) without its array, unless it is a leaf that requires grad."""
    if isinstance(value, tensor.Tensor):
        if value._node is None and value.requires_grad:
            return value
        return Released(value._node, value._output_index, value.shape, value.dtype, weakref.ref(value))
    if isinstance(value, np.ndarray):
        return Released(None, 0, value.shape, value.dtype, None)
    if isinstance(value, tuple):  # e.g. an index with integer arrays in it
        return tuple([_release(v) for v in value])
    return value


class Node:
    """One recorded operation: which Function ran, on which inputs, producing how many outputs."""

    __slots__ = ("function", "ctx", "inputs", "num_outputs", "output_hooks", "output_meta")

    def __init__(self, function: type[Function], ctx: Context, inputs: tuple[Any, ...],
                 outputs: tuple[np.ndarray, ...]):
        self.function = function
        self.ctx = ctx
        self.inputs = inputs  # positional inputs as passed to apply (Tensors or plain values)
        self.num_outputs = len(outputs)
        self.output_hooks: list[list[Hook]] = [[] for _ in outputs]
        self.output_meta = tuple([(o.shape, o.dtype) for o in outputs])

    @property
    def name(self) -> str:
        return self.function.__name__

    def parents(self) -> list[Node]:
        """Nodes that produced this node's inputs (the next stops on the way backward)."""
        return [x._node for x in self.inputs if isinstance(x, (tensor.Tensor, Released)) and x._node is not None]

    def __repr__(self) -> str:
        return f"<Node {self.name} outputs={[m[0] for m in self.output_meta]}>"


class Function:
    """Base class of every differentiable operation (see the module docstring)."""

    #: False for fused kernels whose backward is itself not recorded (PyTorch's
    #: ``once_differentiable``); create_graph through them raises.
    differentiable_backward = True

    @staticmethod
    def forward(ctx: Context, *args: Any, **kwargs: Any) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @staticmethod
    def backward(ctx: Context, *grads: np.ndarray) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    @classmethod
    def apply(cls, *args: Any, **kwargs: Any) -> Any:
        Tensor = tensor.Tensor
        # (List comprehensions, not generator expressions: this runs for every op, and a
        # generator costs more to set up than the two or three items it yields.)
        needs = tuple([isinstance(a, Tensor) and a.requires_grad for a in args])
        record = any(needs) and is_grad_enabled()
        ctx = Context(needs)
        raw = [a.data if isinstance(a, Tensor) else a for a in args]
        hook = _profiler_hook
        start = time.perf_counter() if hook is not None else 0.0
        out = cls.forward(ctx, *raw, **kwargs)
        outputs = out if isinstance(out, tuple) else (out,)
        outputs = tuple([o if type(o) is np.ndarray else np.asarray(o) for o in outputs])
        node = Node(cls, ctx, args, outputs) if record else None
        tensors = tuple([Tensor._from_op(o, node, i) for i, o in enumerate(outputs)])
        if hook is not None:
            hook.on_forward(cls, node, outputs, time.perf_counter() - start)
        return tensors if isinstance(out, tuple) else tensors[0]


# Set by minirnn.profile(): an object with on_forward(cls, node, outputs, seconds) (node is None
# when nothing was recorded), a timed_backward(node) context manager and on_free(node) (called
# when backward frees the node's saved arrays). None when no profiler is active.
_profiler_hook: Any = None


def topological_order(root: Node) -> list[Node]:
    """Nodes reachable from ``root`` with every node before the nodes that produced its inputs.

    This is the order backward visits them.  Iterative depth-first search: a post-order on an
    explicit stack, reversed.
    """
    post_order: list[Node] = []
    visited: set[int] = {id(root)}
    stack: list[tuple[Node, Iterator[Node]]] = [(root, iter(root.parents()))]
    while stack:
        node, parents = stack[-1]
        for parent in parents:
            if id(parent) not in visited:
                visited.add(id(parent))
                stack.append((parent, iter(parent.parents())))
                break
        else:
            stack.pop()
            post_order.append(node)
    post_order.reverse()
    return post_order


def _apply_hooks(hooks: list[Hook], grad: np.ndarray) -> np.ndarray:
    for hook in hooks:
        replaced = hook(grad)
        if replaced is not None:
            grad = np.asarray(replaced, dtype=grad.dtype)
    return grad


def run_backward(root: Tensor, grad: np.ndarray, retain_graph: bool = False) -> None:
    """Back-propagate ``grad`` (d loss / d root) through the graph that produced ``root``."""
    Tensor = tensor.Tensor
    if root._node is None:  # a leaf: its gradient is the seed itself
        root._accumulate(grad)
        return
    leaf_grads: dict[int, tuple[Tensor, np.ndarray]] = {}
    # Leaves whose sum is an array this backward allocated, so later paths add into it in place
    # (a weight of an RNN unrolled over T steps gets T gradients: one buffer, not T).
    own_sums: set[int] = set()
    pending: dict[int, list[np.ndarray | None]] = {
        id(root._node): [None] * root._node.num_outputs}
    pending[id(root._node)][root._output_index] = grad
    for node in topological_order(root._node):
        # A node's list is made when its first gradient arrives, so a node without one got none
        # (it does not lead to root, e.g. the unused output of a split): nothing to do.
        output_grads = pending.pop(id(node), None)
        if output_grads is None:
            continue
        if node.ctx.freed:
            node.ctx.saved_tensors  # raises the "backward a second time" error
        filled = [np.zeros(shape, dtype=dtype) if g is None else g  # an output that got no gradient
                  for g, (shape, dtype) in zip(output_grads, node.output_meta)]
        for i, hooks in enumerate(node.output_hooks):
            if hooks:
                filled[i] = _apply_hooks(hooks, filled[i])
        if _profiler_hook is not None:
            with _profiler_hook.timed_backward(node):
                input_grads = node.function.backward(node.ctx, *filled)
        else:
            input_grads = node.function.backward(node.ctx, *filled)
        if not isinstance(input_grads, tuple):
            input_grads = (input_grads,)
        if len(input_grads) != len(node.inputs):
            raise RuntimeError(f"{node.name}.backward returned {len(input_grads)} gradients, "
                               f"expected {len(node.inputs)} (one per input)")
        for x, g in zip(node.inputs, input_grads):
            if g is None or not isinstance(x, Tensor) or not x.requires_grad:
                continue
            if g.shape != x.data.shape:
                raise RuntimeError(f"{node.name}.backward returned a gradient of shape {g.shape} "
                                   f"for an input of shape {x.data.shape}")
            if g.dtype != x.data.dtype:
                g = g.astype(x.data.dtype)
            if x._node is None:  # sum every path into a leaf first; hooks then see the total
                key = id(x)
                if key not in leaf_grads:
                    leaf_grads[key] = (x, g)
                elif key in own_sums:  # a buffer this backward made: add in place
                    total = leaf_grads[key][1]
                    total += g
                else:  # g may be a view into an op's arrays: sum into a new buffer, ours from now on
                    leaf_grads[key] = (x, leaf_grads[key][1] + g)
                    own_sums.add(key)
            else:
                slots = pending.get(id(x._node))
                if slots is None:
                    slots = pending[id(x._node)] = [None] * x._node.num_outputs
                old = slots[x._output_index]
                slots[x._output_index] = g if old is None else old + g
        if not retain_graph:
            node.ctx.free()
            node.inputs = _release(node.inputs)
            if _profiler_hook is not None:
                _profiler_hook.on_free(node)
    for leaf, g in leaf_grads.values():
        leaf._accumulate(g)


# tensor.py imports this module, so it is imported last; functions above look up
# ``tensor.Tensor`` when they run (an import inside each function would cost microseconds per op).
from . import tensor  # noqa: E402
