"""One recurrent layer (all T steps, forward and BPTT) as a single node on the tape.

:func:`rnn_layer` applies :class:`FusedRNNLayer`, whose forward calls a backend's
``rnn_forward`` and whose backward calls its ``rnn_backward``. Both backends have the same
interface (the signatures in ``minirnn/_C.pyi``; :mod:`minirnn.reference` takes the same): forward
returns a saved state, opaque here and each backend's own (the arguments it checked and its
workspace), and backward takes it with the output gradients, so nothing is checked twice;
``need_workspace=False`` when the call is not recorded (nothing kept).
Two backends exist:

* ``"c"`` (the default): the fused C++/OpenMP kernels in ``minirnn._C``;
* ``"reference"``: the plain-NumPy implementation in :mod:`minirnn.reference` (the default when
  the extension is absent, see :mod:`minirnn._extension`).

Choose one per call (``backend=``) or for a block of code::

    with minirnn.fused.use_backend("reference"):
        out, h_n = lstm(x)      # every fused layer inside runs the NumPy reference

``reverse=True`` runs the layer backwards in time within each sequence's own length (the reverse
half of a bidirectional layer): the input is gathered with ``x_rev[t, b] = x[L_b - 1 - t, b]``
for ``t < L_b`` (identity beyond), the layer runs forward, and the outputs are gathered back
with the same index (the map is its own inverse); backward gathers the gradients the same way.

With ``lengths`` the layer runs its sequences longest first (:func:`longest_first`), the order in
which the kernels compute only the rows still running at each step, and puts every output and
gradient back in the caller's order.
"""
from __future__ import annotations

import contextlib
import functools
import threading
from types import ModuleType
from typing import Any, Iterator

import numpy as np

from . import _extension, reference
from .autograd import Context, Function
from .checks import check_array, check_forward_args
from .ops.arithmetic import ProductGrad
from .tensor import Tensor

BACKENDS = ("c", "reference")


class _BackendChoice(threading.local):
    """The default backend is per thread (like grad mode): one thread's ``use_backend`` block
    changes nothing for the others, and overlapping blocks in two threads cannot leave it set."""

    name = "c" if _extension.C is not None else "reference"


_default_backend = _BackendChoice()


@functools.cache
def _c_backend() -> ModuleType:
    """minirnn._C, imported and checked once (a per-call import costs more than a small layer)."""
    _C = _extension.C
    if _C is None:
        raise RuntimeError("fused: backend 'c': the compiled extension minirnn._C is not available "
                           f"(not built, or hidden by {_extension.HIDE_VARIABLE}=1); build it with "
                           "`pip install -e .` (README.md) or use backend='reference'")
    if not hasattr(_C, "rnn_forward"):
        raise RuntimeError("fused: backend 'c': minirnn._C has no rnn_forward (an old build?); "
                           "rebuild the extension or use backend='reference'")
    return _C


