"""Optimizers and gradient clipping, with PyTorch's update rules and argument names."""
from .adam import Adam  # noqa: F401
from .clip import clip_grad_norm_, clip_grad_value_  # noqa: F401
from .optimizer import Optimizer  # noqa: F401
from .rmsprop import RMSprop  # noqa: F401
from .sgd import SGD  # noqa: F401
