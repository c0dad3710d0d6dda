"""Stochastic gradient descent with momentum, dampening, Nesterov momentum and weight decay."""
from __future__ import annotations

from typing import Any

import numpy as np

from ..tensor import Tensor
from ..checks import check_number
from .optimizer import Optimizer, ParamsArg


class SGD(Optimizer):
    """SGD with the update of ``torch.optim.SGD`` (Sutskever et al. 2013 momentum form).

    With gradient g, parameter p, learning rate lr, weight decay wd, momentum mu, dampening d::

        g <- g + wd * p
        b <- g                      (first step)
        b <- mu * b + (1 - d) * g   (later steps)
        g <- g + mu * b  if nesterov else  b      (only when mu != 0)
        p <- p - lr * g
    """

    def __init__(self, params: ParamsArg, lr: float = 1e-3, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay: float = 0.0, nesterov: bool = False):
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def check_group(self, group: dict[str, Any]) -> None:
        super().check_group(group)
        check_number("momentum", group["momentum"])
        check_number("dampening", group["dampening"], high=1.0)
        check_number("weight_decay", group["weight_decay"])
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"Nesterov momentum: expected momentum > 0 and dampening = 0, got "
                             f"momentum={group['momentum']}, dampening={group['dampening']}")

    def update(self, param: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param.data
        momentum = group["momentum"]
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.copy()
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        param.data -= group["lr"] * grad
