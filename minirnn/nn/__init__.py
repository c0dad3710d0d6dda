"""Neural-network building blocks: Module, Parameter, layers, losses."""
from .container import ModuleList, Sequential  # noqa: F401
from .linear import Linear  # noqa: F401
from .module import Module, Parameter  # noqa: F401
