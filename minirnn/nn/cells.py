"""``RNNCell``, ``LSTMCell``, ``GRUCell``: one time step on the tape.

For step-by-step use (teacher forcing, generation, custom control flow): each step is recorded on
the tape, so gradients flow through any Python loop around the cell. Two speeds of the same math:

* ``fused=True`` (the default): the step is ONE tape node whose forward and backward are the fused
  layers' C++ kernels (:class:`minirnn.fused.FusedCellStep`); without the compiled extension
  (:mod:`minirnn._extension`) it runs the composed step;
* ``fused=False``: the step is composed of tape primitives (:func:`composed_step`: two products,
  slices, sigmoids, tanh, products and sums) -- what to read to see how a cell works, and the
  oracle the fused step is tested against.

The math,
gate order and parameter layout are exactly those of the fused layers in :mod:`minirnn.nn.rnn`
and of PyTorch's cells (``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih``,
``bias_hh`` (G*H,)), with ``a = x W_ih^T + b_ih`` and ``r = h W_hh^T + b_hh``:

* RNNCell:  ``h' = tanh(a + r)`` (or relu, or sigmoid);
* LSTMCell: ``i, f, g, o = sigmoid, sigmoid, tanh, sigmoid`` of the four H-wide slices of
  ``a + r``;  ``c' = f * c + i * g``;  ``h' = o * tanh(c')``;
* GRUCell:  ``r_ = sigmoid(a_r + r_r)``, ``z = sigmoid(a_z + r_z)``,
  ``n = tanh(a_n + r_ * r_n)``;  ``h' = (1 - z) * n + z * h``;
  with ``reset_after=False`` (Cho et al. 2014): ``n = tanh(a_n + (r_ * h) W_hn^T + b_hn)``.

This module also holds the parameter creation and initialisation shared with the fused layers.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _extension, init
from ..checks import as_tensor, check_dtype, check_float, check_size
from ..fused import cell_step as fused_cell_step
from ..ops import linear
from ..modes import ELMAN_MODES, NUM_GATES
from ..tensor import Tensor
from .module import Module, Parameter

RECURRENT_INITS = ("uniform", "orthogonal", "identity")
#: Whether the fused step's C++ kernels are there (resolved once: the step loop is hot).
_FUSED_KERNELS = _extension.C is not None


def elman_mode(owner: str, nonlinearity: str) -> str:
    """The mode of an Elman layer or cell with ``nonlinearity``, else ValueError."""
    if nonlinearity not in ELMAN_MODES:
        raise ValueError(f"{owner}: nonlinearity: expected one of {tuple(ELMAN_MODES)}, got {nonlinearity!r}")
    return ELMAN_MODES[nonlinearity]


# ---------------------------------------------------------------------------- shared helpers
def make_gate_parameters(module: Module, suffix: str, gates: int, input_size: int, hidden_size: int,
                         bias: bool, dtype: np.dtype, state_size: int | None = None) -> None:
    """Register ``weight_ih{suffix}`` (G*H, I), ``weight_hh{suffix}`` (G*H, S) with S = ``state_size``
    (the width of h: H unless an LSTM projects it) and, with ``bias``, ``bias_ih{suffix}``/``bias_hh{suffix}``
    (G*H,) on ``module`` (uninitialised)."""
    gh = gates * hidden_size
    module.register_parameter(f"weight_ih{suffix}", Parameter(np.empty((gh, input_size), dtype)))
    module.register_parameter(f"weight_hh{suffix}",
                              Parameter(np.empty((gh, hidden_size if state_size is None else state_size), dtype)))
    if bias:
        module.register_parameter(f"bias_ih{suffix}", Parameter(np.empty(gh, dtype)))
        module.register_parameter(f"bias_hh{suffix}", Parameter(np.empty(gh, dtype)))


def init_gate_parameters(module: Module, mode: str, hidden_size: int, recurrent_init: str,
                         forget_bias: float | None) -> None:
    """Initialise every parameter of ``module`` (a layer or a cell).

    PyTorch's default: every weight and bias ~ U(-k, k) with k = 1/sqrt(H). With
    ``recurrent_init="orthogonal"`` each H x H gate block of every ``weight_hh*`` is instead an
    orthogonal matrix. With ``recurrent_init="identity"`` (Elman only: the IRNN of Le, Jaitly and
    Hinton 2015, meant for relu) every ``weight_hh*`` is the identity and every bias 0, so the
    state starts by carrying itself unchanged. With ``forget_bias`` (lstm), the forget-gate slice ``[H:2H]`` of every
    ``bias_ih*`` is set to ``forget_bias`` and that of ``bias_hh*`` to 0, so the gate starts at
    ``sigmoid(forget_bias + ...)`` (Jozefowicz et al. 2015 use 1.0).
    """
    k = 1.0 / math.sqrt(hidden_size)
    for name, param in module.named_parameters(recurse=False):
        if name.startswith("weight_hh") and recurrent_init == "orthogonal":
            for block in np.split(param.data, NUM_GATES[mode], axis=0):
                init.orthogonal_(block)
        elif name.startswith("weight_hh") and recurrent_init == "identity":
            init.eye_(param)
        elif name.startswith("bias_") and recurrent_init == "identity":
            init.zeros_(param)
        else:
            init.uniform_(param, -k, k)
        if forget_bias is not None and name.startswith("bias_"):
            param.data[hidden_size:2 * hidden_size] = forget_bias if name.startswith("bias_ih") else 0.0


def gru_mode(owner: str, mode: str, reset_after: bool) -> str:
    """``mode``, or ``"gru_reset_before"`` for a GRU with ``reset_after=False``; else a clear error."""
    if not isinstance(reset_after, bool):
        raise TypeError(f"{owner}: reset_after: expected True or False, got {reset_after!r}")
    if reset_after:
        return mode
    if mode != "gru":
        raise ValueError(f"{owner}: reset_after: expected True (only a GRU has the option), got False for mode {mode!r}")
    return "gru_reset_before"


def check_init_options(owner: str, mode: str, recurrent_init: str, forget_bias: float | None) -> None:
    if recurrent_init not in RECURRENT_INITS:
        raise ValueError(f"{owner}: recurrent_init: expected one of {RECURRENT_INITS}, got {recurrent_init!r}")
    if recurrent_init == "identity" and NUM_GATES[mode] != 1:
        raise ValueError(f"{owner}: recurrent_init: 'identity' (IRNN) is for an Elman RNN, not mode {mode!r}; "
                         f"expected 'uniform' or 'orthogonal'")
    if forget_bias is not None:
        if mode != "lstm":
            raise ValueError(f"{owner}: forget_bias: expected None (only LSTMs have a forget gate), "
                             f"got {forget_bias!r}")
        if isinstance(forget_bias, bool) or not isinstance(forget_bias, (int, float)):
            raise TypeError(f"{owner}: forget_bias: expected a number or None, got {type(forget_bias).__name__}")


# ---------------------------------------------------------------------------- the step
def composed_step(mode: str, x: Tensor, h: Tensor, c: Tensor | None, w_ih: Tensor, w_hh: Tensor,
              b_ih: Tensor | None, b_hh: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """One step of ``mode`` built from tape ops: x (B, I), h/c (B, H) -> (h', c' or None)."""
    H = w_hh.shape[1]
    a = linear(x, w_ih, b_ih)                     # (B, G*H): x W_ih^T + b_ih
    r = linear(h, w_hh, b_hh)                     # (B, G*H): h W_hh^T + b_hh
    if mode == "lstm":
        pre = a + r
        i, f, g, o = (pre[:, k * H:(k + 1) * H] for k in range(4))
        c_new = f.sigmoid() * c + i.sigmoid() * g.tanh()
        return o.sigmoid() * c_new.tanh(), c_new
    if mode == "gru":
        rz = (a[:, :2 * H] + r[:, :2 * H]).sigmoid()  # (B, 2H)
        reset, z = rz[:, :H], rz[:, H:]
        n = (a[:, 2 * H:] + reset * r[:, 2 * H:]).tanh()
        return (1 - z) * n + z * h, None
    if mode == "gru_reset_before":  # the reset gate scales h before W_hn (r's n columns go unused)
        rz = (a[:, :2 * H] + r[:, :2 * H]).sigmoid()  # (B, 2H)
        reset, z = rz[:, :H], rz[:, H:]
        n = (a[:, 2 * H:] + linear(reset * h, w_hh[2 * H:], None if b_hh is None else b_hh[2 * H:])).tanh()
        return (1 - z) * n + z * h, None
    pre = a + r
    return {"rnn_tanh": pre.tanh, "rnn_relu": pre.relu, "rnn_sigmoid": pre.sigmoid}[mode](), None


class RNNCellBase(Module):
    """Parameters, checks and forward shared by the three cells (subclasses fix ``mode``)."""

    def __init__(self, mode: str, input_size: int, hidden_size: int, bias: bool = True,
                 dtype: Any = np.float32, recurrent_init: str = "uniform",
                 forget_bias: float | None = None, fused: bool = True, reset_after: bool = True):
        super().__init__()
        owner = type(self).__name__
        if not isinstance(fused, bool):
            raise TypeError(f"{owner}: fused: expected True or False, got {fused!r}")
        mode = gru_mode(owner, mode, reset_after)
        self.mode, self.reset_after = mode, reset_after
        self.fused = fused
        self.input_size = check_size(owner, "input_size", input_size, 0)
        self.hidden_size = check_size(owner, "hidden_size", hidden_size)
        self.bias = bool(bias)
        dt = check_dtype(owner, dtype)
        check_init_options(owner, mode, recurrent_init, forget_bias)
        make_gate_parameters(self, "", NUM_GATES[mode], self.input_size, self.hidden_size, self.bias, dt)
        init_gate_parameters(self, mode, self.hidden_size, recurrent_init, forget_bias)

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the parameters (so it follows ``.double()``/``.float()``/``.to()``): inputs
        and states must have it, and the zero initial state is made in it."""
        return self.weight_ih.data.dtype

    def _state(self, name: str, value: Any, shape: tuple[int, ...], dtype: np.dtype) -> Tensor:
        """Check an initial state of ``shape`` ((B, H), or (H,) for unbatched input) and ``dtype``
        (the parameters'); None -> zeros."""
        if value is None:
            return Tensor(np.zeros(shape, dtype))
        if isinstance(value, Tensor) and value.shape == shape and value.dtype == dtype:
            return value  # (the common case first: a cell's step runs in loops)
        owner = type(self).__name__
        t = as_tensor(owner, name, value)
        if t.shape != shape:
            raise ValueError(f"{owner}: {name}: expected shape {shape}, got {t.shape}")
        check_float(owner, name, t, dtype)
        return t

    def _check_input(self, input: Any, dtype: np.dtype) -> Tensor:
        """``input`` as a Tensor of shape (B, I) or (I,) and ``dtype`` (the parameters'), else a clear error."""
        if isinstance(input, Tensor):
            shape = input.shape
            if len(shape) in (1, 2) and shape[-1] == self.input_size and input.dtype == dtype:
                return input  # (the common case first)
        owner = type(self).__name__
        x = as_tensor(owner, "input", input)
        if x.ndim not in (1, 2) or x.shape[-1] != self.input_size:
            raise ValueError(f"{owner}: input: expected shape (B, {self.input_size}) or "
                             f"({self.input_size},), got {x.shape}")
        check_float(owner, "input", x, dtype)
        return x

    def forward(self, input: Any, hx: Any = None) -> Any:  # noqa: A002 - PyTorch's name
        """``input`` (B, I) or (I,); ``hx`` (B, H) / (H,), for LSTMCell a pair ``(h, c)``.

        Returns ``h'`` (``(h', c')`` for LSTMCell), shaped like ``hx``; a missing ``hx`` is zeros.
        """
        dtype = self.dtype  # (read once a step)
        x = self._check_input(input, dtype)
        batch = x.shape[0] if x.ndim == 2 else None
        state_shape = (self.hidden_size,) if batch is None else (batch, self.hidden_size)
        if self.mode == "lstm":
            if hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
                raise TypeError(f"{type(self).__name__}: hx: expected a pair (h, c) or None, got {type(hx).__name__}")
            h = self._state("hx[0]", None if hx is None else hx[0], state_shape, dtype)
            c = self._state("hx[1]", None if hx is None else hx[1], state_shape, dtype)
        else:
            h, c = self._state("hx", hx, state_shape, dtype), None
        weights = (self.weight_ih, self.weight_hh, getattr(self, "bias_ih", None), getattr(self, "bias_hh", None))
        if self.fused and _FUSED_KERNELS:  # one node, batched or not
            h_new, c_new = fused_cell_step(self.mode, x, h, c, *weights)
            return (h_new, c_new) if self.mode == "lstm" else h_new
        if batch is None:  # unbatched: run as a batch of one
            x, h = x.reshape(1, -1), h.reshape(1, -1)
            c = None if c is None else c.reshape(1, -1)
        h_new, c_new = composed_step(self.mode, x, h, c, *weights)
        if batch is None:
            h_new = h_new.reshape(-1)
            c_new = None if c_new is None else c_new.reshape(-1)
        return (h_new, c_new) if self.mode == "lstm" else h_new

    def extra_repr(self) -> str:
        extra = ("" if self.bias else ", bias=False") + ("" if self.fused else ", fused=False")
        extra += "" if self.reset_after else ", reset_after=False"
        return f"{self.input_size}, {self.hidden_size}{extra}"


