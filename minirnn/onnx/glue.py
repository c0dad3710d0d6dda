"""The ONNX operators that :func:`minirnn.onnx.load` runs between layers, on minirnn Tensors.

Each takes the node's input values (a :class:`~minirnn.Tensor`, an ndarray for constants and
shape arithmetic, or None for a missing optional input) and its attributes, and returns its
output values. Tensor inputs go through minirnn's tape ops, so gradients flow through them;
ndarray-only inputs are computed with NumPy. Semantics are those of opset 13-17.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .. import ops
from ..tensor import Tensor

Value = Any  # Tensor | np.ndarray | None


def _ints(value: Value) -> list[int]:
    return [int(v) for v in np.asarray(value).ravel()]


def _shape_of(value: Value) -> tuple[int, ...]:
    return tuple(value.shape)


def _reshape(x: Value, shape: tuple[int, ...]) -> Value:
    return x.reshape(shape) if isinstance(x, Tensor) else np.reshape(x, shape)


def _array(x: Value) -> np.ndarray:
    return x.data if isinstance(x, Tensor) else np.asarray(x)


def _tensor(x: Value) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(np.asarray(x))


def reshape(inputs: list[Value], attrs: dict[str, Any]) -> list[Value]:
    x, shape = inputs[0], _ints(inputs[1])
    if not attrs.get("allowzero", 0):  # 0 copies the input's size at that axis
        shape = [x.shape[i] if s == 0 else s for i, s in enumerate(shape)]
    return [_reshape(x, tuple(shape))]


def _axes(inputs: list[Value], attrs: dict[str, Any], ndim: int) -> list[int]:
    axes = _ints(inputs[1]) if len(inputs) > 1 and inputs[1] is not None else attrs.get("axes", [])
    return [a % ndim for a in axes]


def squeeze(inputs: list[Value], attrs: dict[str, Any]) -> list[Value]:
    x = inputs[0]
    axes = _axes(inputs, attrs, len(x.shape)) or [i for i, n in enumerate(x.shape) if n == 1]
    return [_reshape(x, tuple(n for i, n in enumerate(x.shape) if i not in axes))]


def unsqueeze(inputs: list[Value], attrs: dict[str, Any]) -> list[Value]:
    x = inputs[0]
    ndim = len(x.shape) + len(_axes(inputs, attrs, 1 << 30))
    shape = list(x.shape)
    for axis in sorted(_axes(inputs, attrs, ndim)):
        shape.insert(axis, 1)
    return [_reshape(x, tuple(shape))]


def transpose(inputs: list[Value], attrs: dict[str, Any]) -> list[Value]:
    x = inputs[0]
    perm = list(attrs.get("perm", range(len(x.shape))[::-1]))
    return [ops.permute(x, perm) if isinstance(x, Tensor) else np.transpose(x, perm)]


def concat(inputs: list[Value], attrs: dict[str, Any]) -> list[Value]:
    parts = [v for v in inputs if v is not None]
    if any(isinstance(v, Tensor) for v in parts):
        return [ops.cat([_tensor(v) for v in parts], attrs["axis"])]
    return [np.concatenate(parts, axis=attrs["axis"])]


def slice_(inputs: list[Value], attrs: dict[str, Any]) -> list[Value]:
    x = inputs[0]
    starts, ends = _ints(inputs[1]), _ints(inputs[2])
    axes = _ints(inputs[3]) if len(inputs) > 3 and inputs[3] is not None else list(range(len(starts)))
    steps = _ints(inputs[4]) if len(inputs) > 4 and inputs[4] is not None else [1] * len(starts)
    index: list[slice] = [slice(None)] * len(x.shape)
    for start, end, axis, step in zip(starts, ends, axes, steps):
        size = x.shape[axis]
        index[axis] = slice(start, None if (step < 0 and end < -size) else min(end, size), step)
    return [x[tuple(index)]]


def gather(inputs: list[Value], attrs: dict[str, Any]) -> list[Value]:
    x, indices = inputs
    axis = attrs.get("axis", 0) % len(x.shape)
    index = (slice(None),) * axis + (_array(indices),)
    return [x[index]]


def shape(inputs: list[Value], attrs: dict[str, Any]) -> list[Value]:
    dims = _shape_of(inputs[0])
    return [np.array(dims[attrs.get("start", 0):attrs.get("end", len(dims))], dtype=np.int64)]


def constant_of_shape(inputs: list[Value], attrs: dict[str, Any]) -> list[Value]:
    from onnx import numpy_helper
    fill = numpy_helper.to_array(attrs["value"]) if "value" in attrs else np.zeros(1, np.float32)
    return [np.full(_ints(inputs[0]), fill.ravel()[0], dtype=fill.dtype)]


def expand(inputs: list[Value], attrs: dict[str, Any]) -> list[Value]:
    x, target = inputs[0], tuple(_ints(inputs[1]))
    out_shape = np.broadcast_shapes(_shape_of(x), target)
    if isinstance(x, Tensor):
        return [x + Tensor(np.zeros(out_shape, x.data.dtype))]
    return [np.broadcast_to(x, out_shape).copy()]


def cast(inputs: list[Value], attrs: dict[str, Any]) -> list[Value]:
    from onnx import helper
    dtype = helper.tensor_dtype_to_np_dtype(attrs["to"])
    x = inputs[0]
    if isinstance(x, Tensor):
        return [x if x.data.dtype == dtype else ops.cast(x, dtype)]
    return [np.asarray(x).astype(dtype)]


def _binary(numpy_op: Callable[[Any, Any], Any], tensor_op: Callable[[Any, Any], Any]) -> Callable[..., list[Value]]:
    def run(inputs: list[Value], attrs: dict[str, Any]) -> list[Value]:
        a, b = inputs
        if isinstance(a, Tensor) or isinstance(b, Tensor):
            return [tensor_op(a, b)]
        return [np.asarray(numpy_op(a, b)).astype(np.result_type(a, b))]
    return run


def _unary(op: Callable[[Tensor], Tensor]) -> Callable[..., list[Value]]:
    return lambda inputs, attrs: [op(_tensor(inputs[0]))]


def _softmax(op: Callable[..., Tensor]) -> Callable[..., list[Value]]:
    return lambda inputs, attrs: [op(_tensor(inputs[0]), attrs.get("axis", -1))]


def where(inputs: list[Value], attrs: dict[str, Any]) -> list[Value]:
    condition, a, b = inputs
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return [ops.where(np.asarray(condition), a, b)]
    return [np.where(condition, a, b)]


def _int_div(a: Any, b: Any) -> Any:
    a, b = np.asarray(a), np.asarray(b)
    return np.trunc(a / b) if a.dtype.kind in "iu" and b.dtype.kind in "iu" else a / b


#: ONNX operator -> its implementation.
GLUE: dict[str, Callable[[list[Value], dict[str, Any]], list[Value]]] = {
    "Reshape": reshape, "Squeeze": squeeze, "Unsqueeze": unsqueeze, "Transpose": transpose, "Concat": concat,
    "Slice": slice_, "Gather": gather, "Shape": shape, "ConstantOfShape": constant_of_shape, "Expand": expand,
    "Cast": cast, "Identity": lambda inputs, attrs: [inputs[0]],
    "Dropout": lambda inputs, attrs: [inputs[0]],  # inference: the identity (no mask output)
    "Add": _binary(np.add, lambda a, b: a + b), "Sub": _binary(np.subtract, lambda a, b: a - b),
    "Mul": _binary(np.multiply, lambda a, b: a * b), "Div": _binary(_int_div, lambda a, b: a / b),
    "MatMul": _binary(np.matmul, lambda a, b: _tensor(a) @ _tensor(b)),
    "Equal": lambda inputs, attrs: [np.equal(_array(inputs[0]), _array(inputs[1]))], "Where": where,
    "Tanh": _unary(ops.tanh), "Sigmoid": _unary(ops.sigmoid), "Relu": _unary(ops.relu), "Exp": _unary(ops.exp),
    "Log": _unary(ops.log), "Softplus": _unary(ops.softplus),
    "LogSoftmax": _softmax(ops.log_softmax), "Softmax": _softmax(ops.softmax),
}
