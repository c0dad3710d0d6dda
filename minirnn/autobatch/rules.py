"""How each op is batched: the shape it gives one member, and how k members run as one op.

A rule has two methods (and ``weights``: the positions of the arguments that are weights, or
``ANY`` for matmul; ``meta_per_call``: True where ``meta`` reads more than the signature, so that
the recorder asks it at every call instead of once per signature):

* ``meta(args, kwargs) -> (((shape, dtype), ...), returns_tuple)``: the outputs of ONE member,
  worked out without computing anything (lazy tensors know their shapes). It raises the op's
  own error for bad shapes, and :class:`NotBatchable` for a call it cannot batch (that call then
  runs on its own, correctly).
* ``run(cls, args, batched, kwargs, k)``: the batch. ``batched[i]`` says whether ``args[i]`` is
  the members' inputs stacked along a new axis 0 (k rows) -- else it is shared by all members (a
  weight, an option) or, for an index, the list of the members' own. Returns outputs with a
  leading axis of k, row i being member i's. Each is built from the tape's own ops, so the
  batch's backward is theirs: a shared weight gets one gradient for all members
  (dW = dY^T X, one GEMM), each member's input its own rows.

Ops without a rule (dropout, the fused layers, ...) run on their own.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Function
from ..fused import FusedCellStep
from ..ops.arithmetic import Add, Div, Linear, MatMul, Mul, Neg, Pow, Sub
from ..ops.indexing import GetItem
from ..ops.join import Cat, Split, Stack
from ..ops.nn_ops import Embedding, LogSoftmax
from ..ops.pointwise import Cast, Clip, Exp, Log, Relu, Sigmoid, Softplus, Tanh, Where
from ..ops.reduce import Max, Sum
from ..ops.shape import Permute, Reshape
from .lazy import LazyTensor

Meta = tuple[tuple[tuple[int, ...], np.dtype], ...]


class NotBatchable(Exception):
    """This call of an op cannot join a batch (it runs on its own); the message says why."""


def _shape(a: Any) -> tuple[int, ...]:
    return a.shape if hasattr(a, "shape") else np.shape(a)


def _dtype(a: Any) -> np.dtype:
    return a.dtype if hasattr(a, "dtype") else np.asarray(a).dtype


def _pad(x: Any, ndim: int, k: int) -> Any:
    """A stacked input (k, *s) with 1s inserted after k up to ``ndim`` member axes, so that it
    broadcasts against the other inputs as the member did."""
    shape = x.shape[1:]
    if len(shape) == ndim:
        return x
    padded = (k,) + (1,) * (ndim - len(shape)) + tuple(shape)
    return x.reshape(padded) if isinstance(x, np.ndarray) else Reshape.apply(x, padded)


#: A rule's ``weights`` when any operand that requires grad and is not lazy is a weight (matmul).
ANY = "any"


def _own(shared: list[bool], *positions: int) -> None:
    """NotBatchable if an argument at ``positions`` is shared where each member needs its own."""
    for i in positions:
        if shared[i]:
            raise NotBatchable(f"argument {i} is shared (a Parameter) where each member needs its own")


class Rule:
    """What every rule shares: no weights, output metas that depend on the signature alone, and
    a batch that is the op itself applied to the gathered arguments (rules whose op needs its
    axes moved or its inputs reshaped say so in their own ``run``)."""

    weights: Any = ()
    meta_per_call = False

    @staticmethod
    def run(cls: type[Function], args: list[Any], batched: list[bool], kwargs: dict[str, Any], k: int) -> Any:
        return cls.apply(*args, **kwargs)


class Pointwise(Rule):
    """One input, same shape out (tanh, exp, ...; clip and cast carry options)."""

    @staticmethod
    def meta(args: tuple[Any, ...], kwargs: dict[str, Any], shared: list[bool]) -> tuple[Meta, bool]:
        x = args[0]
        if len(args) == 1 and type(x) is LazyTensor:  # (the common case, quickly)
            return (x._meta,), False
        return ((x.shape, args[1] if len(args) == 2 and isinstance(args[1], np.dtype) else x.dtype),), False


class Broadcasting(Rule):
    """Two or three inputs broadcast together (add, mul, where, ...); a shared one (a bias) is
    broadcast over the members as it is."""

    @staticmethod
    def meta(args: tuple[Any, ...], kwargs: dict[str, Any], shared: list[bool]) -> tuple[Meta, bool]:
        a, b = args[-2:]
        if len(args) == 2 and type(a) is LazyTensor and type(b) is LazyTensor and a._meta == b._meta:
            return (a._meta,), False  # (the common case, quickly)
        shape = np.broadcast_shapes(*[_shape(a) for a in args])  # ValueError: the op's wrapper explains
        values = [a for a in args if _dtype(a) != np.bool_] or list(args)
        return ((shape, np.result_type(*[_dtype(a) for a in values])),), False

    @staticmethod
    def run(cls: type[Function], args: list[Any], batched: list[bool], kwargs: dict[str, Any], k: int) -> Any:
        ndim = max(len(a.shape) - 1 if b else len(a.shape) for a, b in zip(args, batched))
        return cls.apply(*[_pad(a, ndim, k) if b else a for a, b in zip(args, batched)])


def _matmul_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """np.matmul's output shape; ValueError as MatMul raises it."""
    if not a or not b:
        raise ValueError(f"matmul: both operands need at least 1 dimension, got shapes {a} and {b}")
    k_axis = -2 if len(b) > 1 else 0
    if a[-1] != b[k_axis]:
        raise ValueError(f"matmul: shapes {a} and {b} do not align: expected a.shape[-1] == "
                         f"b.shape[{k_axis}], got {a[-1]} and {b[k_axis]}")
    a2, b2 = (1,) + a if len(a) == 1 else a, b + (1,) if len(b) == 1 else b
    out = np.broadcast_shapes(a2[:-2], b2[:-2]) + (a2[-2], b2[-1])
    if len(b) == 1:
        out = out[:-1]
    if len(a) == 1:
        out = out[:-2] + out[-1:]
    return out


