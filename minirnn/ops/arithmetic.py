"""Elementwise arithmetic with NumPy broadcasting, and matrix multiplication.

Each op's forward and its local derivative sit side by side; broadcasting in forward is undone
by ``unbroadcast`` (a sum) in backward.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from .. import _extension
from ..autograd import Context, Function, LazyGrad
from ..modes import FLOAT_DTYPES
from ..tensor import Tensor
from ..checks import check_tensor
from ._util import check_broadcast, lift, unbroadcast

if _extension.C is not None:  # without it USE_KERNEL_GEMM is False and nothing here reaches _C
    from .. import _C


class Add(Function):
    """z = a + b;  dz/da = 1, dz/db = 1."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        _save_shapes_if_broadcast(ctx, a, b)
        return a + b

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a_shape, b_shape = getattr(ctx, "shapes", (grad.shape, grad.shape))
        return unbroadcast(grad, a_shape), unbroadcast(grad, b_shape)


def _save_shapes_if_broadcast(ctx: Context, a: np.ndarray, b: np.ndarray) -> None:
    """``ctx.shapes = (a.shape, b.shape)`` where they differ (backward sums the gradient back to
    them); same shapes need nothing kept, which spares the node an attribute dict (the garbage
    collector's work grows with every object a long graph keeps alive)."""
    if a.shape != b.shape:
        ctx.shapes = (a.shape, b.shape)


class Mul(Function):
    """z = a * b;  dz/da = b, dz/db = a."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a, b)
        return a * b

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        a, b = ctx.saved_tensors
        da = unbroadcast(grad * b, a.shape) if ctx.needs_input_grad[0] else None
        db = unbroadcast(grad * a, b.shape) if ctx.needs_input_grad[1] else None
        return da, db


# MatMul runs its 2-D GEMMs on the kernels' OpenMP team (_C.matmul) rather than numpy's own
# BLAS thread pool, whose spinning workers steal the cores from the fused kernels; False forces
# numpy everywhere (for A/B timing), and so does running without the extension.
USE_KERNEL_GEMM = _extension.C is not None


def _on_kernel_team(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether a product of ``a`` and ``b`` runs as _C.matmul: float32/float64 of one dtype (and
    USE_KERNEL_GEMM)."""
    return USE_KERNEL_GEMM and a.dtype == b.dtype and a.dtype in FLOAT_DTYPES


def _one_gemm(a: np.ndarray, b: np.ndarray) -> bool:
    """Whether a @ b is one 2-D GEMM _C.matmul runs: :func:`_on_kernel_team`, b 2-D, and a 2-D or
    a C-contiguous (..., K) that reshapes to (M, K) without a copy."""
    return _on_kernel_team(a, b) and b.ndim == 2 and (a.ndim == 2 or (a.ndim > 2 and a.flags.c_contiguous))


def _is_transposed(m: np.ndarray) -> bool:
    """Whether the 2-D array ``m`` is the transpose of a C-contiguous one (``W.T``)."""
    return not m.flags.c_contiguous and m.flags.f_contiguous


