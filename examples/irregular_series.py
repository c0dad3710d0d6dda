"""Example 4: forecasting an irregularly sampled signal, with and without the time delta.

Each series is ``x(t) = sin(w t + phi)`` (w ~ U(1, 3), phi ~ U(0, 2 pi) per series) sampled at
random times: gaps ``dt ~ U(0.05, 0.6)``. At step k a GRU predicts the next sample x(t_{k+1}).
RNN_dt gets ``(x_k, dt_{k+1})`` -- the value
and how far ahead the target lies; the baseline gets ``x_k`` only and must guess the gap. Same
model size, data and training; the metric is the mean squared error on held-out series
(variance of the signal: 0.5).

    python examples/irregular_series.py [--quick]
"""
from __future__ import annotations

import numpy as np

from _common import fit, parse_quick, seed
from minirnn import Tensor, functional as F, nn, no_grad


def make(rng: np.random.Generator, batch: int, T: int) -> tuple[np.ndarray, np.ndarray]:
    """values x (T+1, B), gaps dt (T, B) with dt[k] = t_{k+1} - t_k."""
    dt = rng.uniform(0.05, 0.6, (T, batch))
    t = np.concatenate([np.zeros((1, batch)), np.cumsum(dt, 0)])
    w, phi = rng.uniform(1, 3, batch), rng.uniform(0, 2 * np.pi, batch)
    return np.sin(w * t + phi).astype(np.float32), dt.astype(np.float32)


class Forecaster(nn.Module):
    def __init__(self, use_dt: bool, hidden: int):
        super().__init__()
        self.use_dt = use_dt
        self.gru = nn.GRU(2 if use_dt else 1, hidden)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: np.ndarray, dt: np.ndarray) -> Tensor:
        """Predictions of x[1:], (T, B)."""
        features = np.stack([x[:-1], dt], -1) if self.use_dt else x[:-1, :, None]
        out, _ = self.gru(features)
        return self.head(out).reshape(x.shape[0] - 1, x.shape[1])


def main(quick: bool = False) -> dict[str, float]:
    T, steps, hidden = (20, 80, 16) if quick else (50, 1500, 48)
    test_x, test_dt = make(np.random.default_rng(5), 500, T)
    result = {}
    for name, use_dt in [("with dt (RNN_dt)", True), ("without dt", False)]:
        rng = seed(0)
        model = Forecaster(use_dt, hidden)

        def loss_step(i: int) -> Tensor:
            x, dt = make(rng, 32, T)
            return F.mse_loss(model(x, dt), x[1:])

        fit(loss_step, model.parameters(), steps, lr=3e-3, desc=name)
        with no_grad():
            result[name] = F.mse_loss(model(test_x, test_dt), test_x[1:]).item()
        print(f"irregular series: {name:17s} held-out MSE {result[name]:.4f} (signal variance 0.5)")
    return result


if __name__ == "__main__":
    main(parse_quick(__doc__.split("\n")[0]))
