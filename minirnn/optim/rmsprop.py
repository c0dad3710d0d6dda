"""RMSprop (Hinton's lecture 6e; centered variant of Graves 2013) with momentum and weight decay."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor
from ..checks import check_number
from .optimizer import Optimizer, ParamsArg


class RMSprop(Optimizer):
    """RMSprop with the update of ``torch.optim.RMSprop``.

    With gradient g::

        g   <- g + wd * p
        v   <- alpha * v + (1 - alpha) * g^2
        a   <- alpha * a + (1 - alpha) * g           (centered only)
        s   <- sqrt(v - a^2) if centered else sqrt(v);   s <- s + eps
        b   <- mu * b + g / s;   p <- p - lr * b     (momentum mu > 0)
        p   <- p - lr * g / s                        (otherwise)
    """

    def __init__(self, params: ParamsArg, lr: float = 1e-2, alpha: float = 0.99, eps: float = 1e-8,
                 weight_decay: float = 0.0, momentum: float = 0.0, centered: bool = False):
        super().__init__(params, dict(lr=lr, alpha=alpha, eps=eps, weight_decay=weight_decay,
                                      momentum=momentum, centered=centered))

    def check_group(self, group: dict[str, Any]) -> None:
        super().check_group(group)
        check_number("alpha", group["alpha"], high=1.0)
        check_number("eps", group["eps"])
        check_number("weight_decay", group["weight_decay"])
        check_number("momentum", group["momentum"])

    def update(self, param: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        alpha = group["alpha"]
        if not state:
            state.update(step=0, square_avg=np.zeros_like(param.data))
            if group["momentum"] > 0:
                state["momentum_buffer"] = np.zeros_like(param.data)
            if group["centered"]:
                state["grad_avg"] = np.zeros_like(param.data)
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param.data
        square_avg = state["square_avg"]
        square_avg *= alpha
        square_avg += (1 - alpha) * grad * grad
        if group["centered"]:
            grad_avg = state["grad_avg"]
            grad_avg += (1 - alpha) * (grad - grad_avg)
            avg = np.sqrt(square_avg - grad_avg * grad_avg)
        else:
            avg = np.sqrt(square_avg)
        avg += group["eps"]
        if group["momentum"] > 0:
            buf = state["momentum_buffer"]
            buf *= group["momentum"]
            buf += grad / avg
            param.data -= group["lr"] * buf
        else:
            param.data -= group["lr"] * grad / avg
