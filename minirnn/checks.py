"""Argument checkers shared at minirnn's public boundary: ops, nn modules and optimizers.

Each returns the checked (or normalised) value or raises a TypeError/ValueError whose message
names the caller (``owner``/``op``), the argument and what was expected. Their message shapes
differ by layer, and tests match them: ops say ``"add(): expected a to be ..."``, modules
``"LSTM: hidden_size: expected ..."``, optimizers ``"Invalid lr: expected ..."``, the fused
layers' NumPy arrays ``"rnn: w_hh: expected ..."``.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .modes import FLOAT_DTYPES, NUM_GATES
from .tensor import Tensor


# ---------------------------------------------------------------------------- ops
def check_tensor(op: str, name: str, value: Any, floating: bool = True) -> Any:
    """``value`` if it is a Tensor (of float dtype when ``floating``), else a clear TypeError."""
    if not isinstance(value, Tensor):
        raise TypeError(f"{op}(): expected {name} to be a minirnn.Tensor, got {type(value).__name__}")
    if floating and value.dtype.kind != "f":
        raise TypeError(f"{op}(): expected {name} to be a float32 or float64 tensor, got dtype {value.dtype}")
    return value


# ---------------------------------------------------------------------------- modules
def check_dtype(owner: str, dtype: Any) -> np.dtype:
    """``dtype`` as a float32/float64 np.dtype, else TypeError."""
    try:
        dt = np.dtype(dtype)
    except TypeError as exc:
        raise TypeError(f"{owner}: dtype: expected float32 or float64, got {dtype!r}") from exc
    if dt not in FLOAT_DTYPES:
        raise TypeError(f"{owner}: dtype: expected float32 or float64, got {dt}")
    return dt


def check_float_kind(owner: str, dtype: Any) -> np.dtype:
    """``dtype`` as an np.dtype of float kind, else TypeError (Linear's and Embedding's message)."""
    dt = np.dtype(dtype)
    if dt.kind != "f":
        raise TypeError(f"{owner}: expected a float dtype, got {dt}")
    return dt


def check_size(owner: str, name: str, value: Any, minimum: int = 1) -> int:
    """``value`` as an int >= ``minimum`` (a layer's size), else ValueError."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{owner}: {name}: expected an int >= {minimum}, got {value!r}")
    return int(value)


def check_count(name: str, value: Any) -> int:
    """A non-negative int layer size (Linear's, Embedding's), or TypeError/ValueError naming ``name``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name}: expected an int, got {type(value).__name__}")
    if value < 0:
        raise ValueError(f"{name}: expected a non-negative int, got {value}")
    return int(value)


def native_byte_order(owner: str, name: str, t: Tensor) -> Tensor:
    """``t``, or a copy in the machine's byte order if its data has the other one (an array read
    from a big-endian file): the kernels and the dtype checks work in native order. A tensor
    on the tape cannot be copied without cutting its gradient, so that one is a TypeError."""
    dt = t.data.dtype
    if dt.isnative:
        return t
    if t.requires_grad:
        raise TypeError(f"{owner}: {name}: expected native byte order for a tensor that requires grad, got "
                        f"dtype {dt.str!r} (non-native byte order); convert it first with "
                        f"x.data.astype(x.dtype.newbyteorder('='))")
    return Tensor(t.data.astype(dt.newbyteorder("=")))


def as_tensor(owner: str, name: str, value: Any) -> Tensor:
    """``value`` (a Tensor or an ndarray, in native byte order or not) as a Tensor in native byte
    order, else TypeError."""
    if isinstance(value, np.ndarray):
        value = Tensor(value)
    elif not isinstance(value, Tensor):
        raise TypeError(f"{owner}: {name}: expected a Tensor or ndarray, got {type(value).__name__}")
    return native_byte_order(owner, name, value)


def check_float(owner: str, name: str, t: Tensor, dtype: np.dtype) -> None:
    """TypeError unless ``t`` has ``dtype`` (the module's parameters')."""
    if t.dtype != dtype:
        raise TypeError(f"{owner}: {name}: expected dtype {dtype} (the module's parameters), got {t.dtype}")


# ---------------------------------------------------------------------------- optimizers
def check_number(name: str, value: Any, low: float = 0.0, high: float = math.inf,
                 high_inclusive: bool = True) -> None:
    """Raise ValueError unless ``low <= value <= high`` (``< high`` when not ``high_inclusive``)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
        raise TypeError(f"{name}: expected a number, got {type(value).__name__}")
    upper_ok = value <= high if high_inclusive else value < high
    if not (low <= value and upper_ok):
        bracket = "]" if high_inclusive else ")"
        raise ValueError(f"Invalid {name}: expected a value in [{low}, {high}{bracket}, got {value}")


