"""Argument checkers shared at minirnn's public boundary: ops, nn modules and optimizers.

Each returns the checked (or normalised) value or raises a TypeError/ValueError whose message
names the caller (``owner``/``op``), the argument and what was expected. Their message shapes
differ by layer, and tests match them: ops say ``"add(): expected a to be ..."``, modules
``"LSTM: hidden_size: expected ..."``, optimizers ``"Invalid lr: expected ..."``.
(:mod:`minirnn.reference` keeps its own ``rnn: ...`` checks of NumPy arrays.)
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .modes import FLOAT_DTYPES
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
