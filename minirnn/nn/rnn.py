"""``RNN``, ``LSTM``, ``GRU``: multi-layer, optionally bidirectional recurrent layers.

Each (layer, direction) runs as ONE node on the tape -- :class:`minirnn.fused.FusedRNNLayer`,
the fused C++ kernels by default (``minirnn.fused.use_backend("reference")`` switches to NumPy).
Arguments, defaults, shapes, parameter names and gate order are PyTorch's, so state dicts move
both ways unchanged::

    m = minirnn.nn.LSTM(10, 20, num_layers=2)
    m.load_state_dict({k: v.numpy() for k, v in torch_lstm.state_dict().items()})   # torch -> minirnn
    torch_lstm.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})  # back

Legend: T steps, B batch, I input_size, H hidden_size, L num_layers, D 2 if bidirectional else 1,
G gates (1 RNN, 4 LSTM: i f g o, 3 GRU: r z n). Parameters, for layer k and suffix ``""`` or
``"_reverse"``: ``weight_ih_l{k}{suffix}`` (G*H, I for k = 0 else D*H), ``weight_hh_l{k}{suffix}``
(G*H, H), ``bias_ih_l{k}{suffix}`` and ``bias_hh_l{k}{suffix}`` (G*H,). Cell equations: see
:mod:`minirnn.nn.cells` (same math). An LSTM with ``proj_size`` P > 0 has h of P features: its
``weight_hh_l{k}{suffix}`` is (4H, P), a layer k > 0 reads D*P features, and it adds
``weight_hr_l{k}{suffix}`` (P, H) (see :class:`LSTM`).

Variable-length batches: pass the padded batch and ``lengths`` (B,) with values in [0, T], in
any order. Then the output is zero past each sequence's length, ``h_n``/``c_n`` hold the state
at each sequence's own last step (the initial state for a length of 0), and the reverse direction
starts at each sequence's own last element (not at the padding). This matches PyTorch's
``pack_padded_sequence(..., enforce_sorted=False)`` followed by ``pad_packed_sequence``.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import ops
from ..fused import checked_rnn_layer
from ..fused_proj import checked_lstm_proj_layer
from ..modes import NUM_GATES
from ..tensor import Tensor
from ..checks import as_tensor, check_dtype, check_float, check_size
from .cells import check_init_options, elman_mode, gru_mode, init_gate_parameters, make_gate_parameters
from .module import Module, Parameter


def _stack_states(states: list[Tensor]) -> Tensor:
    """L*D states (B, H) -> (L*D, B, H). A single state is reshaped: one cheaper tape node than a
    stack, which matters for a small layer (T100 B1 H64 runs in well under a millisecond)."""
    return states[0].reshape(1, *states[0].shape) if len(states) == 1 else ops.stack(states, 0)


class RNNBase(Module):
    """The shared implementation of :class:`RNN`, :class:`LSTM` and :class:`GRU`.

    ``forward(input, hx=None, lengths=None)``:

    * ``input``: (T, B, I), or (B, T, I) with ``batch_first``, or unbatched (T, I); a Tensor or
      ndarray of the module's ``dtype`` (its parameters', so float64 after ``.double()``), in
      either byte order (a non-native one is copied to native).
    * ``hx``: the initial state (L*D, B, H) (unbatched: (L*D, H)); for LSTM a pair ``(h0, c0)``.
      None means zeros.
    * ``lengths``: None (every sequence has T steps) or (B,) ints in [0, T] (see the module doc).

    Returns ``(output, h_n)`` (LSTM: ``(output, (h_n, c_n))``), ``output`` (T, B, D*H) (batch
    first if ``batch_first``) holding the last layer's states, both directions concatenated on
    the last axis, and ``h_n``/``c_n`` (L*D, B, H) the final state of every layer and direction
    (index ``k*D + d``). ``T = 0`` gives an empty output and ``h_n = h0``, unbatched too (torch
    raises for T = 0); ``B = 0`` gives empty results. Dropout (probability ``dropout`` in
    [0, 1)) is applied to every layer's output except the last, in training mode only.
    """

    def __init__(self, mode: str, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: Any = np.float32, recurrent_init: str = "uniform", forget_bias: float | None = None,
                 reset_after: bool = True, proj_size: int = 0):
        super().__init__()
        owner = type(self).__name__
        mode = gru_mode(owner, mode, reset_after)
        self.mode, self.reset_after = mode, reset_after
        self.input_size = check_size(owner, "input_size", input_size, 0)
        self.hidden_size = check_size(owner, "hidden_size", hidden_size)
        self.proj_size = _check_proj_size(owner, mode, proj_size, self.hidden_size)
        self.num_layers = check_size(owner, "num_layers", num_layers)
        if isinstance(dropout, bool) or not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
            raise ValueError(f"{owner}: dropout: expected a number in [0, 1), got {dropout!r}")
        self.dropout = float(dropout)
        self.bias, self.batch_first, self.bidirectional = bool(bias), bool(batch_first), bool(bidirectional)
        dt = check_dtype(owner, dtype)
        check_init_options(owner, mode, recurrent_init, forget_bias)
        self.num_directions = 2 if self.bidirectional else 1
        gates = NUM_GATES[mode]
        state = self.proj_size or self.hidden_size  # the width of h (and of a layer's output per direction)
        for layer in range(self.num_layers):
            layer_input = self.input_size if layer == 0 else self.num_directions * state
            for suffix in self._suffixes(layer):
                make_gate_parameters(self, suffix, gates, layer_input, self.hidden_size, self.bias, dt, state)
                if self.proj_size:
                    self.register_parameter(f"weight_hr{suffix}", Parameter(np.empty((state, self.hidden_size), dt)))
        init_gate_parameters(self, mode, self.hidden_size, recurrent_init, forget_bias)

    @property
    def dtype(self) -> np.dtype:
        """The dtype of the parameters (so it follows ``.double()``/``.float()``/``.to()``): the
        input and ``hx`` must have it, and the zero initial state is made in it."""
        return self.weight_ih_l0.data.dtype

    def _suffixes(self, layer: int) -> list[str]:
        return [f"_l{layer}", f"_l{layer}_reverse"][:self.num_directions]

    def _layer_parameters(self, suffix: str) -> tuple[Tensor, Tensor, Tensor | None, Tensor | None]:
        return (getattr(self, f"weight_ih{suffix}"), getattr(self, f"weight_hh{suffix}"),
                getattr(self, f"bias_ih{suffix}", None), getattr(self, f"bias_hh{suffix}", None))

    def _run_layer(self, x: Tensor, suffix: str, h0: Any, c0: Any, lengths: np.ndarray | None,
                   reverse: bool) -> tuple[Tensor, ...]:
        """One (layer, direction): ``(y, h_n)``, LSTM ``(y, h_n, c_n)``."""
        w_ih, w_hh, b_ih, b_hh = self._layer_parameters(suffix)
        if self.proj_size:
            return checked_lstm_proj_layer(x, w_ih, w_hh, getattr(self, f"weight_hr{suffix}"), b_ih, b_hh, h0,
                                           c0, lengths, reverse)
        return checked_rnn_layer(self.mode, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths, reverse)

    # ------------------------------------------------------------------ argument checks
    def _check_input(self, input: Any) -> tuple[Tensor, bool]:  # noqa: A002
        owner = type(self).__name__
        x = as_tensor(owner, "input", input)
        if x.ndim not in (2, 3):
            raise ValueError(f"{owner}: input: expected 3 dimensions ((T, B, I), or (B, T, I) with "
                             f"batch_first) or 2 (unbatched (T, I)), got shape {x.shape}")
        if x.shape[-1] != self.input_size:
            raise ValueError(f"{owner}: input: expected input_size {self.input_size} features in the "
                             f"last dimension, got shape {x.shape}")
        check_float(owner, "input", x, self.dtype)
        batched = x.ndim == 3
        if not batched:
            x = x.reshape(x.shape[0], 1, x.shape[1])
        elif self.batch_first:
            x = x.transpose(0, 1)
        return x, batched

    def _check_state(self, name: str, value: Any, batch: int, batched: bool,
                     size: int | None = None) -> Tensor | np.ndarray:
        """The initial state ``hx`` (or ``hx[0]``/``hx[1]``) of ``size`` features (default H; P for a
        projected h)."""
        owner = type(self).__name__
        size = self.hidden_size if size is None else size
        shape = (self.num_layers * self.num_directions, batch, size)
        if value is None:
            return np.zeros(shape, self.dtype)
        t = as_tensor(owner, name, value)
        expected = shape if batched else (shape[0], shape[2])
        if t.shape != expected:
            size_name = "proj_size" if size != self.hidden_size else "hidden_size"
            raise ValueError(f"{owner}: {name}: expected shape {expected} (num_layers * num_directions, "
                             f"{'batch, ' if batched else ''}{size_name}), got {t.shape}")
        check_float(owner, name, t, self.dtype)
        return t if batched else t.reshape(shape)

    def _check_lengths(self, lengths: Any, T: int, B: int, batched: bool) -> np.ndarray | None:
        owner = type(self).__name__
        if lengths is None:
            return None
        if not batched:
            raise ValueError(f"{owner}: lengths: expected None for unbatched input, got {lengths!r}")
        array = np.asarray(lengths.data if isinstance(lengths, Tensor) else lengths)
        if array.dtype.kind not in "iu" and not (array.dtype.kind == "f" and array.size == 0):
            raise TypeError(f"{owner}: lengths: expected integers, got dtype {array.dtype}")
        if array.shape != (B,):
            raise ValueError(f"{owner}: lengths: expected shape ({B},) (one per sequence), got {array.shape}")
        if B and (array.min() < 0 or array.max() > T):
            raise ValueError(f"{owner}: lengths: expected values in [0, {T}], got min {array.min()} "
                             f"and max {array.max()}")
        return array.astype(np.int64)

    # ------------------------------------------------------------------ forward
    def forward(self, input: Any, hx: Any = None, lengths: Any = None) -> Any:  # noqa: A002
        x, batched = self._check_input(input)
        T, B = x.shape[:2]
        lstm = self.mode == "lstm"
        if lstm and hx is not None and not (isinstance(hx, (tuple, list)) and len(hx) == 2):
            raise TypeError(f"{type(self).__name__}: hx: expected a pair (h0, c0) or None, got {type(hx).__name__}")
        h0 = self._check_state("hx[0]" if lstm else "hx", hx[0] if lstm and hx is not None else hx, B, batched,
                               self.proj_size or self.hidden_size)
        c0 = self._check_state("hx[1]", None if hx is None else hx[1], B, batched) if lstm else None
        lengths = self._check_lengths(lengths, T, B, batched)
        h_n, c_n = [], []
        layer_input = x
        for layer in range(self.num_layers):
            outputs = []
            for direction, suffix in enumerate(self._suffixes(layer)):
                k = layer * self.num_directions + direction
                result = self._run_layer(layer_input, suffix, h0[k], None if c0 is None else c0[k], lengths,
                                         direction == 1)
                outputs.append(result[0])
                h_n.append(result[1])
                if lstm:
                    c_n.append(result[2])
            layer_input = outputs[0] if len(outputs) == 1 else ops.cat(outputs, 2)
            if self.dropout and self.training and layer < self.num_layers - 1:
                layer_input = ops.dropout(layer_input, self.dropout, True)
        output, states = layer_input, [_stack_states(h_n)] + ([_stack_states(c_n)] if lstm else [])
        if not batched:  # (explicit sizes: T may be 0)
            output = output.reshape(T, self.num_directions * (self.proj_size or self.hidden_size))
            states = [s.reshape(s.shape[0], s.shape[2]) for s in states]
        elif self.batch_first:
            output = output.transpose(0, 1)
        return output, (tuple(states) if lstm else states[0])

    def extra_repr(self) -> str:
        s = f"{self.input_size}, {self.hidden_size}"
        defaults = {"num_layers": 1, "bias": True, "batch_first": False, "dropout": 0.0, "bidirectional": False,
                    "reset_after": True, "proj_size": 0}
        for name, default in defaults.items():
            if getattr(self, name) != default:
                s += f", {name}={getattr(self, name)}"
        return s


def _check_proj_size(owner: str, mode: str, proj_size: Any, hidden_size: int) -> int:
    """``proj_size`` as an int in [0, hidden_size), 0 unless mode is lstm; else a clear error."""
    if isinstance(proj_size, bool) or not isinstance(proj_size, (int, np.integer)):
        raise TypeError(f"{owner}: proj_size: expected an int, got {type(proj_size).__name__}")
    if proj_size < 0:
        raise ValueError(f"{owner}: proj_size: expected an int >= 0 (0: no projection), got {proj_size}")
    if proj_size and mode != "lstm":
        raise ValueError(f"{owner}: proj_size: expected 0 for mode {mode!r} (only an LSTM projects its state), "
                         f"got {proj_size}")
    if proj_size >= hidden_size:
        raise ValueError(f"{owner}: proj_size: expected 0 or less than hidden_size = {hidden_size}, got {proj_size}")
    return int(proj_size)


class RNN(RNNBase):
    """Elman RNN: ``h_t = tanh(x_t W_ih^T + b_ih + h_{t-1} W_hh^T + b_hh)`` (or relu) per layer.

    Arguments as ``torch.nn.RNN`` plus ``dtype`` and ``recurrent_init`` ("uniform", PyTorch's
    U(-1/sqrt(H), 1/sqrt(H)), "orthogonal" for ``weight_hh``, or "identity": ``weight_hh = I`` and
    biases 0, the IRNN of Le, Jaitly and Hinton 2015, meant with ``nonlinearity="relu"``).
    ``nonlinearity`` is "tanh", "relu" or "sigmoid" (the lectures' Elman network; PyTorch has no
    such RNN, so its state dict loads into ``torch.nn.RNN`` but computes tanh there), all fused.
    See :class:`RNNBase` for ``forward``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, nonlinearity: str = "tanh",
                 bias: bool = True, batch_first: bool = False, dropout: float = 0.0,
                 bidirectional: bool = False, dtype: Any = np.float32, recurrent_init: str = "uniform"):
        mode = elman_mode("RNN", nonlinearity)
        self.nonlinearity = nonlinearity
        super().__init__(mode, input_size, hidden_size, num_layers, bias, batch_first,
                         dropout, bidirectional, dtype, recurrent_init)


