"""Optimizers and gradient clipping, with PyTorch's update rules and argument names."""
from .adam import Adam
from .clip import clip_grad_norm_, clip_grad_value_
from .optimizer import Optimizer
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "RMSprop", "clip_grad_norm_", "clip_grad_value_"]
