"""The functional namespace (like ``torch.nn.functional``): linear, activations, dropout, embedding, losses.

Each name is the tape op from :mod:`minirnn.ops`; see there for the math and shapes.
"""
from .ops import (binary_cross_entropy_with_logits, cross_entropy, dropout, embedding,  # noqa: F401
                  linear, log_softmax, mse_loss, relu, sigmoid, softmax, softplus, tanh)

__all__ = ["linear", "relu", "tanh", "sigmoid", "softplus", "softmax", "log_softmax", "dropout", "embedding",
           "cross_entropy", "mse_loss", "binary_cross_entropy_with_logits"]
