"""Example 4: RNN_dt as the lecture writes it -- an irregularly sampled signal, forecast free-running.

Each series is ``x(t) = sin(w t + phi)`` (w ~ U(1, 3), phi ~ U(0, 2 pi) per series) observed at
random times, gaps ``t_i - t_{i-1} ~ U(0.05, 0.6)``. RNN_dt feeds the GRU the lecture's augmented
input ``{x_i, t_i - t_{i-1}}`` (the gap since the previous observation; 0 at the first). The
forecast of the next observation, at a known time t_{i+1}, reads the state and the gap to it:
``x_{i+1} ~ MLP([h_i; t_{i+1} - t_i])`` (one tanh layer: the gap turns the phase, which a linear
read-out cannot do). The baseline sees the values only: input ``{x_i}``, ``x_{i+1} ~ MLP(h_i)``. Same size, data and training (teacher forcing, one step ahead).

Then both forecast free-running: after reading the first 30 observations of a held-out series,
each prediction is fed back as the next input (with its gap, for RNN_dt) for 20 more steps.
The result is the MSE at each horizon (signal variance: 0.5), drawn into
examples/img/irregular_series.png by the full run (needs the ``plot`` extra).

    python examples/irregular_series.py [--quick]
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from _common import fit, new_figure, parse_quick, save_picture, seed
from minirnn import Tensor, cat, functional as F, nn, no_grad

PICTURE = Path(__file__).resolve().parent / "img" / "irregular_series.png"


def make(rng: np.random.Generator, batch: int, T: int) -> tuple[np.ndarray, np.ndarray]:
    """values x (T, B) at times t_0 < ... < t_{T-1}, gaps (T, B): gap[i] = t_i - t_{i-1}, gap[0] = 0."""
    gap = rng.uniform(0.05, 0.6, (T, batch))
    gap[0] = 0.0
    w, phi = rng.uniform(1, 3, batch), rng.uniform(0, 2 * np.pi, batch)
    return np.sin(w * np.cumsum(gap, 0) + phi).astype(np.float32), gap.astype(np.float32)


class Forecaster(nn.Module):
    def __init__(self, use_dt: bool, hidden: int):
        super().__init__()
        self.use_dt = use_dt
        self.gru = nn.GRU(2 if use_dt else 1, hidden)
        self.hidden_layer = nn.Linear(hidden + (1 if use_dt else 0), hidden)
        self.head = nn.Linear(hidden, 1)

    def forward(self, x: np.ndarray | Tensor, gap: np.ndarray, state: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Read x[0..k-1] (k, B) with their gaps (k + 1, B: one more, to the next observation);
        return the forecasts of x[1..k] (k, B) and the state."""
        k = x.shape[0]
        x = x if isinstance(x, Tensor) else Tensor(x)
        inputs = cat([x[..., None], Tensor(gap[:k, :, None])], -1) if self.use_dt else x[..., None]
        out, state = self.gru(inputs, state)  # out (k, B, H)
        features = cat([out, Tensor(gap[1:k + 1, :, None])], -1) if self.use_dt else out
        return self.head(self.hidden_layer(features).tanh()).reshape(k, x.shape[1]), state


def one_step_loss(model: Forecaster, x: np.ndarray, gap: np.ndarray) -> Tensor:
    """Teacher forcing: every observation but the last is read, every one but the first predicted."""
    return F.mse_loss(model(x[:-1], gap)[0], x[1:])


def free_running(model: Forecaster, x: np.ndarray, gap: np.ndarray, warm_up: int) -> np.ndarray:
    """Read x[:warm_up], then forecast x[warm_up:] (H, B), feeding each forecast back as the next input."""
    with no_grad():
        forecast, state = model(x[:warm_up], gap[:warm_up + 1])
        guesses = [forecast[-1:]]
        for i in range(warm_up, x.shape[0] - 1):
            forecast, state = model(guesses[-1], gap[i:i + 2], state)
            guesses.append(forecast)
    return np.concatenate([g.data for g in guesses])


def main(quick: bool = False) -> dict[str, float]:
    T, steps, hidden = (20, 80, 16) if quick else (50, 2000, 48)
    warm_up, horizon = (10, 5) if quick else (30, 20)
    test_x, test_gap = make(np.random.default_rng(5), 500, warm_up + horizon)
    result, curves = {}, {}
    for name, use_dt in [("RNN_dt", True), ("without dt", False)]:
        rng = seed(0)
        model = Forecaster(use_dt, hidden)
        fit(lambda i: one_step_loss(model, *make(rng, 32, T)), model.parameters(), steps, lr=3e-3, desc=name)
        with no_grad():
            result[f"{name}: one step"] = one_step_loss(model, test_x, test_gap).item()
        curves[name] = ((free_running(model, test_x, test_gap, warm_up) - test_x[warm_up:]) ** 2).mean(1)
        result[f"{name}: free-running, {horizon} steps"] = float(curves[name].mean())
        print(f"irregular series: {name:10s} held-out MSE one step ahead {result[f'{name}: one step']:.4f}; "
              f"free-running at horizons 1/5/{horizon}: {curves[name][0]:.4f} / {curves[name][4]:.4f} / "
              f"{curves[name][-1]:.4f} (signal variance 0.5)")
    if not quick:
        draw(curves, PICTURE)
    return result


def draw(curves: dict[str, np.ndarray], path: Path) -> None:
    """MSE against the horizon, one line per model, if matplotlib (the ``plot`` extra) is installed."""
    fig = new_figure(figsize=(6, 4), layout="tight")
    if fig is None:
        return
    ax = fig.subplots()
    for name, mse in curves.items():
        ax.plot(np.arange(1, mse.size + 1), mse, marker="o", label=name)
    ax.axhline(0.5, color="gray", linestyle=":", label="signal variance")
    ax.set(xlabel="horizon (observations ahead, predictions fed back)", ylabel="held-out MSE", yscale="log",
           title="free-running forecast of an irregularly sampled sine")
    ax.legend()
    save_picture(fig, path)


if __name__ == "__main__":
    main(parse_quick(__doc__.split("\n")[0]))
