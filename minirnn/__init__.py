"""minirnn: train recurrent neural networks on the CPU.

A small reverse-mode autograd tape (:mod:`minirnn.autograd`, :class:`Tensor`) plus fused
C++/OpenMP kernels for Elman RNN, LSTM and GRU layers (:mod:`minirnn.nn`).
"""
import os

# libgomp reads its spin count once, when the extension loads it. Its default (300,000 rounds at
# every barrier) burns the cores another process on the same machine needs; 10,000 rounds and then
# sleep keeps a quiet machine's speed (benchmarks/README.md, "Under contention"). Set only for that
# load (not for torch's OpenMP, nor for child processes), and only when the user has set neither knob.
_SPIN_KNOBS = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")
_own_spin_count = not any(knob in os.environ for knob in _SPIN_KNOBS)
if _own_spin_count:
    os.environ["GOMP_SPINCOUNT"] = "10000"
try:
    from . import _extension  # noqa: F401  (imports minirnn._C once, or warns that the tape runs on NumPy)
finally:
    if _own_spin_count:
        del os.environ["GOMP_SPINCOUNT"]
if _extension.C is not None:  # minirnn._C, also when a caller loaded its own build first (benchmarks/ab_builds.py)
    _C = _extension.C
from .autograd import Function, enable_grad, is_grad_enabled, no_grad  # noqa: F401
from .gradcheck import gradcheck  # noqa: F401
from .tensor import Tensor  # noqa: F401
from . import ops  # noqa: F401
from .random import manual_seed  # noqa: F401
from .profiler import profile  # noqa: F401
from . import graph  # noqa: F401
from . import init, nn, optim  # noqa: F401
from .serialization import load, save  # noqa: F401
from .ops import cat, concatenate, split, stack, where  # noqa: F401
from .ops import gather_rows, segment_sum  # noqa: F401
from . import functional  # noqa: F401
from .autobatch import autobatch  # noqa: F401

__version__ = "0.1.0"
