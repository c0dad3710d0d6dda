"""The compiled extension ``minirnn._C``, resolved once at import: the module, or None.

The tape needs only NumPy; the extension adds the fused C++ kernels (the layers' default backend,
the fused cell step), the GEMMs on the kernels' thread team and a one-pass sigmoid. Without it
minirnn still imports and trains, with ONE RuntimeWarning: matmul and sigmoid run on NumPy and the
fused layers on the NumPy reference backend (:mod:`minirnn.reference`), slowly. Setting the
environment variable ``MINIRNN_NO_EXTENSION=1`` hides a built extension the same way (CI runs the
tape tests so, to keep that path working).

Callers bind :data:`C` once, at their own import, so a call with the extension present costs what
it did before (no per-call lookup or branch beyond what was there).
"""
from __future__ import annotations

import os
import warnings
from types import ModuleType

#: The environment variable that hides a built extension ("1" hides it).
HIDE_VARIABLE = "MINIRNN_NO_EXTENSION"

_BUILD_HINT = (
    "If this is a source checkout, install it for development with `pip install -e .` (see README.md), "
    "or run from outside the checkout so the installed package is imported.")


def _load() -> tuple[ModuleType | None, str]:
    """``(minirnn._C, "")``, or ``(None, why it is absent)``."""
    if os.environ.get(HIDE_VARIABLE) == "1":
        return None, f"it is hidden by {HIDE_VARIABLE}=1."
    try:
        import scipy_openblas32  # noqa: F401  (loads libscipy_openblas before the extension needs it)
        from . import _C
    except ImportError as exc:  # the source tree shadows the installed package, or nothing was built
        return None, f"it was not found next to {os.path.dirname(__file__)} ({exc}). {_BUILD_HINT}"
    return _C, ""


C, _why_absent = _load()
if C is None:
    warnings.warn(
        f"minirnn: running without the compiled extension minirnn._C: {_why_absent} The autograd tape "
        "runs on NumPy alone (matmul and sigmoid in NumPy) and the fused RNN/LSTM/GRU layers use the "
        "slow NumPy reference backend; fused cells run their composed step.", RuntimeWarning, stacklevel=2)