class RNNCell(RNNCellBase):
    """Elman cell ``h' = tanh(x W_ih^T + b_ih + h W_hh^T + b_hh)`` (``nonlinearity="relu"``: relu;
    ``"sigmoid"``: the logistic sigmoid of the lectures' Elman network, not in PyTorch)."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, nonlinearity: str = "tanh",
                 dtype: Any = np.float32, recurrent_init: str = "uniform", fused: bool = True):
        super().__init__(elman_mode("RNNCell", nonlinearity), input_size, hidden_size, bias, dtype, recurrent_init, fused=fused)
        self.nonlinearity = nonlinearity


class LSTMCell(RNNCellBase):
    """LSTM cell (gates i, f, g, o; see the module docstring); ``forward`` returns ``(h', c')``."""

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype: Any = np.float32,
                 recurrent_init: str = "uniform", forget_bias: float | None = None, fused: bool = True):
        super().__init__("lstm", input_size, hidden_size, bias, dtype, recurrent_init, forget_bias, fused)


class GRUCell(RNNCellBase):
    """GRU cell (gates r, z, n; see the module docstring and :class:`minirnn.nn.GRU` for both variants).

    ``reset_after=True`` (default): PyTorch's, the reset gate scales ``W_hn h + b_hn``;
    ``False``: Cho et al. 2014's, it scales ``h`` before the product. Both: ``h' = (1 - z) * n + z * h``.
    """

    def __init__(self, input_size: int, hidden_size: int, bias: bool = True, dtype: Any = np.float32,
                 recurrent_init: str = "uniform", fused: bool = True, reset_after: bool = True):
        super().__init__("gru", input_size, hidden_size, bias, dtype, recurrent_init, fused=fused,
                         reset_after=reset_after)
