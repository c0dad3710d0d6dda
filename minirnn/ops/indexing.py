"""``x[index]``: NumPy indexing (slices, None, Ellipsis, integer arrays, bool masks) on the tape."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..autograd import Context, Function, LazyGrad, ScatteredGrad
from ..tensor import Tensor
from ..checks import check_tensor


def scatter_add(shape: tuple[int, ...], dtype: np.dtype, index: Any, grad: np.ndarray) -> np.ndarray:
    """zeros(shape)[index] += grad, where repeated indices *accumulate* (``np.add.at``).

    This is the backward of ``x[index]``: an element read twice receives both gradients. Only an
    integer array can select an element twice; slices, integers, None, Ellipsis and bool masks
    select each at most once, so a plain assignment (several times faster than ``np.add.at``)
    gives the same result. One integer array alone (an embedding lookup) sums rows by sorting.
    """
    out = np.zeros(shape, dtype=dtype)
    if isinstance(index, np.ndarray) and index.dtype.kind in "iu":
        RowsGrad.add_all([RowsGrad(shape, dtype, index, grad)], out)
        return out
    parts = index if isinstance(index, tuple) else (index,)
    if any(isinstance(p, np.ndarray) and p.dtype.kind in "iu" for p in parts):
        np.add.at(out, index, grad)
    else:
        out[index] = grad
    return out


class RowsGrad(LazyGrad):
    """A gradient whose row ``rows[k]`` gets ``values[k]`` (repeats add up): what ``x[int_array]``
    and an embedding lookup send back to the table they read.

    A model that looks rows up many times (a tree's leaves, a word at each step) then sums all of
    its lookups' rows with one sort, not one pass over the whole table per lookup.
    """

    __slots__ = ("rows", "values")

    def __init__(self, shape: tuple[int, ...], dtype: np.dtype, index: np.ndarray, values: np.ndarray):
        self.shape, self.dtype = shape, dtype
        self.rows = index.reshape(-1)
        self.values = values.reshape(self.rows.size, *shape[1:])

    @property
    def nbytes(self) -> int:
        return self.rows.nbytes + self.values.nbytes

    @staticmethod
    def add_all(grads: list[Any], out: np.ndarray) -> None:
        """Sort the rows (stable), then one ``np.add.reduceat`` per run of equal ones (several times
        faster than ``np.add.at``); the sums may round differently (reduceat adds pairwise)."""
        rows = grads[0].rows if len(grads) == 1 else np.concatenate([g.rows for g in grads])
        if rows.size == 0:
            return
        rows = np.where(rows < 0, rows + out.shape[0], rows)  # a negative index counts from the end
        values = grads[0].values if len(grads) == 1 else np.concatenate([g.values for g in grads])
        order = np.argsort(rows, kind="stable")
        keys = rows[order]
        starts = np.flatnonzero(np.concatenate(([True], keys[1:] != keys[:-1])))
        out[keys[starts]] += np.add.reduceat(values[order], starts, axis=0)


class GetItem(Function):
    """y = x[index];  dx = zeros_like(x) with dx[index] += dy (repeats accumulate).

    For a basic index (no arrays) dx goes back as a :class:`~minirnn.autograd.ScatteredGrad`,
    for one integer array as a :class:`RowsGrad`: the engine adds those into x's gradient in
    place, without a zero array per read.

    The parts of ``index`` go through ``save_for_backward``: an integer array or a mask is freed
    by backward and counted in the graph's saved bytes like any other saved array.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, index: Any) -> np.ndarray:
        try:
            y = np.array(x[index], copy=True)
        except IndexError as err:
            raise IndexError(f"getitem(): invalid index for a tensor of shape {x.shape}: {err}") from None
        ctx.shape, ctx.dtype, ctx.is_tuple = x.shape, x.dtype, isinstance(index, tuple)
        ctx.save_for_backward(*(index if ctx.is_tuple else (index,)))
        return y

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple[np.ndarray | LazyGrad, None]:
        parts = ctx.saved_tensors
        index = parts if ctx.is_tuple else parts[0]
        if not any(isinstance(p, np.ndarray) for p in parts):  # a basic index: x[t], x[:, 4:8]
            return ScatteredGrad(ctx.shape, ctx.dtype, index, grad), None
        if isinstance(index, np.ndarray) and index.dtype.kind in "iu":  # rows: x[ids]
            return RowsGrad(ctx.shape, ctx.dtype, index, grad), None
        return scatter_add(ctx.shape, ctx.dtype, index, grad), None


def _unwrap(index: Any) -> Any:
    """Tensors inside an index become their arrays; lists become arrays (NumPy's fancy indexing)."""
    if isinstance(index, tuple):
        return tuple(_unwrap(i) for i in index)
    if isinstance(index, Tensor):
        return index.data
    if isinstance(index, list):
        return np.asarray(index)
    return index


def getitem(x: Tensor, index: Any) -> Tensor:
    """``x[index]`` with NumPy semantics; out-of-range indices raise IndexError."""
    check_tensor("getitem", "x", x, floating=False)
    if type(index) is int:  # x[t] in a loop over time: nothing to unwrap or check
        return GetItem.apply(x, index)
    index = _unwrap(index)
    for part in index if isinstance(index, tuple) else (index,):
        if isinstance(part, np.ndarray) and part.dtype.kind not in "iub":
            raise IndexError(f"getitem(): expected integer or bool index arrays, got dtype {part.dtype}")
    return GetItem.apply(x, index)
