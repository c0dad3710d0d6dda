"""Benchmarks: minirnn's fused layers against the same layer on the tape, the NumPy reference,
PyTorch's CPU layers and the GEMM floor, measured in one run on the same inputs.

Entry point: :func:`main` (``python -m minirnn bench``). See ``benchmarks/README.md``.
"""
from typing import Any


def __getattr__(name: str) -> Any:
    """``main``, imported on first use: the harness needs the compiled extension, and the modules
    the tests share with the benchmarks (``dynamic_models``) must import without it."""
    if name == "main":
        from .harness import main
        return main
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
