"""Parameter initialisation, in place, with PyTorch's names and formulas (``torch.nn.init``).

Every function fills ``tensor`` (a :class:`~minirnn.Tensor` / Parameter or a float ndarray)
in place and returns it. Random draws are made in float64 from ``generator`` (default: the
generator re-seeded by :func:`minirnn.manual_seed`) and then cast, so float32 and float64
parameters get the same values for the same seed. Fans of a weight of shape
``(out, in, *kernel)``: ``fan_in = in * prod(kernel)``, ``fan_out = out * prod(kernel)``.
"""
from __future__ import annotations

import math
from typing import TypeVar

import numpy as np

from .random import get_generator
from .tensor import Tensor

T = TypeVar("T", Tensor, np.ndarray)

_LINEAR_GAINS = ("linear", "identity", "conv1d", "conv2d", "conv3d", "sigmoid")


def calculate_gain(nonlinearity: str, param: float | None = None) -> float:
    """The recommended scale for weights feeding ``nonlinearity`` (as ``torch.nn.init``).

    linear/identity/conv/sigmoid: 1;  tanh: 5/3;  relu: sqrt(2);
    leaky_relu: sqrt(2 / (1 + slope^2)) with slope ``param`` (default 0.01);  selu: 3/4.
    """
    if nonlinearity in _LINEAR_GAINS:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "selu":
        return 3.0 / 4
    if nonlinearity == "leaky_relu":
        slope = 0.01 if param is None else param
        if isinstance(slope, bool) or not isinstance(slope, (int, float)):
            raise TypeError(f"calculate_gain: expected param to be a number, got {type(slope).__name__}")
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ValueError(f"calculate_gain: expected nonlinearity in {_LINEAR_GAINS + ('tanh', 'relu', 'leaky_relu', 'selu')}, "
                     f"got {nonlinearity!r}")


def _array(tensor: Tensor | np.ndarray, fn: str) -> np.ndarray:
    """The float ndarray that ``fn`` fills in place."""
    array = tensor.data if isinstance(tensor, Tensor) else tensor
    if not isinstance(array, np.ndarray) or array.dtype.kind != "f":
        kind = f"dtype {array.dtype}" if isinstance(array, np.ndarray) else type(tensor).__name__
        raise TypeError(f"{fn}: expected tensor to be a float Tensor or ndarray, got {kind}")
    return array


def _fill(tensor: T, values: np.ndarray | float) -> T:
    array = tensor.data if isinstance(tensor, Tensor) else tensor
    array[...] = values
    return tensor


def _fans(array: np.ndarray, fn: str) -> tuple[int, int]:
    if array.ndim < 2:
        raise ValueError(f"{fn}: fan in and fan out need a tensor with at least 2 dimensions, "
                         f"got shape {array.shape}")
    receptive = int(np.prod(array.shape[2:]))
    return array.shape[1] * receptive, array.shape[0] * receptive


def uniform_(tensor: T, a: float = 0.0, b: float = 1.0, generator: np.random.Generator | None = None) -> T:
    """Fill with samples of U(a, b)."""
    array = _array(tensor, "uniform_")
    if not a <= b:
        raise ValueError(f"uniform_: expected a <= b, got a={a}, b={b}")
    return _fill(tensor, get_generator(generator).uniform(a, b, size=array.shape))


def normal_(tensor: T, mean: float = 0.0, std: float = 1.0, generator: np.random.Generator | None = None) -> T:
    """Fill with samples of N(mean, std^2)."""
    array = _array(tensor, "normal_")
    if not std >= 0:
        raise ValueError(f"normal_: expected std >= 0, got {std}")
    return _fill(tensor, get_generator(generator).normal(mean, std, size=array.shape))


def constant_(tensor: T, val: float) -> T:
    """Fill with ``val``."""
    _array(tensor, "constant_")
    return _fill(tensor, val)


def zeros_(tensor: T) -> T:
    """Fill with 0."""
    return constant_(tensor, 0.0)


def ones_(tensor: T) -> T:
    """Fill with 1."""
    return constant_(tensor, 1.0)


def xavier_uniform_(tensor: T, gain: float = 1.0, generator: np.random.Generator | None = None) -> T:
    """Glorot & Bengio (2010): U(-a, a) with a = gain * sqrt(6 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(_array(tensor, "xavier_uniform_"), "xavier_uniform_")
    bound = gain * math.sqrt(6.0 / (fan_in + fan_out))
    return uniform_(tensor, -bound, bound, generator)


def xavier_normal_(tensor: T, gain: float = 1.0, generator: np.random.Generator | None = None) -> T:
    """Glorot & Bengio (2010): N(0, std^2) with std = gain * sqrt(2 / (fan_in + fan_out))."""
    fan_in, fan_out = _fans(_array(tensor, "xavier_normal_"), "xavier_normal_")
    return normal_(tensor, 0.0, gain * math.sqrt(2.0 / (fan_in + fan_out)), generator)


def eye_(tensor: T) -> T:
    """Fill a 2-D tensor with the identity matrix (ones on the diagonal, zeros elsewhere), as
    ``torch.nn.init.eye_``; a non-square one gets the leading diagonal. The IRNN of Le, Jaitly and
    Hinton (2015) starts its ``weight_hh`` there (``recurrent_init="identity"`` in :mod:`minirnn.nn`)."""
    array = _array(tensor, "eye_")
    if array.ndim != 2:
        raise ValueError(f"eye_: expected a 2-D tensor, got shape {array.shape}")
    return _fill(tensor, np.eye(*array.shape))


def orthogonal_(tensor: T, gain: float = 1.0, generator: np.random.Generator | None = None) -> T:
    """Saxe et al. (2013): a (semi-)orthogonal matrix times ``gain``, as ``torch.nn.init.orthogonal_``.

    The tensor is viewed as ``rows = shape[0]`` by ``cols = size / rows``. Draw A ~ N(0, 1) of
    that shape (transposed when rows < cols), factor A = QR and flip the sign of each column of
    Q by sign(diag(R)) so the result is uniformly (Haar) distributed. Then W W^T = gain^2 I when
    rows <= cols, and W^T W = gain^2 I otherwise.
    """
    array = _array(tensor, "orthogonal_")
    if array.ndim < 2:
        raise ValueError(f"orthogonal_: expected a tensor with at least 2 dimensions, got shape {array.shape}")
    rows = array.shape[0]
    cols = array.size // rows if rows else 0
    if array.size == 0:
        return tensor
    a = get_generator(generator).standard_normal((rows, cols))
    if rows < cols:
        a = a.T
    q, r = np.linalg.qr(a)
    q *= np.sign(np.diag(r))
    if rows < cols:
        q = q.T
    return _fill(tensor, (gain * q).reshape(array.shape))
