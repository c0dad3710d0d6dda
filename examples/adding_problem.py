"""Example 2: long-term dependencies -- the adding problem (Hochreiter & Schmidhuber, 1997).

Each input step is a pair (value ~ U(0, 1), marker); exactly two steps are marked, one in each
half of the sequence, and the target is the sum of the two marked values. Predicting the mean
(1.0) gives MSE ~0.167, so a model "learns" only if its MSE falls well below that. The
information must survive ~T/2 steps: the Elman RNN's gradient vanishes over that distance while
the gated LSTM/GRU carry it. Also compared: an Elman RNN with orthogonal recurrent init, and
each Elman variant without gradient-norm clipping.

    python examples/adding_problem.py [--quick]
"""
from __future__ import annotations

import numpy as np

from _common import fit, parse_quick, seed
from minirnn import Tensor, functional as F, nn, no_grad

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
        layer = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}[kind]
        self.rnn = layer(2, hidden, recurrent_init=recurrent_init)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: np.ndarray) -> Tensor:
        out, _ = self.rnn(x)
        return self.head(out[-1])


VARIANTS = {  # name: (cell, recurrent_init, clip)
    "rnn": ("rnn", "uniform", 1.0), "rnn no-clip": ("rnn", "uniform", None),
    "rnn orthogonal": ("rnn", "orthogonal", 1.0), "rnn orthogonal no-clip": ("rnn", "orthogonal", None),
    "lstm": ("lstm", "uniform", 1.0), "gru": ("gru", "uniform", 1.0),
}


def main(quick: bool = False) -> dict[str, float]:
    T, steps, hidden = (20, 60, 16) if quick else (100, 1500, 64)
    test_x, test_y = make(np.random.default_rng(123), 1000, T)
    result = {}
    for name, (kind, recurrent_init, clip) in VARIANTS.items():
        rng = seed(0)
        model = Regressor(kind, hidden, recurrent_init)

        def loss_step(i: int) -> Tensor:
            x, y = make(rng, 32, T)
            return F.mse_loss(model(x), y)

        fit(loss_step, model.parameters(), steps, lr=1e-3, max_norm=clip, desc=name)
        with no_grad():
            result[name] = F.mse_loss(model(test_x), test_y).item()
        print(f"adding problem T={T}: {name:24s} test MSE {result[name]:.4f} "
              f"(predicting the mean: {BASELINE_MSE:.3f})")
    return result


if __name__ == "__main__":
    main(parse_quick(__doc__.split("\n")[0]))
