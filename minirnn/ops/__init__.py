"""Differentiable operations: ``Function`` pairs and the functions that apply them.

One file per family: arithmetic, pointwise, reduce, shape, indexing, join, nn_ops, losses, segment
(graph operations).
"""
from .arithmetic import add, div, linear, matmul, mul, neg, pow, sub  # noqa: F401
from .indexing import getitem  # noqa: F401
from .join import cat, concatenate, split, stack  # noqa: F401
from .losses import binary_cross_entropy_with_logits, cross_entropy, mse_loss  # noqa: F401
from .nn_ops import dropout, embedding, log_softmax, softmax  # noqa: F401
from .pointwise import cast, clip, exp, log, relu, sigmoid, softplus, tanh, where  # noqa: F401
from .reduce import max, mean, sum  # noqa: F401
from .segment import gather_rows, segment_sum  # noqa: F401
from .shape import permute, reshape, transpose  # noqa: F401