class Product(Rule):
    """a @ b with the members' operand(s) stacked; a shared operand (a weight) must be a matrix."""

    weights: Any = ANY

    @staticmethod
    def meta(args: tuple[Any, ...], kwargs: dict[str, Any], shared: list[bool]) -> tuple[Meta, bool]:
        a, b = args
        shape = _matmul_shape(a.shape, b.shape)
        for x, is_shared in zip(args, shared):
            if is_shared and x.ndim != 2:
                raise NotBatchable("a shared operand of matmul that is not a matrix")
        return ((shape, np.result_type(a.dtype, b.dtype)),), False

    @staticmethod
    def run(cls: type[Function], args: list[Any], batched: list[bool], kwargs: dict[str, Any], k: int) -> Any:
        a, b = args
        batched_a, batched_b = batched
        if not batched_b:  # (k, ..., K) @ W: one GEMM
            return MatMul.apply(a, b)
        if not batched_a:  # W (M, K) @ each member's (K,) or (K, N)
            return MatMul.apply(b, Permute.apply(a, (1, 0))) if b.ndim == 2 else MatMul.apply(a, b)
        # General case: members' vectors made matrices, then one batched product, reshaped back.
        out_shape = _matmul_shape(a.shape[1:] if batched_a else a.shape, b.shape[1:] if batched_b else b.shape)
        if batched_a and a.ndim == 2:
            a = Reshape.apply(a, (k, 1, a.shape[1]))
        if batched_b and b.ndim == 2:
            b = Reshape.apply(b, (k, b.shape[1], 1))
        if batched_a and batched_b and a.ndim != b.ndim:
            ndim = max(a.ndim, b.ndim) - 1
            a, b = _pad(a, ndim, k), _pad(b, ndim, k)
        out = MatMul.apply(a, b)
        return out if out.shape == (k, *out_shape) else Reshape.apply(out, (k, *out_shape))


class LinearRule(Rule):
    """linear(x, W, b): members' x stacked, W and b shared: one GEMM for the batch."""

    weights = (1, 2)

    @staticmethod
    def meta(args: tuple[Any, ...], kwargs: dict[str, Any], shared: list[bool]) -> tuple[Meta, bool]:
        x, weight, _ = args
        return ((x.shape[:-1] + weight.shape[:1], x.dtype),), False


