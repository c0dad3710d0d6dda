"""Shared fixtures for the tape tests."""
from __future__ import annotations

import numpy as np
import pytest

import minirnn


@pytest.fixture
def rng() -> np.random.Generator:
    """A fixed-seed generator so every test sees the same inputs on every run."""
    return np.random.default_rng(1234)


def leaf(array: np.ndarray) -> minirnn.Tensor:
    """A float64 leaf tensor that requires grad (what gradcheck needs)."""
    return minirnn.Tensor(np.asarray(array, dtype=np.float64), requires_grad=True)
