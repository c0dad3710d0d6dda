"""Shared fixtures for the tape tests."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import minirnn
from minirnn import _extension

#: Whether these tests run from the source checkout. CI also runs them from a copy outside it,
#: against the installed wheel (.ci/run); then the tests that read the checkout's README.md,
#: docs/, examples/, benchmarks/ or csrc/ are left out: the two files that read it on import, and
#: the tests marked ``checkout``.
IN_CHECKOUT = (Path(__file__).resolve().parent.parent / "pyproject.toml").is_file()
collect_ignore = [] if IN_CHECKOUT else ["test_readme.py", "test_docs.py"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "checkout: reads files of the source checkout (not run from the wheel)")
    config.addinivalue_line("markers", "extension: needs the compiled extension minirnn._C (its kernels, or "
                            "a spy on them); skipped when it is absent or hidden by MINIRNN_NO_EXTENSION=1")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not IN_CHECKOUT:
        for item in items:
            if item.get_closest_marker("checkout"):
                item.add_marker(pytest.mark.skip(reason="reads the source checkout"))
    if _extension.C is None:  # the tape alone (.ci/run runs the whole suite so once)
        for item in items:
            if item.get_closest_marker("extension"):
                item.add_marker(pytest.mark.skip(reason="needs the compiled extension minirnn._C"))


@pytest.fixture
def rng() -> np.random.Generator:
    """A fixed-seed generator so every test sees the same inputs on every run."""
    return np.random.default_rng(1234)


def leaf(array: np.ndarray) -> minirnn.Tensor:
    """A float64 leaf tensor that requires grad (what gradcheck needs)."""
    return minirnn.Tensor(np.asarray(array, dtype=np.float64), requires_grad=True)
