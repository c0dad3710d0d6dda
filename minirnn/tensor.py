"""``Tensor``: a NumPy array plus what the tape needs to differentiate through it.

Methods and operators are spelled as in PyTorch (``x @ w``, ``x.tanh()``, ``x.sum(axis)``,
``x[idx]``); each one is a thin call into :mod:`minirnn.ops`, where the ``Function`` pairs live.
"""
from __future__ import annotations

import builtins
from typing import Any, Callable, Sequence

import numpy as np

from . import autograd
from .autograd import Hook, Node
from .modes import FLOAT_DTYPES


def _as_array(value: Any) -> np.ndarray:
    """Lists and Python scalars become float32; arrays (NumPy's, or anything with a ``dtype``,
    such as a torch tensor) keep their dtype."""
    if isinstance(value, Tensor):
        return value.data
    if isinstance(value, np.ndarray):
        return value
    try:
        array = np.asarray(value)
    except ValueError as exc:  # a ragged nested list
        raise ValueError(f"Tensor(): expected a rectangular nested list of numbers, got {type(value).__name__} "
                         f"with rows of different lengths ({exc})") from None
    if hasattr(value, "dtype") and array.dtype.kind in "biuf":
        return array
    if array.dtype.kind in "fiu" or array.size == 0:
        return array.astype(np.float32)
    if array.dtype.kind == "b":
        return array
    raise TypeError(f"Tensor(): expected numbers, a list of numbers or an ndarray, got {type(value).__name__} "
                    f"(dtype {array.dtype})")


