"""Neural-network building blocks: Module, Parameter, layers, losses."""
from .module import Module, Parameter  # noqa: F401
