"""Differentiable operations: ``Function`` pairs and the functions that apply them."""
from .arithmetic import add, matmul, mul  # noqa: F401
