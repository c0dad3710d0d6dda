"""minirnn: train recurrent neural networks on the CPU.

A small reverse-mode autograd tape (:mod:`minirnn.autograd`, :class:`Tensor`) plus fused
C++/OpenMP kernels for Elman RNN, LSTM and GRU layers (:mod:`minirnn.nn`).
"""
import os

import scipy_openblas32  # noqa: F401  (loads libscipy_openblas before the extension needs it)

# libgomp reads its spin count once, when the extension loads it. Its default (300,000 rounds at
# every barrier) burns the cores another process on the same machine needs; 10,000 rounds and then
# sleep keeps a quiet machine's speed (benchmarks/README.md, "Under contention"). Set only for that
# load (not for torch's OpenMP, nor for child processes), and only when the user has set neither knob.
_SPIN_KNOBS = ("GOMP_SPINCOUNT", "OMP_WAIT_POLICY")
_own_spin_count = not any(knob in os.environ for knob in _SPIN_KNOBS)
if _own_spin_count:
    os.environ["GOMP_SPINCOUNT"] = "10000"
try:
    from . import _C  # noqa: F401
except ImportError as exc:  # the source tree shadows the installed package, or nothing was built
    raise ImportError(
        f"minirnn: the compiled extension minirnn._C was not found next to {__file__}. If this is a "
        "source checkout, install it for development with `pip install -e .` (see README.md), or run "
        "from outside the checkout so the installed package is imported.") from exc
finally:
    if _own_spin_count:
        del os.environ["GOMP_SPINCOUNT"]
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
