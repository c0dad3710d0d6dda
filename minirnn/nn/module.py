"""``Module`` and ``Parameter``: the containers that hold a model's learnable state.

A :class:`Module` registers, in definition order, every :class:`Parameter`, buffer and
sub-module assigned to it as an attribute (``self.weight = Parameter(...)``), so that
:meth:`Module.named_parameters` can list them with dotted names (``"encoder.weight_ih_l0"``),
:meth:`Module.state_dict` can copy them out, and :meth:`Module.load_state_dict` can copy them
back -- including a PyTorch ``state_dict`` converted with ``{k: v.numpy() for k, v in ...}``.
"""
from __future__ import annotations

from collections import OrderedDict
from typing import Any, Callable, Iterator, Mapping, NamedTuple

import numpy as np

from ..checks import check_dtype
from ..tensor import Tensor


class Parameter(Tensor):
    """A Tensor that a :class:`Module` registers as learnable (``requires_grad=True`` by default)."""

    def __init__(self, data: Any, requires_grad: bool = True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()


class IncompatibleKeys(NamedTuple):
    """What ``load_state_dict(strict=False)`` could not match."""

    missing_keys: list[str]
    unexpected_keys: list[str]


def _state_array(name: str, value: Any) -> np.ndarray:
    """A state_dict value (ndarray, Tensor, or anything with ``__array__``) as a numeric ndarray."""
    if isinstance(value, Tensor):
        value = value.data
    try:
        array = np.asarray(value)
    except Exception as exc:  # e.g. a torch tensor that requires grad
        raise TypeError(f"load_state_dict: {name!r}: expected an ndarray or Tensor, got "
                        f"{type(value).__name__} ({exc})") from exc
    if array.dtype.kind not in "biuf":
        raise TypeError(f"load_state_dict: {name!r}: expected a numeric array, got dtype {array.dtype}")
    return array


class Module:
    """Base class of every layer and model.

    Subclasses call ``super().__init__()`` first, assign Parameters / sub-Modules / buffers as
    attributes, and implement ``forward``; calling the module calls ``forward``.
    """

    training: bool

    def __init__(self) -> None:
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        raise NotImplementedError(f"{type(self).__name__} does not implement forward()")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------------ registration
    def _require_init(self) -> None:
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before assigning "
                                 f"parameters, buffers or sub-modules")

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        """Register ``param`` (or a None placeholder, e.g. a disabled bias) under ``name``."""
        self._require_init()
        if param is not None and not isinstance(param, Parameter):
            raise TypeError(f"register_parameter({name!r}): expected a Parameter or None, got "
                            f"{type(param).__name__}")
        self._discard(name, keep=self._parameters)
        self._parameters[name] = self.__dict__[name] = param

    def register_buffer(self, name: str, array: np.ndarray | None, persistent: bool = True) -> None:
        """Register non-learnable state (an ndarray) that ``state_dict`` includes if ``persistent``."""
        self._require_init()
        if array is not None and not isinstance(array, np.ndarray):
            raise TypeError(f"register_buffer({name!r}): expected an ndarray or None, got "
                            f"{type(array).__name__}")
        self._discard(name, keep=self._buffers)
        self._buffers[name] = self.__dict__[name] = array
        if not persistent:
            self._non_persistent.add(name)

    def add_module(self, name: str, module: Module | None) -> None:
        """Register a sub-module under ``name`` (its parameters get the prefix ``name.``)."""
        self._require_init()
        if module is not None and not isinstance(module, Module):
            raise TypeError(f"add_module({name!r}): expected a Module or None, got {type(module).__name__}")
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"add_module: expected a non-empty name without '.', got {name!r}")
        self._discard(name, keep=self._modules)
        self._modules[name] = self.__dict__[name] = module

    def _discard(self, name: str, keep: dict[str, Any]) -> None:
        """Forget ``name`` everywhere except in ``keep`` (re-assigning there keeps its position)."""
        for registry in (self._parameters, self._buffers, self._modules):
            if registry is not keep:
                registry.pop(name, None)
        self._non_persistent.discard(name)
        self.__dict__.pop(name, None)

    def __setattr__(self, name: str, value: Any) -> None:
        if isinstance(value, Parameter):
            self.register_parameter(name, value)
        elif isinstance(value, Module):
            self.add_module(name, value)
        elif "_parameters" in self.__dict__ and name in self._parameters:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to parameter {name!r}: "
                                f"expected a Parameter or None")
            self._parameters[name] = self.__dict__[name] = None
        elif "_buffers" in self.__dict__ and name in self._buffers:
            if value is not None and not isinstance(value, np.ndarray):
                raise TypeError(f"cannot assign {type(value).__name__} to buffer {name!r}: "
                                f"expected an ndarray or None")
            self._buffers[name] = self.__dict__[name] = value
        elif "_modules" in self.__dict__ and name in self._modules:
            if value is not None:
                raise TypeError(f"cannot assign {type(value).__name__} to sub-module {name!r}: "
                                f"expected a Module or None")
            self._modules[name] = self.__dict__[name] = None
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name: str) -> Any:
        # Only called when normal lookup fails. Registered entries are mirrored in the instance
        # __dict__ (a failed lookup raises and catches an AttributeError, and a tree pays for
        # `self.weight` at every node), so this finds them only if the mirror was bypassed.
        for registry in ("_parameters", "_buffers", "_modules"):
            entries = self.__dict__.get(registry)
            if entries is not None and name in entries:
                return entries[name]
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def __delattr__(self, name: str) -> None:
        for registry in (self._parameters, self._buffers, self._modules):
            if name in registry:
                del registry[name]
                self.__dict__.pop(name, None)
                self._non_persistent.discard(name)
                return
        object.__delattr__(self, name)

    # ------------------------------------------------------------------ traversal
    def named_modules(self, prefix: str = "") -> Iterator[tuple[str, Module]]:
        """``(dotted name, module)`` for this module (name ``prefix``) and every descendant, once each."""
        seen: set[int] = set()
        stack: list[tuple[str, Module]] = [(prefix, self)]
        while stack:  # pre-order, children in registration order
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{k}" if name else k, m) for k, m in module._modules.items() if m is not None]
            stack.extend(reversed(children))

    def modules(self) -> Iterator[Module]:
        for _, module in self.named_modules():
            yield module

    def named_children(self) -> Iterator[tuple[str, Module]]:
        for name, module in self._modules.items():
            if module is not None:
                yield name, module

    def children(self) -> Iterator[Module]:
        for _, module in self.named_children():
            yield module

    def named_parameters(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, Parameter]]:
        """``(dotted name, Parameter)`` in registration order; a shared Parameter is listed once."""
        seen: set[int] = set()
        modules = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for module_name, module in modules:
            for name, param in module._parameters.items():
                if param is None or id(param) in seen:
                    continue
                seen.add(id(param))
                yield (f"{module_name}.{name}" if module_name else name), param

    def parameters(self, recurse: bool = True) -> Iterator[Parameter]:
        for _, param in self.named_parameters(recurse=recurse):
            yield param

    def named_buffers(self, prefix: str = "", recurse: bool = True) -> Iterator[tuple[str, np.ndarray]]:
        modules = self.named_modules(prefix) if recurse else iter([(prefix, self)])
        for module_name, module in modules:
            for name, buf in module._buffers.items():
                if buf is not None:
                    yield (f"{module_name}.{name}" if module_name else name), buf

    def buffers(self, recurse: bool = True) -> Iterator[np.ndarray]:
        for _, buf in self.named_buffers(recurse=recurse):
            yield buf

    # ------------------------------------------------------------------ modes and grads
    def train(self, mode: bool = True) -> Module:
        """Set ``.training`` on this module and all descendants (Dropout reads it); returns self."""
        if not isinstance(mode, bool):
            raise TypeError(f"train(): expected mode to be a bool, got {type(mode).__name__}")
        for module in self.modules():
            object.__setattr__(module, "training", mode)
        return self

    def eval(self) -> Module:
        """Same as ``train(False)``."""
        return self.train(False)

    def zero_grad(self) -> None:
        """Reset every parameter's ``.grad`` to None (gradients accumulate across backward calls)."""
        for param in self.parameters():
            param.grad = None

    def apply(self, fn: Callable[[Module], Any]) -> Module:
        """Call ``fn(module)`` on every descendant and then on this module (e.g. custom init); returns self."""
        for module in reversed(list(self.modules())):
            fn(module)
        return self

    def requires_grad_(self, requires_grad: bool = True) -> Module:
        for param in self.parameters():
            param.requires_grad_(requires_grad)
        return self

    # ------------------------------------------------------------------ state
    def _state_entries(self) -> Iterator[tuple[str, Module, str, np.ndarray]]:
        """``(dotted name, owner, local name, array)`` for every saved parameter and persistent buffer."""
        seen: set[int] = set()
        for module_name, module in self.named_modules():
            prefix = f"{module_name}." if module_name else ""
            for name, param in module._parameters.items():
                if param is not None and id(param) not in seen:
                    seen.add(id(param))
                    yield prefix + name, module, name, param.data
            for name, buf in module._buffers.items():
                if buf is not None and name not in module._non_persistent:
                    yield prefix + name, module, name, buf

    def state_dict(self) -> OrderedDict[str, np.ndarray]:
        """An ordered ``name -> ndarray`` copy of every parameter and persistent buffer."""
        return OrderedDict((name, array.copy()) for name, _, _, array in self._state_entries())

    def load_state_dict(self, state_dict: Mapping[str, Any], strict: bool = True) -> IncompatibleKeys:
        """Copy values from ``state_dict`` into this module's parameters and buffers, in place.

        Values may be ndarrays, Tensors or anything ``np.asarray`` accepts (a CPU torch tensor);
        each is cast to the dtype of the array it replaces and must have the same shape. With
        ``strict`` the key sets must match exactly; the error lists missing and unexpected keys.
        Nothing is modified unless every entry is valid.
        """
        if not isinstance(state_dict, Mapping):
            raise TypeError(f"load_state_dict: expected a mapping of name -> array, got "
                            f"{type(state_dict).__name__}")
        entries = list(self._state_entries())
        own = {name for name, *_ in entries}
        missing = [name for name, *_ in entries if name not in state_dict]
        unexpected = [key for key in state_dict if key not in own]
        if strict and (missing or unexpected):
            raise ValueError(f"load_state_dict for {type(self).__name__}: missing keys {missing}, "
                           f"unexpected keys {unexpected}")
        updates = []
        for name, _, _, target in entries:
            if name not in state_dict:
                continue
            value = _state_array(name, state_dict[name])
            if value.shape != target.shape:
                raise ValueError(f"load_state_dict: size mismatch for {name!r}: expected shape "
                                 f"{target.shape}, got {value.shape}")
            updates.append((target, value))
        for target, value in updates:
            np.copyto(target, value, casting="unsafe")
        return IncompatibleKeys(missing, unexpected)

    def to(self, dtype: Any) -> Module:
        """Convert every floating parameter, its gradient and floating buffer to ``dtype``, in place.

        The dtype is held only by the arrays: a module that reports one (the recurrent layers and
        cells' ``dtype``) reads it from its parameters, and an optimizer's state follows its
        parameters at the next step, so nothing else needs converting.
        """
        dt = check_dtype("Module.to", dtype)
        for module in self.modules():
            for param in module._parameters.values():
                if param is not None and param.data.dtype.kind == "f":
                    param.data = param.data.astype(dt, copy=False)
                    if param.grad is not None:
                        param.grad = param.grad.astype(dt, copy=False)
            for name, buf in module._buffers.items():
                if buf is not None and buf.dtype.kind == "f":
                    module._buffers[name] = module.__dict__[name] = buf.astype(dt, copy=False)
        return self

    def double(self) -> Module:
        return self.to(np.float64)

    def float(self) -> Module:
        return self.to(np.float32)

    # ------------------------------------------------------------------ printing
    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``Name(...)``; layers override it."""
        return ""

    def __repr__(self) -> str:
        lines = [f"({name}): " + repr(module).replace("\n", "\n  ")
                 for name, module in self._modules.items()]
        extra = self.extra_repr()
        if not lines:
            return f"{type(self).__name__}({extra})"
        body = "\n  ".join(([extra] if extra else []) + lines)
        return f"{type(self).__name__}(\n  {body}\n)"
