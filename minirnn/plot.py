"""Optional plots (the ``plot`` extra: ``pip install 'minirnn[plot]'``): loss curves and the
gradient-norm heatmap, written to image files.

matplotlib is imported only when a function here is called, and only its object-oriented
``Figure`` API is used: no pyplot state and no change of the user's backend.
"""
from __future__ import annotations

import os
from typing import Any, Mapping, Sequence

import numpy as np


def _figure() -> Any:
    """A new 6 x 4 inch matplotlib Figure; ImportError with the install hint when it is missing."""
    try:
        from matplotlib.figure import Figure
    except ImportError as exc:
        raise ImportError("minirnn.plot needs matplotlib, which is not installed: "
                          "pip install 'minirnn[plot]' (or pip install matplotlib)") from exc
    return Figure(figsize=(6, 4), layout="tight")


def loss_curves(curves: Mapping[str, Sequence[float]], path: str | os.PathLike[str],
                ylabel: str = "loss", title: str = "") -> None:
    """One line per named curve (x: update number), saved to ``path`` (PNG/SVG/PDF by suffix)."""
    if not curves:
        raise ValueError("curves: expected at least one named curve, got none")
    fig = _figure()
    ax = fig.subplots()
    for name, values in curves.items():
        ax.plot(np.arange(1, len(values) + 1), np.asarray(values, dtype=float), label=name)
    ax.set_xlabel("update")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    fig.savefig(path)


def gradient_heatmap(norms: Any, path: str | os.PathLike[str], title: str = "") -> None:
    """Heatmap of ``log10 ||dL/dh_t||``: ``norms`` (training steps, T), e.g. rows of
    :func:`minirnn.analysis.hidden_grad_norms` collected during training."""
    a = np.asarray(norms, dtype=float)
    if a.ndim != 2 or 0 in a.shape:
        raise ValueError(f"norms: expected a non-empty 2-D array (training steps, T), got shape {a.shape}")
    fig = _figure()
    ax = fig.subplots()
    image = ax.imshow(np.log10(np.maximum(a, 1e-30)), aspect="auto", origin="lower", cmap="viridis")
    ax.set_xlabel("time step t")
    ax.set_ylabel("training step")
    ax.set_title(title)
    fig.colorbar(image, ax=ax, label="log10 ||dL/dh_t||")
    fig.savefig(path)