class Reduction(Rule):
    """sum/max over axes: the axes move one to the right."""

    @staticmethod
    def meta(args: tuple[Any, ...], kwargs: dict[str, Any], shared: list[bool]) -> tuple[Meta, bool]:
        x, axes, keepdims = args
        shape = tuple(1 if i in axes else n for i, n in enumerate(x.shape)) if keepdims else \
            tuple(n for i, n in enumerate(x.shape) if i not in axes)
        return ((shape, x.dtype),), False

    @staticmethod
    def run(cls: type[Function], args: list[Any], batched: list[bool], kwargs: dict[str, Any], k: int) -> Any:
        x, axes, keepdims = args
        return cls.apply(x, tuple(a + 1 for a in axes), keepdims)


class OneAxis(Rule):
    """An op with one axis option after its input (log_softmax): the axis moves one to the right."""

    @staticmethod
    def meta(args: tuple[Any, ...], kwargs: dict[str, Any], shared: list[bool]) -> tuple[Meta, bool]:
        return ((args[0].shape, args[0].dtype),), False

    @staticmethod
    def run(cls: type[Function], args: list[Any], batched: list[bool], kwargs: dict[str, Any], k: int) -> Any:
        return cls.apply(args[0], args[1] + 1)


def _resolved(shape_in: tuple[int, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    """``shape`` with its -1 worked out for an input of ``shape_in`` (the wrapper checked it fits)."""
    if -1 not in shape:
        return tuple(shape)
    known = int(np.prod([n for n in shape if n != -1]))
    return tuple(int(np.prod(shape_in)) // known if n == -1 else n for n in shape)


class ReshapeRule(Rule):
    @staticmethod
    def meta(args: tuple[Any, ...], kwargs: dict[str, Any], shared: list[bool]) -> tuple[Meta, bool]:
        x, shape = args
        return ((_resolved(x.shape, shape), x.dtype),), False

    @staticmethod
    def run(cls: type[Function], args: list[Any], batched: list[bool], kwargs: dict[str, Any], k: int) -> Any:
        x, shape = args
        return Reshape.apply(x, (k, *_resolved(x.shape[1:], shape)))


class PermuteRule(Rule):
    @staticmethod
    def meta(args: tuple[Any, ...], kwargs: dict[str, Any], shared: list[bool]) -> tuple[Meta, bool]:
        x, dims = args
        return ((tuple(x.shape[d] for d in dims), x.dtype),), False

    @staticmethod
    def run(cls: type[Function], args: list[Any], batched: list[bool], kwargs: dict[str, Any], k: int) -> Any:
        return Permute.apply(args[0], (0, *(d + 1 for d in args[1])))


def _index_parts(index: Any) -> tuple[Any, ...]:
    return index if isinstance(index, tuple) else (index,)


class Indexing(Rule):
    """x[index]: a basic index (ints, slices) the same for all members, or an index of integer
    arrays (and ints) that each member has its own of (e.g. a loss picking its targets)."""

    meta_per_call = True  # (an index array's values must be checked against the shape every time)

    @staticmethod
    def meta(args: tuple[Any, ...], kwargs: dict[str, Any], shared: list[bool]) -> tuple[Meta, bool]:
        x, index = args
        parts = _index_parts(index)
        arrays = [p for p in parts if isinstance(p, np.ndarray)]
        if arrays and not all(isinstance(p, (np.ndarray, int, np.integer)) and _dtype(p).kind in "iu" for p in parts):
            raise NotBatchable("an index mixing arrays with slices, or a mask")
        probe = np.broadcast_to(np.zeros((), x.dtype), x.shape)
        try:
            shape = probe[index].shape
        except IndexError as err:
            raise IndexError(f"getitem(): invalid index for a tensor of shape {x.shape}: {err}") from None
        return ((shape, x.dtype),), False

    @staticmethod
    def run(cls: type[Function], args: list[Any], batched: list[bool], kwargs: dict[str, Any], k: int) -> Any:
        x, index = args
        if not batched[1]:  # basic: the members' index with the batch axis kept whole
            return GetItem.apply(x, (slice(None), *_index_parts(index)))
        if isinstance(index, np.ndarray):  # one array per member, already stacked: (k, ...)
            parts = [index]
        else:  # one tuple per member
            columns = list(zip(*index))
            parts = [np.stack(c) if isinstance(c[0], np.ndarray) else np.full(k, c[0]) for c in columns]
        ndim = max(p.ndim for p in parts) - 1
        parts = [p.reshape((k,) + (1,) * (ndim - p.ndim + 1) + p.shape[1:]) for p in parts]
        if batched[0]:  # each member indexes its own x: row i of the batch
            parts.insert(0, np.arange(k).reshape((k,) + (1,) * ndim))
        return GetItem.apply(x, tuple(parts))


def _pieces(xs: list[Any], shared: list[bool]) -> None:
    _own(shared, *range(1, len(shared)))
    if len(set(x.dtype for x in xs)) > 1:
        raise NotBatchable("pieces of several dtypes")


class Joining(Rule):
    """cat/stack(axis, *xs): the axis moves one to the right; every piece is a member's own."""

    @staticmethod
    def meta(args: tuple[Any, ...], kwargs: dict[str, Any], shared: list[bool]) -> tuple[Meta, bool]:
        axis, *xs = args
        _pieces(xs, shared)
        first = xs[0].shape
        return ((first[:axis] + (sum(x.shape[axis] for x in xs),) + first[axis + 1:], xs[0].dtype),), False

    @staticmethod
    def run(cls: type[Function], args: list[Any], batched: list[bool], kwargs: dict[str, Any], k: int) -> Any:
        return cls.apply(args[0] + 1, *args[1:])


class StackRule(Joining):
    @staticmethod
    def meta(args: tuple[Any, ...], kwargs: dict[str, Any], shared: list[bool]) -> tuple[Meta, bool]:
        axis, *xs = args
        _pieces(xs, shared)
        first = xs[0].shape
        return ((first[:axis] + (len(xs),) + first[axis:], xs[0].dtype),), False


class SplitRule(Rule):
    @staticmethod
    def meta(args: tuple[Any, ...], kwargs: dict[str, Any], shared: list[bool]) -> tuple[Meta, bool]:
        x, sizes, axis = args
        return tuple((x.shape[:axis] + (s,) + x.shape[axis + 1:], x.dtype) for s in sizes), True

    @staticmethod
    def run(cls: type[Function], args: list[Any], batched: list[bool], kwargs: dict[str, Any], k: int) -> Any:
        x, sizes, axis = args
        return Split.apply(x, sizes, axis + 1)


class EmbeddingRule(Rule):
    """embedding(ids, W): the members' ids stacked, one lookup in the shared W."""

    weights = (1,)

    @staticmethod
    def meta(args: tuple[Any, ...], kwargs: dict[str, Any], shared: list[bool]) -> tuple[Meta, bool]:
        ids, weight, _ = args
        return ((ids.shape + weight.shape[1:], weight.dtype),), False


class CellStep(Rule):
    """One fused cell step: the members' rows (x, h, c) make one batch for the kernel; weights shared."""

    weights = (3, 4, 5, 6)

    @staticmethod
    def meta(args: tuple[Any, ...], kwargs: dict[str, Any], shared: list[bool]) -> tuple[Meta, bool]:
        _own(shared, 0, 1, 2)
        h = args[1]
        if kwargs["mode"] == "lstm":
            return ((h.shape, h.dtype), (h.shape, h.dtype)), True
        return ((h.shape, h.dtype),), False

    @staticmethod
    def run(cls: type[Function], args: list[Any], batched: list[bool], kwargs: dict[str, Any], k: int) -> Any:
        x, h, c, *weights = args
        if x.ndim == 2:  # unbatched members: the k rows are the kernel's batch
            return cls.apply(x, h, c, *weights, **kwargs)
        rows = k * x.shape[1]  # members with batches of B rows: (k, B, .) -> (k*B, .) and back
        flat = [None if t is None else Reshape.apply(t, (rows, t.shape[2])) for t in (x, h, c)]
        out = cls.apply(*flat, *weights, **kwargs)
        outs = out if type(out) is tuple else (out,)
        shaped = tuple(Reshape.apply(o, (k, x.shape[1], o.shape[1])) for o in outs)
        return shaped if type(out) is tuple else shaped[0]


RULES: dict[type[Function], Any] = {
    **dict.fromkeys((Neg, Exp, Tanh, Sigmoid, Log, Softplus, Relu, Clip, Cast), Pointwise),
    **dict.fromkeys((Add, Sub, Mul, Div, Pow, Where), Broadcasting),
    MatMul: Product,
    Linear: LinearRule,
    Sum: Reduction, Max: Reduction,
    LogSoftmax: OneAxis,
    Reshape: ReshapeRule,
    Permute: PermuteRule,
    GetItem: Indexing,
    Cat: Joining,
    Stack: StackRule,
    Split: SplitRule,
    Embedding: EmbeddingRule,
    FusedCellStep: CellStep,
}
