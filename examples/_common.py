"""What every example shares: the command line (``--quick``), seeding, and the training loop."""
from __future__ import annotations

import argparse
import sys
from typing import Callable, Iterable

import numpy as np

import minirnn
from minirnn import optim
from minirnn.tensor import Tensor


def parse_quick(description: str) -> bool:
    """``--quick``: the shortened run the tests use."""
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a shortened run (seconds, for the tests)")
    return p.parse_args().quick


def fit(loss_step: Callable[[int], Tensor], params: Iterable[Tensor], steps: int, lr: float = 3e-3,
        max_norm: float | None = 1.0, desc: str = "train") -> list[float]:
    """Adam on ``loss_step(i)`` (the loss of mini-batch i) for ``steps`` updates, with optional
    gradient-norm clipping; a tqdm bar on a terminal. Returns the loss of every update."""
    from tqdm import tqdm
    params = list(params)
    opt = optim.Adam(params, lr=lr)
    losses = []
    for i in tqdm(range(steps), desc=desc, disable=not sys.stderr.isatty(), leave=False):
        loss = loss_step(i)
        opt.zero_grad()
        loss.backward()
        if max_norm is not None:
            optim.clip_grad_norm_(params, max_norm)
        opt.step()
        losses.append(loss.item())
    return losses


def seed(n: int = 0) -> np.random.Generator:
    """Seed minirnn's default generator (init, dropout) and return a data generator."""
    minirnn.manual_seed(n)
    return np.random.default_rng(n + 1)