# ---------------------------------------------------------------------------- fused layers' arrays
def check_array(name: str, a: object, shape: tuple[int, ...], dtype: np.dtype) -> None:
    """TypeError/ValueError unless ``a`` is an ndarray of ``shape`` and ``dtype`` (the dtype of x)."""
    if not isinstance(a, np.ndarray):
        raise TypeError(f"rnn: {name}: expected an ndarray, got {type(a).__name__}")
    if a.dtype != dtype:
        raise TypeError(f"rnn: {name}: expected dtype {dtype} (the dtype of x), got {a.dtype}")
    if a.shape != shape:
        raise ValueError(f"rnn: {name}: expected shape {shape}, got {a.shape}")


def _layer_sizes(mode: str, x: Any, w_hh: Any, w_hr: Any) -> tuple[int, int, int, int, int]:
    """``(T, B, I, H, R)`` of a layer's arguments (R, the width of h: H, or P when projected), after
    checking the mode, ``x`` and the ranks that define them."""
    if mode not in NUM_GATES:
        raise ValueError(f"rnn: mode: expected one of {sorted(NUM_GATES)}, got {mode!r}")
    if not isinstance(x, np.ndarray):
        raise TypeError(f"rnn: x: expected an ndarray, got {type(x).__name__}")
    if x.dtype not in FLOAT_DTYPES:
        raise TypeError(f"rnn: x: expected dtype float32 or float64, got {x.dtype}")
    if x.ndim != 3:
        raise ValueError(f"rnn: x: expected 3 dimensions (T, B, I), got shape {x.shape}")
    if not isinstance(w_hh, np.ndarray) or w_hh.ndim != 2:
        raise ValueError(f"rnn: w_hh: expected a 2-D ndarray (G*H, H), got "
                         f"{getattr(w_hh, 'shape', type(w_hh).__name__)}")
    if w_hr is not None and mode != "lstm":
        raise ValueError(f"rnn: w_hr: expected None for mode {mode!r}, got an array")
    if w_hr is not None and not (isinstance(w_hr, np.ndarray) and w_hr.ndim == 2 and 0 < w_hr.shape[0] < w_hr.shape[1]):
        raise ValueError(f"rnn: w_hr: expected a 2-D ndarray (P, H) with 0 < P < H, got "
                         f"{getattr(w_hr, 'shape', type(w_hr).__name__)}")
    T, B, I = x.shape
    H = w_hh.shape[1] if w_hr is None else w_hr.shape[1]
    return T, B, I, H, H if w_hr is None else w_hr.shape[0]


def check_forward_args(mode: str, x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray,
                       b_ih: np.ndarray | None, b_hh: np.ndarray | None, h0: np.ndarray,
                       c0: np.ndarray | None, lengths: np.ndarray | None, w_hr: np.ndarray | None = None) -> None:
    """Raise TypeError/ValueError naming the argument unless one fused layer's arrays agree.

    Checks the mode, ranks, shapes and dtypes (float32 or float64, all the same as ``x``),
    bias both-or-neither, ``c0`` present exactly for lstm, and ``lengths`` int64 (B,) in [0, T].
    ``w_hr`` (P, H), 0 < P < H, lstm only: the projected LSTM's (then ``w_hh`` is (4H, P), ``h0`` (B, P)).
    """
    T, B, I, H, R = _layer_sizes(mode, x, w_hh, w_hr)
    GH = NUM_GATES[mode] * H
    check_array("w_ih", w_ih, (GH, I), x.dtype)
    check_array("w_hh", w_hh, (GH, R), x.dtype)
    if w_hr is not None:
        check_array("w_hr", w_hr, w_hr.shape, x.dtype)
    if (b_ih is None) != (b_hh is None):
        raise ValueError("rnn: b_ih, b_hh: expected both or neither, got only one")
    if b_ih is not None:
        check_array("b_ih", b_ih, (GH,), x.dtype)
        check_array("b_hh", b_hh, (GH,), x.dtype)
    check_array("h0", h0, (B, R), x.dtype)
    if mode == "lstm":
        if c0 is None:
            raise ValueError("rnn: c0: expected an array (B, H) for mode 'lstm', got None")
        check_array("c0", c0, (B, H), x.dtype)
    elif c0 is not None:
        raise ValueError(f"rnn: c0: expected None for mode {mode!r}, got an array")
    if lengths is not None:
        check_array("lengths", lengths, (B,), np.dtype(np.int64))
        if lengths.size and (lengths.min() < 0 or lengths.max() > T):
            raise ValueError(f"rnn: lengths: expected values in [0, {T}], got "
                             f"min {lengths.min()} and max {lengths.max()}")
