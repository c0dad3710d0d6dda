"""``Linear``: y = x W^T + b."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import init
from ..checks import check_count, check_float_kind, native_byte_order
from ..ops import linear
from ..tensor import Tensor
from .module import Module, Parameter


class Linear(Module):
    """Affine map over the last axis: ``y = x @ W^T + b``.

    Shapes: x ``(*, in_features)`` -> y ``(*, out_features)``; ``weight`` ``(out_features,
    in_features)``, ``bias`` ``(out_features,)`` (torch's layout, so its state_dict loads as is).
    Init as torch: W and b ~ U(-k, k) with k = 1/sqrt(in_features).
    """

    def __init__(self, in_features: int, out_features: int, bias: bool = True, dtype: Any = np.float32,
                 generator: np.random.Generator | None = None):
        super().__init__()
        self.in_features = check_count("in_features", in_features)
        self.out_features = check_count("out_features", out_features)
        dt = check_float_kind("Linear", dtype)
        bound = 1.0 / math.sqrt(in_features) if in_features else 0.0
        self.weight = Parameter(init.uniform_(np.empty((out_features, in_features), dt), -bound, bound, generator))
        if bias:
            self.bias = Parameter(init.uniform_(np.empty(out_features, dt), -bound, bound, generator))
        else:
            self.register_parameter("bias", None)

    def forward(self, x: Tensor) -> Tensor:
        if x.shape[-1:] != (self.in_features,):
            raise ValueError(f"Linear: expected input with last dimension {self.in_features}, got shape {x.shape}")
        if isinstance(x, Tensor) and not x.dtype.isnative:  # (a big-endian array, say)
            x = native_byte_order("Linear", "input", x)
        return linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"

