"""One projected LSTM layer (PyTorch's ``nn.LSTM(proj_size=P)``) as a single node on the tape.

Legend: T steps, B batch, I input features, H hidden units (the cell state's width), P proj_size
(the width of h, 0 < P < H). Per step, as the LSTM with ``h_{t-1}`` of P features (``w_hh`` (4H, P)),
then ``m_t = o * tanh(c_t)`` (B, H) and ``h_t = m_t W_hr^T`` (B, P), ``W_hr`` (P, H); ``y_t = h_t``.

The backend's ``lstm_proj_forward`` / ``lstm_proj_backward`` run it: the fused C++ kernels
(``minirnn._C``, csrc/lstm_proj.cpp) or the NumPy reference (:mod:`minirnn.reference`), chosen as for
every fused layer (:func:`minirnn.fused.use_backend`). ``reverse`` and ``lengths`` as
:class:`minirnn.fused.FusedRNNLayer`.
"""
from __future__ import annotations

from types import ModuleType

import numpy as np

from .autograd import Context, Function
from .checks import check_forward_args
from .fused import _array, get_backend, reverse_within_lengths
from .tensor import Tensor


class FusedProjLSTMLayer(Function):
    """One single-direction projected LSTM layer: ``(y (T, B, P), h_n (B, P), c_n (B, H))``.

    Inputs ``x`` (T, B, I), ``w_ih`` (4H, I), ``w_hh`` (4H, P), ``w_hr`` (P, H), ``b_ih``/``b_hh``
    (4H,) or None, ``h0`` (B, P), ``c0`` (B, H); options ``lengths``, ``reverse``, ``backend``. The
    backward is one call of the backend's ``lstm_proj_backward`` and is not itself recorded.
    """

    differentiable_backward = False

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, w_hr: np.ndarray,
                b_ih: np.ndarray | None, b_hh: np.ndarray | None, h0: np.ndarray, c0: np.ndarray, *,
                lengths: np.ndarray | None, reverse: bool, backend: ModuleType) -> tuple[np.ndarray, ...]:
        if reverse:
            x = reverse_within_lengths(x, lengths)
        y, h_n, c_n, saved = backend.lstm_proj_forward(x, w_ih, w_hh, w_hr, b_ih, b_hh, h0, c0, lengths)
        if ctx.recording:
            ctx.save_for_backward(saved)
            ctx.lengths, ctx.reverse, ctx.backend = lengths, reverse, backend
        return (reverse_within_lengths(y, lengths) if reverse else y), h_n, c_n

    @staticmethod
    def backward(ctx: Context, dy: np.ndarray, dh_n: np.ndarray, dc_n: np.ndarray) -> tuple[np.ndarray | None, ...]:
        (saved,) = ctx.saved_tensors
        if ctx.reverse:
            dy = reverse_within_lengths(dy, ctx.lengths)
        dx, *grads = ctx.backend.lstm_proj_backward(saved, np.ascontiguousarray(dy), dh_n, dc_n)
        if ctx.reverse:
            dx = reverse_within_lengths(dx, ctx.lengths)
        return tuple(g if need else None for g, need in zip((dx, *grads), ctx.needs_input_grad))


def lstm_proj_layer(x: Tensor, w_ih: Tensor, w_hh: Tensor, w_hr: Tensor, b_ih: Tensor | None,
                    b_hh: Tensor | None, h0: Tensor | np.ndarray, c0: Tensor | np.ndarray,
                    lengths: np.ndarray | None = None, reverse: bool = False,
                    backend: str | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Run one fused projected LSTM layer: ``(y (T, B, P), h_n (B, P), c_n (B, H))``.

    ``y`` is zero past each length; with ``reverse`` each sequence is read from its last element
    back (``y[t]`` still aligned with ``x[t]``). Arguments are checked before the backend runs
    (TypeError/ValueError naming the argument).
    """
    check_forward_args("lstm", _array(x), _array(w_ih), _array(w_hh), _array(b_ih), _array(b_hh),
                       _array(h0), _array(c0), lengths, w_hr=_array(w_hr))
    return checked_lstm_proj_layer(x, w_ih, w_hh, w_hr, b_ih, b_hh, h0, c0, lengths, reverse, backend)


def checked_lstm_proj_layer(x: Tensor, w_ih: Tensor, w_hh: Tensor, w_hr: Tensor, b_ih: Tensor | None,
                            b_hh: Tensor | None, h0: Tensor | np.ndarray, c0: Tensor | np.ndarray,
                            lengths: np.ndarray | None, reverse: bool,
                            backend: str | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`lstm_proj_layer` on arguments its caller (``nn.LSTM``) has already checked."""
    return FusedProjLSTMLayer.apply(x, w_ih, w_hh, w_hr, b_ih, b_hh, h0, c0, lengths=lengths,
                                    reverse=bool(reverse), backend=get_backend(backend))
