"""Example 2: long-term dependencies -- the adding problem (Hochreiter & Schmidhuber, 1997).

Each input step is a pair (value ~ U(0, 1), marker); exactly two steps are marked, one in each
half of the sequence, and the target is the sum of the two marked values. Predicting the mean
(1.0) gives MSE ~0.167, so a model "learns" only if its MSE falls well below that. Two experiments:

1. Cells, T = 50 (Adam, clipping): the information must survive ~25 steps. The Elman RNN's
   gradient vanishes over that distance, with either recurrent init, while the gated LSTM and GRU
   carry it. The IRNN (Le, Jaitly and Hinton 2015: a relu Elman RNN with W_hh = I and biases 0,
   ``recurrent_init="identity"``) starts out carrying its state unchanged.
2. Elman RNN, T = 30 (SGD with momentum 0.9, lr 0.03, as in Pascanu et al. 2013): uniform vs
   orthogonal recurrent init, each with and without gradient-norm clipping (max norm 1). The
   largest gradient norm seen shows the exploding gradients that clipping tames. (The IRNN is left
   out here: at this learning rate its relu recurrence blew up even with clipping, in one run of two.)

    python examples/adding_problem.py [--quick]
"""
from __future__ import annotations

import numpy as np

from _common import fit, parse_quick, seed
from minirnn import Tensor, functional as F, nn, no_grad, optim

BASELINE_MSE = 1 / 6  # Var(u1 + u2) for independent U(0, 1)


def make(rng: np.random.Generator, batch: int, T: int) -> tuple[np.ndarray, np.ndarray]:
    """x (T, B, 2) float32, y (B, 1): the sum of the two marked values."""
    x = np.zeros((T, batch, 2), np.float32)
    x[:, :, 0] = rng.random((T, batch))
    first, second = rng.integers(0, T // 2, batch), rng.integers(T // 2, T, batch)
    x[first, np.arange(batch), 1] = 1
    x[second, np.arange(batch), 1] = 1
    y = x[first, np.arange(batch), 0] + x[second, np.arange(batch), 0]
    return x, y[:, None]


class Regressor(nn.Module):
    def __init__(self, kind: str, hidden: int, recurrent_init: str = "uniform"):
        super().__init__()
        layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind.removeprefix("i")]
        extra = {"nonlinearity": "relu"} if kind == "irnn" else {}  # the IRNN: relu, with recurrent_init "identity"
        self.rnn = layer(2, hidden, recurrent_init=recurrent_init, **extra)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: np.ndarray) -> Tensor:
        out, _ = self.rnn(x)
        return self.head(out[-1])


EXPERIMENTS = {  # name: (T, steps, optimizer, its options, {variant: (cell, recurrent_init, max_norm)})
    "cells": (50, 1500, optim.Adam, {"lr": 3e-3}, {
        "rnn": ("rnn", "uniform", 1.0), "rnn orthogonal": ("rnn", "orthogonal", 1.0),
        "irnn": ("irnn", "identity", 1.0), "lstm": ("lstm", "uniform", 1.0), "gru": ("gru", "uniform", 1.0)}),
    "init and clipping": (30, 3000, optim.SGD, {"lr": 3e-2, "momentum": 0.9}, {
        "rnn": ("rnn", "uniform", 1.0), "rnn no-clip": ("rnn", "uniform", None),
        "rnn orthogonal": ("rnn", "orthogonal", 1.0), "rnn orthogonal no-clip": ("rnn", "orthogonal", None)}),
}


def main(quick: bool = False) -> dict[str, float]:
    """Test MSE of every variant of every experiment, keyed ``"<experiment>: <variant>"`` (nan: diverged)."""
    hidden = 16 if quick else 64
    result = {}
    for experiment, (T, steps, optimizer, options, variants) in EXPERIMENTS.items():
        T, steps = (10, 60) if quick else (T, steps)
        test_x, test_y = make(np.random.default_rng(123), 1000, T)
        settings = ", ".join(f"{k} {v}" for k, v in options.items())
        print(f"adding problem, {experiment}: T={T}, {optimizer.__name__} ({settings}), {steps} steps "
              f"(predicting the mean: MSE {BASELINE_MSE:.3f})")
        for name, (kind, recurrent_init, max_norm) in variants.items():
            rng = seed(0)
            model = Regressor(kind, hidden, recurrent_init)

            def loss_step(i: int) -> Tensor:
                x, y = make(rng, 32, T)
                return F.mse_loss(model(x), y)

            with np.errstate(over="ignore", invalid="ignore"):  # a run without clipping may diverge
                trace = fit(loss_step, model.parameters(), steps, max_norm=max_norm, desc=name,
                            optimizer=optimizer, **options)
                with no_grad():
                    mse = F.mse_loss(model(test_x), test_y).item()
            result[f"{experiment}: {name}"] = mse
            verdict = "" if np.isfinite(mse) else " (diverged)"
            print(f"  {name:24s} test MSE {mse:.4f}{verdict}   largest gradient norm {max(trace.grad_norms):.3g}")
    return result


if __name__ == "__main__":
    main(parse_quick(__doc__.split("\n")[0]))
