"""The package-wide random number generator behind init, Dropout and the data helpers.

Every function that draws random numbers takes an optional ``generator`` (a
``numpy.random.Generator``); without one it uses the default generator here, which
:func:`manual_seed` re-seeds so that a whole run is reproducible.

Threads: ``manual_seed`` seeds the default generator of the thread that calls it. A thread that has
never called it draws from the main thread's. So one ``manual_seed`` in the main thread seeds a
program that builds its models in a worker as before, and threads that each call ``manual_seed``
before building their models get the same weights however the threads interleave (with one shared
generator, which draws came first would depend on the scheduler). NumPy's generators lock around
each draw, so sharing one between threads is safe, just not reproducible.
"""
from __future__ import annotations

import threading

import numpy as np


class _Defaults(threading.local):
    """The calling thread's own default generator, or None until it calls manual_seed."""

    generator: np.random.Generator | None = None


_main_thread_generator = np.random.default_rng()
_thread_generators = _Defaults()


def manual_seed(seed: int) -> np.random.Generator:
    """Re-seed the calling thread's default generator (like ``torch.manual_seed``) and return it.

    In the main thread this is also the generator of every thread that has not seeded its own.
    """
    global _main_thread_generator
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise TypeError(f"manual_seed: expected a non-negative int seed, got {seed!r}")
    generator = np.random.default_rng(int(seed))
    _thread_generators.generator = generator
    if threading.current_thread() is threading.main_thread():
        _main_thread_generator = generator
    return generator


def default_generator() -> np.random.Generator:
    """The generator used when a caller passes no ``generator`` (see the module docstring)."""
    own = _thread_generators.generator
    return _main_thread_generator if own is None else own


def get_generator(generator: np.random.Generator | None = None) -> np.random.Generator:
    """``generator`` itself, or the default generator when it is None."""
    if generator is None:
        return default_generator()
    if not isinstance(generator, np.random.Generator):
        raise TypeError(f"generator: expected a numpy.random.Generator or None, got "
                        f"{type(generator).__name__}")
    return generator
