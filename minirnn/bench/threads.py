"""Set every thread pool a contender uses to the same count, for the duration of a block.

Three pools matter: minirnn's kernels (OpenMP, ``_C.set_num_threads``), torch's intra-op pool
(``torch.set_num_threads``) and NumPy's own OpenBLAS (used by the NumPy reference; set through
threadpoolctl). The GEMM floor runs on the kernels' team (``_C.matmul``). The scipy-openblas32
library inside the kernels stays pinned to one thread: the kernels' OpenMP team owns the cores.
"""
from __future__ import annotations

import contextlib
import os
import sys
from typing import Any, Iterator

from .. import _C


def all_cores() -> int:
    """Cores this process may run on."""
    return len(os.sched_getaffinity(0))


def _numpy_blas() -> Any:
    """A threadpoolctl controller over NumPy's own OpenBLAS only (imported lazily: bench extra)."""
    import threadpoolctl
    controller = threadpoolctl.ThreadpoolController().select(user_api="blas")
    controller.lib_controllers = [c for c in controller.lib_controllers if "numpy" in c.filepath]
    return controller


@contextlib.contextmanager
def use_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` threads in minirnn, torch (when imported) and NumPy's BLAS."""
    if not isinstance(n, int) or n < 1:
        raise ValueError(f"use_threads: expected an int n >= 1, got {n!r}")
    torch = sys.modules.get("torch")
    saved_minirnn = _C.num_threads()
    saved_torch = torch.get_num_threads() if torch is not None else None
    _C.set_num_threads(n)
    if torch is not None:
        torch.set_num_threads(n)
    try:
        with _numpy_blas().limit(limits=n):
            yield
    finally:
        _C.set_num_threads(saved_minirnn)
        if torch is not None:
            torch.set_num_threads(saved_torch)