class Tensor:
    """An n-dimensional array on the autograd tape.

    Attributes:
        data: the values, a NumPy array (float32 by default; float64 supported everywhere;
            integer and bool arrays are allowed for indices and masks but cannot require grad).
        requires_grad: whether backward() computes a gradient for this tensor.
        grad: after backward(), d loss / d self as a NumPy array of ``data``'s shape (leaves only).
    """

    __array_priority__ = 1000  # so ndarray <op> Tensor defers to Tensor's reflected operators
    # A Tensor is made per op: slots make that cheaper and keep the garbage collector's work small
    # (``__dict__`` stays, created only if someone sets an attribute of their own, as torch allows).
    __slots__ = ("data", "grad", "requires_grad", "_node", "_output_index", "_hooks", "__dict__", "__weakref__")

    def __init__(self, data: Any, requires_grad: bool = False):
        self.data: np.ndarray = _as_array(data)
        self.grad: np.ndarray | None = None
        self._node: Node | None = None
        self._output_index = 0
        self._hooks: list[Hook] | None = None
        self.requires_grad = False
        if requires_grad:
            self.requires_grad_(True)

    @classmethod
    def _from_op(cls, data: np.ndarray, node: Node | None, output_index: int) -> Tensor:
        t = cls.__new__(cls)
        t.data, t.grad, t._node, t._output_index, t._hooks = data, None, node, output_index, None
        t.requires_grad = node is not None
        return t

    # ------------------------------------------------------------------ autograd
    def requires_grad_(self, requires_grad: bool = True) -> Tensor:
        if requires_grad and self.data.dtype not in FLOAT_DTYPES:
            raise TypeError(f"only float32/float64 tensors can require gradients, got dtype {self.data.dtype}")
        self.requires_grad = requires_grad
        return self

    @property
    def is_leaf(self) -> bool:
        return self._node is None

    @property
    def grad_fn(self) -> Node | None:
        """The tape node that produced this tensor (None for leaves and under no_grad)."""
        return self._node

    def backward(self, grad: Any = None, retain_graph: bool = False) -> None:
        """Accumulate d self / d leaf into ``leaf.grad`` for every leaf that requires grad.

        ``grad`` defaults to 1 for a one-element tensor; otherwise it must have this shape.
        """
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require grad and has no graph "
                               "(did you create it under no_grad() or from detached inputs?)")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward(): grad can be implicit only for a one-element tensor, "
                                   f"this one has shape {self.data.shape}; pass grad=")
            seed = np.ones_like(self.data)
        else:
            try:
                seed = np.asarray(grad.data if isinstance(grad, Tensor) else grad, dtype=self.data.dtype)
            except (TypeError, ValueError):
                raise TypeError(f"backward(): expected grad to be numbers of shape {self.data.shape}, got "
                                f"{type(grad).__name__}") from None
            if seed.shape != self.data.shape:
                raise ValueError(f"backward(): grad has shape {seed.shape}, expected {self.data.shape}")
        autograd.run_backward(self, seed, retain_graph=retain_graph)

    def _accumulate(self, grad: np.ndarray, owned: bool = False) -> None:
        """Add ``grad`` into ``self.grad``; ``owned``: no one else holds ``grad`` (no copy needed)."""
        if self._hooks is not None:
            hooked = autograd.apply_hooks(self._hooks, grad)
            grad, owned = hooked, owned and hooked is grad
        if self.grad is None:
            self.grad = grad if owned else grad.copy()
        else:
            self.grad = self.grad + grad

    def register_hook(self, hook: Hook) -> None:
        """Call ``hook(grad)`` when this tensor's gradient is computed; a non-None return replaces it."""
        if not self.requires_grad:
            raise RuntimeError("register_hook(): this tensor does not require grad")
        if self._node is not None:
            self._node.add_output_hook(self._output_index, hook)
        elif self._hooks is None:
            self._hooks = [hook]
        else:
            self._hooks.append(hook)

    def register_post_accumulate_grad_hook(self, hook: Callable[[Tensor], None]) -> None:
        """Call ``hook(self)`` as soon as a backward has accumulated this leaf's whole gradient into
        ``.grad`` -- while backward goes on with the rest of the graph (data-parallel training starts
        sending a layer's gradients then). Leaves that require grad only, as in PyTorch."""
        if not self.requires_grad or self._node is not None:
            raise RuntimeError("register_post_accumulate_grad_hook(): expected a leaf that requires grad "
                               "(a parameter), got " + ("a tensor that does not require grad" if
                                                         not self.requires_grad else "the output of an op"))
        autograd._post_accumulate_hooks.setdefault(self, []).append(hook)

    def detach(self) -> Tensor:
        """The same values, cut from the graph (shares memory, requires_grad=False)."""
        return Tensor(self.data)

    def zero_grad(self) -> None:
        self.grad = None

    # ------------------------------------------------------------------ array-like
    @property
    def shape(self) -> tuple[int, ...]:
        return self.data.shape

    @property
    def dtype(self) -> np.dtype:
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    def __len__(self) -> int:
        return len(self.data)

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        if self.data.size != 1:
            raise ValueError(f"item(): only one-element tensors can be converted, got shape {self.data.shape}")
        return self.data.item()

    def astype(self, dtype: Any) -> Tensor:
        return ops.cast(self, dtype)

    def float(self) -> Tensor:
        return self.astype(np.float32)

    def double(self) -> Tensor:
        return self.astype(np.float64)

    def __repr__(self) -> str:
        grad = f", grad_fn=<{self._node.name}>" if self._node is not None else (
            ", requires_grad=True" if self.requires_grad else "")
        return f"Tensor({np.array2string(self.data, precision=4, threshold=20)}, dtype={self.data.dtype}{grad})"

    # ------------------------------------------------------------------ operators
    def __add__(self, other: Any) -> Tensor:
        return ops.add(self, other)

    def __radd__(self, other: Any) -> Tensor:
        return ops.add(other, self)

    def __sub__(self, other: Any) -> Tensor:
        return ops.sub(self, other)

    def __rsub__(self, other: Any) -> Tensor:
        return ops.sub(other, self)

    def __mul__(self, other: Any) -> Tensor:
        return ops.mul(self, other)

    def __rmul__(self, other: Any) -> Tensor:
        return ops.mul(other, self)

    def __truediv__(self, other: Any) -> Tensor:
        return ops.div(self, other)

    def __rtruediv__(self, other: Any) -> Tensor:
        return ops.div(other, self)

    def __neg__(self) -> Tensor:
        return ops.neg(self)

    def __pow__(self, exponent: Any) -> Tensor:
        return ops.pow(self, exponent)

    def __rpow__(self, base: Any) -> Tensor:
        return ops.pow(base, self)

    def __matmul__(self, other: Any) -> Tensor:
        return ops.matmul(self, other)

    def __rmatmul__(self, other: Any) -> Tensor:
        return ops.matmul(other, self)

    def __getitem__(self, index: Any) -> Tensor:
        return ops.getitem(self, index)

    # Comparisons return plain bool arrays wrapped in (non-differentiable) Tensors.
    def __lt__(self, other: Any) -> Tensor:
        return Tensor(self.data < _as_array(other))

    def __le__(self, other: Any) -> Tensor:
        return Tensor(self.data <= _as_array(other))

    def __gt__(self, other: Any) -> Tensor:
        return Tensor(self.data > _as_array(other))

    def __ge__(self, other: Any) -> Tensor:
        return Tensor(self.data >= _as_array(other))

    # ------------------------------------------------------------------ methods
    def sum(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.sum(self, axis, keepdims)

    def mean(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.mean(self, axis, keepdims)

    def max(self, axis: int | Sequence[int] | None = None, keepdims: bool = False) -> Tensor:
        return ops.max(self, axis, keepdims)

    def reshape(self, *shape: Any) -> Tensor:
        return ops.reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    def view(self, *shape: Any) -> Tensor:
        return self.reshape(*shape)

    def transpose(self, dim0: int = -2, dim1: int = -1) -> Tensor:
        return ops.transpose(self, dim0, dim1)

    @property
    def T(self) -> Tensor:
        return ops.permute(self, tuple(reversed(range(self.ndim))))

    def permute(self, *dims: Any) -> Tensor:
        return ops.permute(self, dims[0] if len(dims) == 1 and isinstance(dims[0], (tuple, list)) else dims)

    def exp(self) -> Tensor:
        return ops.exp(self)

    def log(self) -> Tensor:
        return ops.log(self)

    def tanh(self) -> Tensor:
        return ops.tanh(self)

    def sigmoid(self) -> Tensor:
        return ops.sigmoid(self)

    def relu(self) -> Tensor:
        return ops.relu(self)

    def softmax(self, axis: int = -1) -> Tensor:
        return ops.softmax(self, axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        return ops.log_softmax(self, axis)

    def clip(self, min: builtins.float | None = None, max: builtins.float | None = None) -> Tensor:  # noqa: A002
        return ops.clip(self, min, max)

    def split(self, split_size_or_sections: Any, axis: int = 0) -> tuple[Tensor, ...]:
        return ops.split(self, split_size_or_sections, axis)


# The ops import Tensor, so they are imported after it is defined; the methods above look
# ``ops`` up when they are called.
from . import ops  # noqa: E402
