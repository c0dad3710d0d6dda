"""minirnn: train recurrent neural networks on the CPU.

A small reverse-mode autograd tape (:mod:`minirnn.autograd`, :class:`Tensor`) plus fused
C++/OpenMP kernels for Elman RNN, LSTM and GRU layers (:mod:`minirnn.nn`).
"""
import scipy_openblas32  # noqa: F401  (loads libscipy_openblas before the extension needs it)

try:
    from . import _C  # noqa: F401
except ImportError as exc:  # the source tree shadows the installed package, or nothing was built
    raise ImportError(
        f"minirnn: the compiled extension minirnn._C was not found next to {__file__}. If this is a "
        "source checkout, install it for development with `pip install -e .` (see README.md), or run "
        "from outside the checkout so the installed package is imported.") from exc
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
from . import functional  # noqa: F401

__version__ = "0.1.0"
