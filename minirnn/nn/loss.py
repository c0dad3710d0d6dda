"""Loss modules: thin wrappers that store options and call :mod:`minirnn.functional`."""
from __future__ import annotations

from typing import Any

from .. import functional as F
from ..ops.losses import REDUCTIONS
from ..tensor import Tensor
from .module import Module


class _Loss(Module):
    def __init__(self, reduction: str = "mean"):
        super().__init__()
        if reduction not in REDUCTIONS:
            raise ValueError(f"{type(self).__name__}: expected reduction in {REDUCTIONS}, got {reduction!r}")
        self.reduction = reduction

    def extra_repr(self) -> str:
        return f"reduction={self.reduction!r}" if self.reduction != "mean" else ""


class CrossEntropyLoss(_Loss):
    """``-log softmax(logits)[target]`` per sample, reduced by ``reduction``.

    Shapes: logits ``(N, C)``, target ``(N,)`` integer class ids; samples whose target equals
    ``ignore_index`` do not count (mean divides by the number that do).
    """

    def __init__(self, ignore_index: int = -100, reduction: str = "mean"):
        super().__init__(reduction)
        self.ignore_index = ignore_index

    def forward(self, logits: Tensor, target: Any) -> Tensor:
        return F.cross_entropy(logits, target, ignore_index=self.ignore_index, reduction=self.reduction)


class MSELoss(_Loss):
    """``(input - target)^2`` elementwise, reduced by ``reduction``; any matching shapes."""

    def forward(self, input: Tensor, target: Any) -> Tensor:  # noqa: A002
        return F.mse_loss(input, target, reduction=self.reduction)


class BCEWithLogitsLoss(_Loss):
    """``-[w y log sigmoid(x) + (1 - y) log(1 - sigmoid(x))]`` computed stably from logits x.

    ``pos_weight`` w (None: 1) weights the positive term, broadcast over the last dimension.
    """

    def __init__(self, reduction: str = "mean", pos_weight: Any = None):
        super().__init__(reduction)
        self.pos_weight = pos_weight

    def forward(self, logits: Tensor, target: Any) -> Tensor:
        return F.binary_cross_entropy_with_logits(logits, target, reduction=self.reduction,
                                                  pos_weight=self.pos_weight)
