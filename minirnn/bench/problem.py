"""One benchmark problem: a recurrent layer's shape and seeded inputs, shared by every contender.

Legend: T time steps, B batch, I input features, H hidden units, G gates (1 Elman, 4 LSTM, 3 GRU).
Weights use PyTorch's names and layout (``weight_ih_l0`` (G*H, I), ``weight_hh_l0`` (G*H, H),
``bias_ih_l0`` / ``bias_hh_l0`` (G*H)), so the same arrays load into minirnn and torch layers.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..modes import NUM_GATES

#: The modes the harness compares, in table order.
MODES = ("lstm", "gru", "rnn_tanh")


@dataclass(frozen=True)
class Shape:
    """A layer size (T, B, I, H)."""

    T: int
    B: int
    I: int  # noqa: E741  (the legend's letter)
    H: int

    @property
    def label(self) -> str:
        return f"T{self.T} B{self.B} I{self.I} H{self.H}"

    def record(self, mode: str, **fields: Any) -> dict[str, Any]:
        """A JSON record of a measurement at this size: mode, T, B, I, H, then ``fields``."""
        return {"mode": mode, "T": self.T, "B": self.B, "I": self.I, "H": self.H, **fields}


#: The benchmark grid of (T, B, I=H): from a tiny layer (H 64, batch 1) to a large one (H 1024).
FULL_GRID = tuple(Shape(T, B, H, H) for T, B, H in
                  ((100, 1, 64), (50, 32, 128), (100, 64, 256), (50, 64, 512), (100, 16, 1024)))
#: A subset that spans small, medium and large hidden sizes within ~2 minutes.
QUICK_GRID = (FULL_GRID[0], FULL_GRID[1], FULL_GRID[3])


@dataclass
class Problem:
    """A layer's inputs: ``x`` (T, B, I), weights by PyTorch name, output grad ``dy`` (T, B, H),
    and ``lengths`` (B,) int64 or None (every sequence has T steps). ``proj_size`` P > 0: a projected
    LSTM (``weight_hh_l0`` (4H, P), ``weight_hr_l0`` (P, H), ``dy`` (T, B, P))."""

    mode: str
    shape: Shape
    x: np.ndarray
    weights: dict[str, np.ndarray]
    dy: np.ndarray
    lengths: np.ndarray | None = None
    proj_size: int = 0

    def forward_flops(self) -> float:
        """GEMM FLOPs of one forward pass: 2 T B G H (I + H) (projected: 2 T B (G H (I + P) + P H));
        backward does twice as many."""
        s, P = self.shape, self.proj_size
        if P:
            return 2.0 * s.T * s.B * (NUM_GATES[self.mode] * s.H * (s.I + P) + P * s.H)
        return 2.0 * s.T * s.B * NUM_GATES[self.mode] * s.H * (s.I + s.H)

    def flops(self, train: bool) -> float:
        """FLOPs of a training step (forward + backward, 3x the forward) or of inference."""
        return self.forward_flops() * (3.0 if train else 1.0)


def make_problem(mode: str, shape: Shape, seed: int = 0, varlen: bool = False,
                 weight_scale: float | None = None, constant_input: float | None = None,
                 proj_size: int = 0) -> Problem:
    """Seeded float32 inputs for one layer.

    Weights are uniform(-k, k) with k = ``weight_scale`` or PyTorch's default 1/sqrt(H); ``x`` is
    uniform(-1, 1) or filled with ``constant_input``; with ``varlen`` the lengths are uniform
    integers over [max(1, T // 10), T]. ``proj_size`` P > 0 (lstm): PyTorch's projected LSTM.
    """
    if mode not in NUM_GATES:
        raise ValueError(f"make_problem: expected mode in {sorted(NUM_GATES)}, got {mode!r}")
    rng = np.random.default_rng(seed)
    T, B, I, H = shape.T, shape.B, shape.I, shape.H
    GH = NUM_GATES[mode] * H
    k = weight_scale if weight_scale is not None else 1.0 / np.sqrt(H)

    def uniform(*dims: int, bound: float = k) -> np.ndarray:
        return rng.uniform(-bound, bound, dims).astype(np.float32)

    weights = {"weight_ih_l0": uniform(GH, I), "weight_hh_l0": uniform(GH, proj_size or H),
               "bias_ih_l0": uniform(GH), "bias_hh_l0": uniform(GH)}
    if proj_size:
        weights["weight_hr_l0"] = uniform(proj_size, H)
    x = uniform(T, B, I, bound=1.0) if constant_input is None else np.full((T, B, I), constant_input, np.float32)
    lengths = rng.integers(max(1, T // 10), T, size=B, endpoint=True).astype(np.int64) if varlen else None
    return Problem(mode, shape, x, weights, uniform(T, B, proj_size or H, bound=1.0), lengths, proj_size)
