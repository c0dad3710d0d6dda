"""``Dropout``: zero activations at random while training (Srivastava et al. 2014)."""
from __future__ import annotations

import numpy as np

from .. import functional as F
from ..ops.nn_ops import check_dropout_p
from ..tensor import Tensor
from .module import Module


class Dropout(Module):
    """In training mode ``y = x * m / (1 - p)`` with m ~ Bernoulli(1 - p) per element (inverted
    dropout, so the expectation of y is x); in eval mode ``y = x``. Any shape in, same shape out.
    """

    def __init__(self, p: float = 0.5, generator: np.random.Generator | None = None):
        super().__init__()
        self.p = check_dropout_p("Dropout", p)
        self.generator = generator

    def forward(self, x: Tensor) -> Tensor:
        return F.dropout(x, self.p, self.training, generator=self.generator)

    def extra_repr(self) -> str:
        return f"p={self.p}"