class MatMul(Function):
    """Z = A @ B (batched like np.matmul);  dA = dZ @ B^T, dB = A^T @ dZ."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError("matmul: both operands need at least 1 dimension, got shapes "
                             f"{a.shape} and {b.shape}")
        k_axis = -2 if b.ndim > 1 else 0  # b's contracted axis
        if a.shape[-1] != b.shape[k_axis]:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} do not align: expected "
                             f"a.shape[-1] == b.shape[{k_axis}], got {a.shape[-1]} and {b.shape[k_axis]}")
        ctx.save_for_backward(a, b)
        if _one_gemm(a, b):
            return _C.matmul(a.reshape(math.prod(a.shape[:-1]), a.shape[-1]), b).reshape(*a.shape[:-1], b.shape[1])
        return a @ b

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        a, b = ctx.saved_tensors
        if _one_gemm(a, b) and grad.dtype == a.dtype:
            # (M, K) @ (K, N) with M = prod(a.shape[:-1]): dA = dZ B^T, dB = A^T dZ, transposes as flags.
            m = math.prod(a.shape[:-1])
            a2, g2 = a.reshape(m, a.shape[-1]), grad.reshape(m, b.shape[1])
            da = _C.matmul(g2, b, transpose_b=True).reshape(a.shape) if ctx.needs_input_grad[0] else None
            db = None
            if ctx.needs_input_grad[1]:
                # b = W.T (a transposed view) gets (dZ^T A)^T: dW = dZ^T A comes out contiguous, W's layout.
                db = _C.matmul(g2, a2, transpose_a=True).T if _is_transposed(b) else _C.matmul(a2, g2, transpose_a=True)
            return da, db
        # Promote vectors to matrices so one formula covers every case, then undo it.
        a2 = a[None, :] if a.ndim == 1 else a
        b2 = b[:, None] if b.ndim == 1 else b
        g2 = grad
        if b.ndim == 1:
            g2 = np.expand_dims(g2, -1)
        if a.ndim == 1:
            g2 = np.expand_dims(g2, -2)
        da = db = None
        if ctx.needs_input_grad[0]:
            da = unbroadcast(g2 @ np.swapaxes(b2, -1, -2), a2.shape).reshape(a.shape)
        if ctx.needs_input_grad[1]:
            db = unbroadcast(np.swapaxes(a2, -1, -2) @ g2, b2.shape).reshape(b.shape)
        return da, db


class ProductGrad(LazyGrad):
    """A weight's gradient ``a^T b`` (a (M, N), b (M, K) -> (N, K)), not yet multiplied out.

    ``linear`` and the fused cell steps return their weight gradient this way. The engine sums a
    weight's T contributions with ONE GEMM over their stacked rows,
    ``sum_t a_t^T b_t = [a_1; ...; a_T]^T [b_1; ...; b_T]``, instead of T thin GEMMs that each
    write the whole (N, K) gradient (and T full-size additions).
    """

    __slots__ = ("a", "b")

    def __init__(self, a: np.ndarray, b: np.ndarray):
        self.a, self.b = a, b
        self.shape, self.dtype = (a.shape[1], b.shape[1]), a.dtype

    @property
    def nbytes(self) -> int:
        return self.a.nbytes + self.b.nbytes

    @staticmethod
    def add_all(grads: list[Any], out: np.ndarray) -> None:
        a = grads[0].a if len(grads) == 1 else np.concatenate([g.a for g in grads])  # (sum M, N)
        b = grads[0].b if len(grads) == 1 else np.concatenate([g.b for g in grads])  # (sum M, K)
        out += _gemm(a, b, transpose_a=True)

    def dense(self) -> np.ndarray:
        return _gemm(self.a, self.b, transpose_a=True)


class Linear(Function):
    """y = x W^T + b as one node (torch's addmm): x (..., K), W (N, K), b (N,) or None -> y (..., N).

    dx = dy W,  dW = dy^T x  (over all rows of x; returned as a :class:`ProductGrad`),
    db = dy summed over rows. W is read with a transpose flag, never copied.
    """

    @staticmethod
    def forward(ctx: Context, x: np.ndarray, weight: np.ndarray, bias: np.ndarray | None) -> np.ndarray:
        x2 = x if x.ndim == 2 else x.reshape(math.prod(x.shape[:-1]), x.shape[-1])  # (M, K) (M, not -1: K may be 0)
        y = _gemm(x2, weight, transpose_b=True)              # (M, N)
        if bias is not None:
            y += bias
        ctx.save_for_backward(x2, weight)
        ctx.x_shape = x.shape
        return y if x.ndim == 2 else y.reshape(*x.shape[:-1], weight.shape[0])

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple[np.ndarray | None, ProductGrad | None, np.ndarray | None]:
        x2, weight = ctx.saved_tensors
        g2 = grad.reshape(x2.shape[0], weight.shape[0])      # (M, N)
        need_x, need_w, need_b = ctx.needs_input_grad
        dx = _gemm(g2, weight).reshape(ctx.x_shape) if need_x else None
        dw = ProductGrad(g2, x2) if need_w else None
        db = g2.sum(axis=0) if need_b else None
        return dx, dw, db


def _gemm(a: np.ndarray, b: np.ndarray, transpose_a: bool = False, transpose_b: bool = False) -> np.ndarray:
    """op(a) @ op(b) for 2-D a and b of one dtype: on the kernels' team for float32/float64 (see
    USE_KERNEL_GEMM), else NumPy's."""
    if _on_kernel_team(a, b):
        return _C.matmul(a, b, transpose_a=transpose_a, transpose_b=transpose_b)
    return (a.T if transpose_a else a) @ (b.T if transpose_b else b)


class Sub(Function):
    """z = a - b;  dz/da = 1, dz/db = -1."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        _save_shapes_if_broadcast(ctx, a, b)
        return a - b

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a_shape, b_shape = getattr(ctx, "shapes", (grad.shape, grad.shape))
        return unbroadcast(grad, a_shape), unbroadcast(-grad, b_shape)


class Div(Function):
    """z = a / b;  dz/da = 1 / b, dz/db = -a / b^2 = -z / b."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        z = a / b
        ctx.save_for_backward(a, b, z)
        return z

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        a, b, z = ctx.saved_tensors
        da = unbroadcast(grad / b, a.shape) if ctx.needs_input_grad[0] else None
        db = unbroadcast(-grad * z / b, b.shape) if ctx.needs_input_grad[1] else None
        return da, db


