"""The package-wide random number generator behind init, Dropout and the data helpers.

Every function that draws random numbers takes an optional ``generator`` (a
``numpy.random.Generator``); without one it uses the default generator here, which
:func:`manual_seed` re-seeds so that a whole run is reproducible.
"""
from __future__ import annotations

import numpy as np

_default = np.random.default_rng()


def manual_seed(seed: int) -> np.random.Generator:
    """Re-seed the default generator (like ``torch.manual_seed``) and return it."""
    global _default
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"manual_seed: expected a non-negative int seed, got {seed!r}")
    _default = np.random.default_rng(int(seed))
    return _default


def default_generator() -> np.random.Generator:
    """The generator used when a caller passes no ``generator``."""
    return _default


def get_generator(generator: np.random.Generator | None = None) -> np.random.Generator:
    """``generator`` itself, or the default generator when it is None."""
    if generator is None:
        return _default
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"generator: expected a numpy.random.Generator or None, got "
                        f"{type(generator).__name__}")
    return generator
