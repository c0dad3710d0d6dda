"""minirnn: train recurrent neural networks on the CPU.

A small reverse-mode autograd tape (:mod:`minirnn.autograd`, :class:`Tensor`) plus fused
C++/OpenMP kernels for Elman RNN, LSTM and GRU layers (:mod:`minirnn.nn`).
"""
import scipy_openblas32  # noqa: F401  (loads libscipy_openblas before the extension needs it)

from . import _C  # noqa: F401
from .autograd import Function, enable_grad, is_grad_enabled, no_grad  # noqa: F401
from .gradcheck import gradcheck  # noqa: F401
from .tensor import Tensor  # noqa: F401
from . import ops  # noqa: F401

__version__ = "0.1.0"
from .random import manual_seed  # noqa: F401
from .profiler import profile  # noqa: E402,F401
from . import graph  # noqa: E402,F401
from . import init, nn, optim  # noqa: F401,E402
from .serialization import load, save  # noqa: F401,E402
from .ops import cat, concatenate, split, stack, where  # noqa: F401,E402
from . import functional  # noqa: F401,E402
