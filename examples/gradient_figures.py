"""Example 10: the gradient figures the lectures draw, into docs/img/ (shown in docs/04-gradients.md).

1. ``gradient_heatmaps.png``: ||dL/dh_t|| at every time step t (x) over training (y), for an
   Elman cell, an LSTM and a GRU learning the same task: remember the sign of the first of T
   random inputs until the end, where the loss reads the final state. Measured on the tape with
   ``minirnn.analysis.hidden_grad_norms`` (a hook on every h_t) during the very backward that
   trains the cell.
2. ``power_norms.png``: ||W^n h|| against n for a random W scaled to spectral radius 0.9, 1 and
   1.1 -- the product of Jacobians BPTT multiplies, without the nonlinearity: vanishing below 1,
   exploding above.

Needs the ``plot`` extra (matplotlib).

    python examples/gradient_figures.py [--quick]
"""
from __future__ import annotations

import functools
from pathlib import Path
from typing import Callable

import numpy as np

from _common import parse_quick, seed
from minirnn import analysis, functional as F, nn, optim

OUT = Path(__file__).resolve().parent.parent / "docs" / "img"
# The LSTM's forget gates start open (bias 1, Jozefowicz et al. 2015): with bias 0 they start near
# 0.5 and halve the gradient at every step, and the LSTM learned nothing here at T = 20.
CELLS = {"Elman (tanh)": nn.RNNCell, "LSTM (forget bias 1)": functools.partial(nn.LSTMCell, forget_bias=1.0),
         "GRU": nn.GRUCell}


def make(rng: np.random.Generator, batch: int, T: int) -> tuple[np.ndarray, np.ndarray]:
    """inputs (T, B, 1) uniform in [-1, 1]; label (B, 1): 1 if the first input is positive."""
    x = rng.uniform(-1, 1, (T, batch, 1)).astype(np.float32)
    return x, (x[0] > 0).astype(np.float32)


def train_and_measure(cell_class: Callable[..., nn.Module], rng: np.random.Generator, T: int, hidden: int,
                      steps: int) -> tuple[np.ndarray, list[float]]:
    """Train ``cell_class`` + a linear head on the task; return ||dL/dh_t|| (steps, T) and the losses."""
    cell, head = cell_class(1, hidden), nn.Linear(hidden, 1)
    params = list(cell.parameters()) + list(head.parameters())
    opt = optim.Adam(params, lr=3e-3)
    norms, losses = np.zeros((steps, T)), []
    for i in range(steps):
        x, y = make(rng, 32, T)
        opt.zero_grad()
        loss_of = lambda hs: F.binary_cross_entropy_with_logits(head(hs[-1]), y)  # noqa: E731
        norms[i] = analysis.hidden_grad_norms(cell, x, lambda hs: _record(losses, loss_of(hs)))
        optim.clip_grad_norm_(params, 1.0)
        opt.step()
    return norms, losses


def _record(losses: list[float], loss):
    losses.append(loss.item())
    return loss


def power_norms(radius: float, n: int, size: int = 32) -> np.ndarray:
    """||W^k h|| / ||h|| for k = 0..n, W a random Gaussian matrix scaled to spectral radius ``radius``."""
    rng = np.random.default_rng(0)
    W = rng.standard_normal((size, size))
    W *= radius / analysis.spectral_radius(W)
    h = rng.standard_normal(size)
    out = [1.0]
    for _ in range(n):
        h_next = W @ h
        out.append(out[-1] * np.linalg.norm(h_next) / np.linalg.norm(h))
        h = h_next
    return np.array(out)


def draw(heatmaps: dict[str, np.ndarray], powers: dict[float, np.ndarray], out: Path) -> list[Path]:
    from matplotlib.figure import Figure
    out.mkdir(parents=True, exist_ok=True)
    fig = Figure(figsize=(11, 3.6), layout="constrained")
    axes = fig.subplots(1, len(heatmaps), sharey=True)
    logs = {name: np.log10(np.maximum(a, 1e-30)) for name, a in heatmaps.items()}
    lo, hi = min(v.min() for v in logs.values()), max(v.max() for v in logs.values())
    for ax, (name, image) in zip(axes, logs.items()):
        shown = ax.imshow(image, aspect="auto", origin="lower", cmap="viridis", vmin=max(lo, hi - 12), vmax=hi)
        ax.set(title=name, xlabel="time step t (the loss reads t = T)")
    axes[0].set_ylabel("training update")
    fig.colorbar(shown, ax=axes, label="log10 ||dL/dh_t||")
    paths = [out / "gradient_heatmaps.png", out / "power_norms.png"]
    fig.savefig(paths[0])
    fig = Figure(figsize=(6, 4), layout="tight")
    ax = fig.subplots()
    for radius, norms in powers.items():
        ax.plot(norms, label=f"spectral radius {radius}")
    ax.set(yscale="log", xlabel="n", ylabel="||W^n h|| / ||h||", title="the product of n recurrent Jacobians")
    ax.legend()
    fig.savefig(paths[1])
    return paths


def main(quick: bool = False, out: Path = OUT) -> dict[str, float]:
    T, hidden, steps, n = (12, 8, 30, 40) if quick else (30, 32, 1500, 100)
    heatmaps, result = {}, {}
    for name, cell_class in CELLS.items():
        seed(0)
        heatmaps[name], losses = train_and_measure(cell_class, np.random.default_rng(1), T, hidden, steps)
        result[f"{name}: first loss"], result[f"{name}: last loss"] = float(np.mean(losses[:10])), \
            float(np.mean(losses[-10:]))
        reach = heatmaps[name][-10:, 0] / heatmaps[name][-10:, -1]
        result[f"{name}: reach"] = float(np.median(reach))
        print(f"gradients, {name}: loss {result[f'{name}: first loss']:.3f} -> {result[f'{name}: last loss']:.3f} "
              f"(chance 0.693); ||dL/dh_1|| / ||dL/dh_T|| over the last 10 updates: {result[f'{name}: reach']:.2e}")
    powers = {r: power_norms(r, n) for r in (0.9, 1.0, 1.1)}
    for r, norms in powers.items():
        result[f"||W^{n} h||/||h||, radius {r}"] = float(norms[-1])
    print("gradients: ||W^n h|| / ||h|| at n = {}: ".format(n) +
          ", ".join(f"radius {r}: {v[-1]:.3g}" for r, v in powers.items()))
    try:
        print("figures: " + ", ".join(str(p) for p in draw(heatmaps, powers, out)))
    except ImportError as err:
        print(f"no figures drawn (install the plot extra): {err}")
    return result


if __name__ == "__main__":
    main(parse_quick(__doc__.split("\n")[0]))
