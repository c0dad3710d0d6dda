"""Recording which layers a model calls, with what, while it runs its forward once.

:func:`record_calls` replaces, for the duration of one forward, the ``forward`` of every
supported layer in the model with one that records the call (its arguments, bound to the
parameter names, and its output), and the ``forward`` of every other minirnn layer with one that
raises: the exporter turns the recorded calls into ONNX nodes, and the tape (each Tensor's node)
tells it what the model's own code did between them (activations, softmax, transposes).
Containers and the user's own modules run unchanged: their forward is the chain being traced.
"""
from __future__ import annotations

import contextlib
import functools
import inspect
from dataclasses import dataclass
from typing import Any, Callable, Iterator

from ..nn.container import ModuleList
from ..nn.dropout import Dropout
from ..nn.embedding import Embedding
from ..nn.linear import Linear
from ..nn.module import Module
from ..nn.rnn import RNNBase

#: Layers the exporter translates, and what runs through unchanged.
SUPPORTED_LAYERS = (Embedding, Linear, Dropout, RNNBase)
SUPPORTED_TEXT = ("Embedding, Linear, Dropout (eval), RNN, LSTM, GRU, Sequential, and modules of your own whose "
                  "forward chains these with tanh, sigmoid, relu, softplus, exp, log, softmax, log_softmax, "
                  "transpose/permute")


class UnsupportedError(TypeError):
    """The model uses a layer or an operation that :func:`minirnn.onnx.export` cannot express."""


@dataclass
class Call:
    """One call of a supported layer: ``arguments`` by parameter name (defaults filled in)."""
    module: Module
    name: str
    arguments: dict[str, Any]
    output: Any


def _recording(module: Module, name: str, calls: list[Call]) -> Callable[..., Any]:
    forward = type(module).forward
    signature = inspect.signature(forward)

    @functools.wraps(forward)
    def record(*args: Any, **kwargs: Any) -> Any:
        bound = signature.bind(module, *args, **kwargs)
        bound.apply_defaults()
        output = forward(module, *args, **kwargs)
        arguments = dict(list(bound.arguments.items())[1:])  # without self
        if not any(output is value for value in arguments.values()):  # (Dropout in eval: the identity)
            calls.append(Call(module, name, arguments, output))
        return output
    return record


def _refusing(module: Module, name: str) -> Callable[..., Any]:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise UnsupportedError(f"minirnn.onnx.export: the module {name!r} ({type(module).__name__}) is not "
                               f"supported; supported: {SUPPORTED_TEXT}")
    return refuse


@contextlib.contextmanager
def record_calls(model: Module) -> Iterator[list[Call]]:
    """Within the block, calls of the supported layers of ``model`` are appended to the list it
    yields, in order, and calling any other minirnn layer raises :class:`UnsupportedError`."""
    calls: list[Call] = []
    wrapped: list[Module] = []
    try:
        for name, module in model.named_modules():
            label = name or type(module).__name__
            if isinstance(module, SUPPORTED_LAYERS):
                forward = _recording(module, label, calls)
            elif type(module).__module__.startswith("minirnn.nn.") and not isinstance(module, ModuleList):
                forward = _refusing(module, label)
            else:
                continue
            object.__setattr__(module, "forward", forward)  # an instance attribute, removed below
            wrapped.append(module)
        yield calls
    finally:
        for module in wrapped:
            del module.__dict__["forward"]