def get_backend(name: str | None = None) -> ModuleType:
    """The module providing ``rnn_forward``/``rnn_backward`` for ``name`` (None: the current default)."""
    name = _default_backend.name if name is None else name
    if name == "reference":
        return reference
    if name == "c":
        return _c_backend()
    raise ValueError(f"fused: backend: expected one of {BACKENDS}, got {name!r}")


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Context manager: fused layers inside use backend ``name`` ("c" or "reference"), in this
    thread (other threads keep their own choice)."""
    get_backend(name)  # validate before switching
    previous, _default_backend.name = _default_backend.name, name
    try:
        yield
    finally:
        _default_backend.name = previous


def reverse_within_lengths(a: np.ndarray, lengths: np.ndarray | None) -> np.ndarray:
    """(T, B, F) -> (T, B, F) with each sequence b's first ``lengths[b]`` steps in reverse order.

    Steps at and past ``lengths[b]`` stay where they are. Applying it twice gives ``a`` back.
    """
    T, B = a.shape[:2]
    if lengths is None:
        return np.ascontiguousarray(a[::-1])
    t = np.arange(T)[:, None]                                    # (T, 1)
    index = np.where(t < lengths[None, :], lengths[None, :] - 1 - t, t)  # (T, B)
    return np.take_along_axis(a, index[:, :, None], axis=0)


def longest_first(lengths: np.ndarray | None) -> tuple[np.ndarray, np.ndarray] | tuple[None, None]:
    """``(order, back)``: the batch order that sorts ``lengths`` longest first (stable) and its
    inverse, or ``(None, None)`` if they already are sorted.

    The kernels compute, at step t, the rows up to the last sequence still running; sorted, those
    are exactly the running ones, so a padded step costs nothing (unsorted stays correct but slower).
    """
    if lengths is None or np.all(lengths[:-1] >= lengths[1:]):
        return None, None
    order = np.argsort(-lengths, kind="stable")
    return order, np.argsort(order)


def _take(a: Any, order: np.ndarray | None, axis: int) -> Any:  # (an ndarray, or None for None)
    """``a`` with its batch axis reordered by ``order`` (a no-op for None)."""
    return a if a is None or order is None else np.take(a, order, axis=axis)


class FusedRNNLayer(Function):
    """One single-direction layer of ``mode`` over all steps: ``(y, h_n[, c_n])``.

    Inputs ``x`` (T, B, I), ``w_ih`` (G*H, I), ``w_hh`` (G*H, H), ``b_ih``/``b_hh`` (G*H,) or
    None, ``h0`` (B, H), ``c0`` (B, H) for lstm else None; options ``mode``, ``lengths``
    (int64 (B,) or None), ``reverse``, ``backend`` (a module) and ``dh_steps``: None, or a
    (T, B, H) array the backward fills with every step's dL/dh_t in the caller's order (zero past
    each length), what :func:`minirnn.analysis.hidden_grad_norms` reads. The backward is one call
    of the backend's ``rnn_backward`` and is not itself recorded (no double backward).
    """

    differentiable_backward = False

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                b_ih: np.ndarray | None, b_hh: np.ndarray | None, h0: np.ndarray,
                c0: np.ndarray | None, *, mode: str, lengths: np.ndarray | None,
                reverse: bool, backend: ModuleType, dh_steps: np.ndarray | None = None) -> tuple[np.ndarray, ...]:
        if reverse:
            x = reverse_within_lengths(x, lengths)
        order, back = longest_first(lengths)  # the kernels see the batch in order; back undoes it
        x, h0, c0, sorted_lengths = (_take(a, order, axis) for a, axis in ((x, 1), (h0, 0), (c0, 0), (lengths, 0)))
        y, h_n, c_n, saved = backend.rnn_forward(mode, x, w_ih, w_hh, b_ih, b_hh, h0, c0, sorted_lengths,
                                                 ctx.recording)  # not recorded: nothing kept
        if ctx.recording:
            ctx.save_for_backward(saved)
            ctx.lengths, ctx.reverse, ctx.backend = lengths, reverse, backend
            ctx.order, ctx.back, ctx.dh_steps = order, back, dh_steps
        y, h_n, c_n = _take(y, back, 1), _take(h_n, back, 0), _take(c_n, back, 0)  # the caller's order
        y_out = reverse_within_lengths(y, lengths) if reverse else y
        return (y_out, h_n, c_n) if mode == "lstm" else (y_out, h_n)

    @staticmethod
    def backward(ctx: Context, dy: np.ndarray, dh_n: np.ndarray,
                 dc_n: np.ndarray | None = None) -> tuple[np.ndarray | None, ...]:
        (saved,) = ctx.saved_tensors
        order, back = ctx.order, ctx.back
        if ctx.reverse:
            dy = reverse_within_lengths(dy, ctx.lengths)
        dy, dh_n, dc_n = _take(dy, order, 1), _take(dh_n, order, 0), _take(dc_n, order, 0)
        steps = None if ctx.dh_steps is None else np.empty_like(ctx.dh_steps)  # in the kernels' order
        grads = ctx.backend.rnn_backward(saved, np.ascontiguousarray(dy), dh_n, dc_n, False, steps)
        if steps is not None:
            steps = _take(steps, back, 1)
            ctx.dh_steps[...] = reverse_within_lengths(steps, ctx.lengths) if ctx.reverse else steps
        dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0 = grads
        dx, dh0, dc0 = _take(dx, back, 1), _take(dh0, back, 0), _take(dc0, back, 0)  # the caller's order
        if ctx.reverse and dx is not None:
            dx = reverse_within_lengths(dx, ctx.lengths)
        grads = (dx, dw_ih, dw_hh, db_ih, db_hh, dh0, dc0)
        return tuple(g if need else None for g, need in zip(grads, ctx.needs_input_grad))


def _array(value: Any) -> Any:
    return value.data if isinstance(value, Tensor) else value


def rnn_layer(mode: str, x: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
              b_hh: Tensor | None, h0: Tensor | np.ndarray, c0: Tensor | np.ndarray | None = None,
              lengths: np.ndarray | None = None, reverse: bool = False,
              backend: str | None = None, dh_steps: np.ndarray | None = None) -> tuple[Tensor, ...]:
    """Run one fused layer: ``(y, h_n)``, or ``(y, h_n, c_n)`` for ``mode="lstm"``.

    Shapes and semantics as :mod:`minirnn.reference` (``y`` (T, B, H) zero past each length,
    ``h_n``/``c_n`` (B, H) the state after each sequence's own last step). With ``reverse`` the
    layer reads each sequence from its last element back to its first, and ``y[t]`` is still
    aligned with ``x[t]``. ``dh_steps`` (T, B, H) of x's dtype, when given, receives every step's
    dL/dh_t at backward (see :class:`FusedRNNLayer`). Arguments are checked before the backend runs
    (TypeError/ValueError naming the argument).
    """
    check_forward_args(mode, _array(x), _array(w_ih), _array(w_hh), _array(b_ih), _array(b_hh), _array(h0),
                       _array(c0), lengths)
    if dh_steps is not None:
        T, B = _array(x).shape[:2]
        check_array("dh_steps", dh_steps, (T, B, _array(w_hh).shape[1]), _array(x).dtype)
    return checked_rnn_layer(mode, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, reverse, backend, dh_steps)


def checked_rnn_layer(mode: str, x: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor | None,
                      b_hh: Tensor | None, h0: Tensor | np.ndarray, c0: Tensor | np.ndarray | None,
                      lengths: np.ndarray | None, reverse: bool, backend: str | None = None,
                      dh_steps: np.ndarray | None = None) -> tuple[Tensor, ...]:
    """:func:`rnn_layer` on arguments its caller has already checked: the nn modules check theirs at
    their own boundary (one check a call; the kernels keep only the guards that stop a crash)."""
    return FusedRNNLayer.apply(x, w_ih, w_hh, b_ih, b_hh, h0, c0, mode=mode, lengths=lengths,
                               reverse=bool(reverse), backend=get_backend(backend), dh_steps=dh_steps)


class FusedCellStep(Function):
    """One time step of a cell of ``mode`` as ONE tape node: ``h'`` (lstm: ``(h', c')``).

    Inputs ``x`` (B, I) or (I,), ``h`` and (lstm) ``c`` shaped (B, H) or (H,) like x is batched,
    ``w_ih`` (G*H, I), ``w_hh`` (G*H, H), ``b_ih``/``b_hh`` (G*H,) or None; option ``mode``.
    Forward and backward are the fused layer's C++ kernels run for T = 1 (the two products, then
    one pointwise pass with the layers' activations), so a step costs two calls into C++ however
    many gates the cell has. The composed step in :mod:`minirnn.nn.cells` is the same math built
    from tape primitives. The backward is not itself recorded (no double backward).
    """

    differentiable_backward = False
    materialize_grads = False  # a gradient of h' alone (or of c' alone) needs no zeros for the other

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, h: np.ndarray, c: np.ndarray | None, w_ih: np.ndarray,
                w_hh: np.ndarray, b_ih: np.ndarray | None, b_hh: np.ndarray | None, *,
                mode: str) -> np.ndarray | tuple[np.ndarray, np.ndarray]:
        # As the layer's one step: x (T=1, B, I), states (B, H); unbatched is a batch of one.
        batched = x.ndim == 2
        x3 = x[None] if batched else x[None, None]
        h2 = h if batched else h[None]
        c2 = c if batched or c is None else c[None]
        # (need_workspace and gate_grads positionally: pybind11 parses a keyword slowly, per step)
        _, h_n, c_n, saved = _c_backend().rnn_forward(mode, x3, w_ih, w_hh, b_ih, b_hh, h2, c2, None,
                                                      ctx.recording)
        if ctx.recording:
            ctx.save_for_backward(saved)
            ctx.mode, ctx.batched = mode, batched
        if not batched:
            h_n, c_n = h_n[0], None if c_n is None else c_n[0]
        return h_n if c is None else (h_n, c_n)

    @staticmethod
    def backward(ctx: Context, dh: np.ndarray | None,
                 dc: np.ndarray | None = None) -> tuple[Any, ...]:
        (saved,) = ctx.saved_tensors  # holds x (1, B, I) and h (B, H) as the kernels read them
        if not ctx.batched:  # (H,) -> (1, H)
            dh, dc = (None if g is None else g[None] for g in (dh, dc))
        # The kernel stops before the weight gradients: they go back as products (dG^T x, dG^T h)
        # that the engine sums over all steps with one GEMM per weight. (Not gru_reset_before: its
        # dW_hn is dG_n^T (r * h), so the kernel computes dW_hh itself.)
        products = ctx.mode != "gru_reset_before"
        dx, dg_ih, dg_hh, db_ih, db_hh, dh0, dc0 = _c_backend().rnn_backward(saved, None, dh, dc, products)
        needs = ctx.needs_input_grad
        dw_ih = (ProductGrad(dg_ih, saved.x[0]) if products else dg_ih) if needs[3] else None
        dw_hh = (ProductGrad(dg_ih if dg_hh is None else dg_hh, saved.h0) if products else dg_hh) if needs[4] else None
        dx, dh0 = (dx[0], dh0) if ctx.batched else (dx[0, 0], dh0[0])
        if dc0 is not None and not ctx.batched:
            dc0 = dc0[0]
        return (dx if needs[0] else None, dh0 if needs[1] else None, dc0 if needs[2] else None, dw_ih, dw_hh,
                db_ih if needs[5] else None, db_hh if needs[6] else None)


def cell_step(mode: str, x: Tensor, h: Tensor, c: Tensor | None, w_ih: Tensor, w_hh: Tensor,
              b_ih: Tensor | None, b_hh: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """One fused step of ``mode``: ``(h', c')`` (``c'`` None unless lstm), shaped like ``h``.

    The caller (the cells in :mod:`minirnn.nn.cells`) has checked shapes and dtypes.
    """
    out = FusedCellStep.apply(x, h, c, w_ih, w_hh, b_ih, b_hh, mode=mode)
    return out if mode == "lstm" else (out, None)