class Neg(Function):
    """z = -a;  dz/da = -1."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        return -a

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        return -grad


class Pow(Function):
    """z = a ** b;  dz/da = b a^(b-1), dz/db = z ln a (only computed when b needs a gradient).

    A constant exponent (``x ** 2``) never needs a gradient, so ``ln a`` is not evaluated and
    negative bases are fine; with a tensor exponent the base must be positive where it matters.
    """

    @staticmethod
    def forward(ctx: Context, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        z = a ** b
        ctx.save_for_backward(a, b, z)
        return z

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> tuple[np.ndarray | None, np.ndarray | None]:
        a, b, z = ctx.saved_tensors
        da = unbroadcast(grad * b * a ** (b - 1), a.shape) if ctx.needs_input_grad[0] else None
        db = unbroadcast(grad * z * np.log(a), b.shape) if ctx.needs_input_grad[1] else None
        return da, db


# The functions users call: non-Tensor operands become constants of the other operand's dtype.
def _elementwise(function: type[Function], op: str, a: Any, b: Any) -> Tensor:
    """``function`` applied to ``a`` and ``b`` broadcast together (NumPy's rules)."""
    if not isinstance(b, Tensor):  # (lifted to a's dtype, so lifted first)
        b = lift(b, a)
    if not isinstance(a, Tensor):
        a = lift(a, b)
    try:
        return function.apply(a, b)
    except ValueError:
        check_broadcast(op, a.shape, b.shape)
        raise


def add(a: Any, b: Any) -> Tensor:
    return _elementwise(Add, "add", a, b)


def sub(a: Any, b: Any) -> Tensor:
    return _elementwise(Sub, "sub", a, b)


def mul(a: Any, b: Any) -> Tensor:
    return _elementwise(Mul, "mul", a, b)


def div(a: Any, b: Any) -> Tensor:
    return _elementwise(Div, "div", a, b)


def pow(a: Any, exponent: Any) -> Tensor:  # noqa: A001 - mirrors torch.pow
    """``a ** exponent`` elementwise; either may be a tensor or a Python number."""
    return _elementwise(Pow, "pow", a, exponent)


def neg(a: Any) -> Tensor:
    return Neg.apply(lift(a))


def linear(x: Tensor, weight: Tensor, bias: Tensor | None = None) -> Tensor:
    """``x @ weight.T + bias`` as one node: x (..., K), weight (N, K), bias (N,) or None -> (..., N).

    Like ``torch.nn.functional.linear``; the weight is never copied or transposed in memory.
    """
    if not _linear_args_fit(x, weight, bias):  # (checked in one go: a tree calls this at every node)
        _raise_linear_error(x, weight, bias)
    return Linear.apply(x, weight, bias)


def _linear_args_fit(x: Any, weight: Any, bias: Any) -> bool:
    if not (isinstance(x, Tensor) and isinstance(weight, Tensor) and (bias is None or isinstance(bias, Tensor))):
        return False
    xs, ws, dt = x.shape, weight.shape, x.dtype  # (not .data: x may be lazy, see minirnn.autobatch)
    return (len(ws) == 2 and len(xs) > 0 and xs[-1] == ws[1] and dt.kind == "f" and weight.dtype == dt
            and (bias is None or (bias.shape == ws[:1] and bias.dtype == dt)))


def _raise_linear_error(x: Any, weight: Any, bias: Any) -> None:
    """Raise the error that says what is wrong with ``linear``'s arguments."""
    for name, value in (("x", x), ("weight", weight)) + ((("bias", bias),) if bias is not None else ()):
        check_tensor("linear", name, value)
    if weight.ndim != 2:
        raise ValueError(f"linear(): expected weight of shape (out_features, in_features), got {weight.shape}")
    if x.ndim == 0 or x.shape[-1] != weight.shape[1]:
        raise ValueError(f"linear(): expected x of shape (..., {weight.shape[1]}) to match weight {weight.shape}, "
                         f"got {x.shape}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"linear(): expected bias of shape ({weight.shape[0]},), got {bias.shape}")
    for name, value in (("weight", weight), ("bias", bias)):
        if value is not None and value.dtype != x.dtype:
            raise TypeError(f"linear(): expected {name} to have x's dtype {x.dtype}, got {value.dtype}")
    raise TypeError(f"linear(): expected float tensors x (..., K), weight (N, K), bias (N,) or None, got "
                    f"{x.dtype} {x.shape}, {weight.dtype} {weight.shape}, {None if bias is None else bias.shape}")


def matmul(a: Any, b: Any) -> Tensor:
    """``a @ b`` like ``np.matmul``: 1-D operands are vectors, leading axes are broadcast batches."""
    return MatMul.apply(lift(a, b), lift(b, a))
