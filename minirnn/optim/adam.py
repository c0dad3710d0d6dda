"""Adam (Kingma & Ba 2015) with optional L2 weight decay and AMSGrad."""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from ..tensor import Tensor
from ..checks import check_number
from .optimizer import Optimizer, ParamsArg


class Adam(Optimizer):
    """Adam with the update of ``torch.optim.Adam``.

    With gradient g at step t (counting from 1)::

        g   <- g + wd * p
        m   <- beta1 * m + (1 - beta1) * g
        v   <- beta2 * v + (1 - beta2) * g^2
        v^  <- max(v^, v) if amsgrad else v
        p   <- p - lr / (1 - beta1^t) * m / (sqrt(v^) / sqrt(1 - beta2^t) + eps)
    """

    def __init__(self, params: ParamsArg, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999),
                 eps: float = 1e-8, weight_decay: float = 0.0, amsgrad: bool = False):
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay,
                                      amsgrad=amsgrad))

    def check_group(self, group: dict[str, Any]) -> None:
        super().check_group(group)
        betas = group["betas"]
        if not isinstance(betas, tuple) or len(betas) != 2:
            raise ValueError(f"Invalid betas: expected a pair (beta1, beta2), got {betas!r}")
        check_number("beta1", betas[0], high=1.0, high_inclusive=False)
        check_number("beta2", betas[1], high=1.0, high_inclusive=False)
        check_number("eps", group["eps"])
        check_number("weight_decay", group["weight_decay"])

    def update(self, param: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        beta1, beta2 = group["betas"]
        if not state:
            state.update(step=0, exp_avg=np.zeros_like(param.data), exp_avg_sq=np.zeros_like(param.data))
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = np.zeros_like(param.data)
        state["step"] += 1
        if group["weight_decay"] != 0:
            grad = grad + group["weight_decay"] * param.data
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        exp_avg += (1 - beta1) * (grad - exp_avg)
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * grad * grad
        if group["amsgrad"]:
            second = np.maximum(state["max_exp_avg_sq"], exp_avg_sq, out=state["max_exp_avg_sq"])
        else:
            second = exp_avg_sq
        step_size = group["lr"] / (1 - beta1 ** state["step"])
        denom = np.sqrt(second) / math.sqrt(1 - beta2 ** state["step"]) + group["eps"]
        param.data -= step_size * exp_avg / denom
