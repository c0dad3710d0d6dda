"""Graph operations: gather rows by an index array, and sum rows into segments (scatter-add).

Legend: N rows of the source (nodes), E indices (edges), S segments (target nodes or graphs),
``...`` any trailing shape (features).

The two are each other's adjoint: the backward of a gather is a segment sum of the gradient into
the rows it read, and the backward of a segment sum is a gather of the gradient by segment. One
round of message passing over a graph with edges ``src -> dst`` is::

    messages = gather_rows(h, src)                  # (E, D): each edge reads its source node
    m = segment_sum(messages, dst, num_segments=N)  # (N, D): each node sums its incoming edges
"""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Context, Function
from ..tensor import Tensor
from ..checks import check_tensor

# Rows summed one rank at a time (see sum_by_segment) for the first RANKS rows of every segment.
RANKS = 16


def stable_order(ids: np.ndarray, num_segments: int) -> np.ndarray:
    """``np.argsort(ids, kind="stable")`` for ids in [0, num_segments), faster: NumPy radix-sorts
    16-bit integers (linear time, where int64 gets a merge sort), so ids below
    2^16 are sorted as uint16, and ids below 2^32 in two such passes (low half, then high half)."""
    if num_segments <= 1 << 16:
        return np.argsort(ids.astype(np.uint16), kind="stable")
    if num_segments <= 1 << 32:
        low = np.argsort((ids & 0xFFFF).astype(np.uint16), kind="stable")
        return low[np.argsort((ids[low] >> 16).astype(np.uint16), kind="stable")]
    return np.argsort(ids, kind="stable")


def sum_by_segment(values: np.ndarray, ids: np.ndarray, num_segments: int) -> np.ndarray:
    """out[s] = sum of values[e] over the e with ids[e] == s  (values (E, ...), ids (E,) in
    [0, S), out (S, ...)): the forward of segment_sum and the backward of gather_rows.

    The rows are sorted by segment (:func:`stable_order`: each segment's rows keep their order and
    are added left to right). Then the k-th row of every segment is added at once, for k = 0, 1, ...: a
    graph's nodes have few edges each, so a few vectorised passes replace one small reduction
    per segment (``np.add.reduceat`` over rows, several times slower at thousands of edges, and
    ``np.add.at`` slower still). Rows past the first RANKS of a segment (a hub) are summed with
    reduceat over those long segments only.
    """
    out = np.zeros((num_segments, *values.shape[1:]), dtype=values.dtype)
    if ids.size == 0:
        return out
    order = stable_order(ids, num_segments)
    keys, rows = ids[order], values.take(order, axis=0)
    counts = np.bincount(ids, minlength=num_segments)
    first = np.cumsum(counts) - counts  # where each segment's rows start in the sorted order
    for k in range(min(int(counts.max()), RANKS)):
        segments = np.flatnonzero(counts > k)
        out[segments] += rows[first[segments] + k]
    tail = np.flatnonzero(np.arange(ids.size) - first[keys] >= RANKS)  # rows past a segment's first RANKS
    if tail.size:
        starts = np.flatnonzero(np.concatenate(([True], keys[tail[1:]] != keys[tail[:-1]])))
        out[keys[tail[starts]]] += np.add.reduceat(rows[tail], starts, axis=0)
    return out


class GatherRows(Function):
    """y[e] = x[index[e]]  (x (N, ...), index (E,), y (E, ...)): torch.index_select(x, 0, index).

    dx[n] = sum of dy[e] over the e with index[e] == n  (a segment sum).
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, index: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(index)
        ctx.shape = x.shape
        return x.take(index, axis=0)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple[np.ndarray, None]:
        (index,) = ctx.saved_tensors
        return sum_by_segment(grad, index, ctx.shape[0]), None


class SegmentSum(Function):
    """y[s] = sum of x[e] over the e with segment_ids[e] == s  (x (E, ...), segment_ids (E,),
    y (S, ...); a segment no id names is zero): torch.zeros(S, ...).index_add_(0, segment_ids, x).

    dx[e] = dy[segment_ids[e]]  (a gather).
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, segment_ids: np.ndarray, num_segments: int) -> np.ndarray:
        ctx.save_for_backward(segment_ids)
        return sum_by_segment(x, segment_ids, num_segments)

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple[np.ndarray, None, None]:
        (segment_ids,) = ctx.saved_tensors
        return grad.take(segment_ids, axis=0), None, None


def _check_index(op: str, name: str, index: Any, bound: int, bound_name: str) -> np.ndarray:
    """``index`` as a 1-D integer array with every entry in [0, bound), else a clear error."""
    if isinstance(index, Tensor):
        index = index.data
    index = np.asarray(index)
    if index.ndim != 1 or (index.size and index.dtype.kind not in "iu"):
        raise TypeError(f"{op}(): expected {name} to be a 1-D integer array, got shape {index.shape} "
                        f"and dtype {index.dtype}")
    index = index.astype(np.intp, copy=False)
    if index.size and (index.min() < 0 or index.max() >= bound):
        raise IndexError(f"{op}(): expected every entry of {name} in [0, {bound}) ({bound_name}), "
                         f"got values from {index.min()} to {index.max()}")
    return index


def gather_rows(x: Tensor, index: Any) -> Tensor:
    """``x[index]`` along the first axis: x (N, ...), index (E,) integers in [0, N) -> (E, ...).

    Rows may be read any number of times; their gradients add up."""
    check_tensor("gather_rows", "x", x)
    if x.ndim < 1:
        raise ValueError("gather_rows(): expected x with at least 1 dimension, got a scalar")
    return GatherRows.apply(x, _check_index("gather_rows", "index", index, x.shape[0], "x's rows"))


def segment_sum(x: Tensor, segment_ids: Any, num_segments: int) -> Tensor:
    """Sum the rows of x (E, ...) into ``num_segments`` rows by ``segment_ids`` (E,): out[s] is the
    sum of the x[e] with segment_ids[e] == s (zero where none), shape (num_segments, ...).

    Messages on edges summed into their target nodes, or node states summed per graph (a readout)."""
    check_tensor("segment_sum", "x", x)
    if isinstance(num_segments, bool) or not isinstance(num_segments, (int, np.integer)) or num_segments < 0:
        raise ValueError(f"segment_sum(): expected num_segments to be a non-negative int, got {num_segments!r}")
    ids = _check_index("segment_sum", "segment_ids", segment_ids, int(num_segments), "num_segments")
    if x.ndim < 1 or x.shape[0] != ids.size:
        raise ValueError(f"segment_sum(): expected x of shape ({ids.size}, ...) (one row per segment id), "
                         f"got {x.shape}")
    return SegmentSum.apply(x, ids, int(num_segments))
