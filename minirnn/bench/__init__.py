"""Benchmarks: minirnn's fused layers against the same layer on the tape, the NumPy reference,
PyTorch's CPU layers and the GEMM floor, measured in one run on the same inputs.

Entry point: :func:`main` (``python -m minirnn bench``). See ``benchmarks/README.md``.
"""
from .harness import main  # noqa: F401