class LSTM(RNNBase):
    """LSTM (gates i, f, g, o): ``c_t = f*c_{t-1} + i*g``, ``h_t = o*tanh(c_t)`` per layer.

    Arguments as ``torch.nn.LSTM`` plus ``dtype``, ``recurrent_init`` (see :class:`RNN`) and
    ``forget_bias``: None keeps PyTorch's init; a number sets the forget-gate slice of every
    ``bias_ih`` to it and of every ``bias_hh`` to 0. ``forward`` returns ``(output, (h_n, c_n))``;
    see :class:`RNNBase`.

    ``proj_size`` P (0 < P < hidden_size; 0, the default, projects nothing) is PyTorch's projected
    LSTM (Sak et al. 2014): ``h_t = (o * tanh(c_t)) W_hr^T`` with ``weight_hr_l{k}{suffix}`` (P, H),
    so h, ``h0``/``h_n`` (L*D, B, P) and the output (T, B, D*P) have P features while c stays H wide;
    ``weight_hh`` is (4H, P) and a layer k > 0 reads D*P features. Fused in C++ (forward and
    backward, float32/64, lengths, bidirectional, stacked); state dicts move both ways with torch.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 proj_size: int = 0, dtype: Any = np.float32, recurrent_init: str = "uniform",
                 forget_bias: float | None = None):
        super().__init__("lstm", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, recurrent_init, forget_bias, proj_size=proj_size)


class GRU(RNNBase):
    """GRU (gates r, z, n), in two variants named as Keras names them, both fused:

    * ``reset_after=True`` (the default; PyTorch's, cuDNN's, ONNX ``linear_before_reset=1``):
      ``n = tanh(W_in x + b_in + r * (W_hn h + b_hn))``;
    * ``reset_after=False`` (Cho et al. 2014, as the lectures write it; ONNX ``linear_before_reset=0``):
      ``n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)``;

    with ``r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)``, ``z`` likewise, and in BOTH variants
    ``h' = (1 - z) * n + z * h``: z is the share of the old state kept (PyTorch's convention; a deck
    that writes ``h' = z * n + (1 - z) * h`` names 1 - z what this one names z). The parameters have
    the same names and shapes in both, so a ``reset_after=False`` state dict loads into
    ``torch.nn.GRU`` but computes the other variant there.

    Arguments as ``torch.nn.GRU`` plus ``dtype``, ``recurrent_init`` (see :class:`RNN`) and
    ``reset_after``. See :class:`RNNBase` for ``forward``.
    """

    def __init__(self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
                 batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False,
                 dtype: Any = np.float32, recurrent_init: str = "uniform", reset_after: bool = True):
        super().__init__("gru", input_size, hidden_size, num_layers, bias, batch_first, dropout,
                         bidirectional, dtype, recurrent_init, reset_after=reset_after)
