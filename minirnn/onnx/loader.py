"""``load``: an ONNX model back into minirnn, as an :class:`OnnxModule`.

The graph's layers become minirnn layers, whose parameters can be trained further:

* LSTM / GRU (``linear_before_reset`` 1: ``GRU()``, 0: ``GRU(reset_after=False)``) / RNN (Tanh, Relu or Sigmoid) nodes with constant weights ->
  ``nn.LSTM``/``nn.GRU``/``nn.RNN`` of one layer (both directions of the node), weights moved
  back to minirnn's gate order (see :mod:`minirnn.onnx._layout`);
* Gather from a constant float matrix -> ``nn.Embedding``;
* MatMul by a constant matrix (with the Add of a constant vector that follows it, if that is its
  only use) and Gemm with constant weights -> ``nn.Linear``.

Everything else runs as written, node by node, through :mod:`minirnn.onnx.glue` (Transpose,
Reshape, Slice, Concat, the activations, the shape arithmetic that ``torch.onnx.export`` emits).
An operator or attribute outside that subset is a :class:`~minirnn.onnx.UnsupportedError` naming
the node.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import numpy as np

from ..nn.embedding import Embedding
from ..nn.linear import Linear
from ..nn.module import Module
from ..nn.rnn import GRU, LSTM, RNN
from ..tensor import Tensor
from ._layout import FROM_ONNX, reorder_gates
from .glue import GLUE, Value
from .trace import UnsupportedError

_DEFAULT_ACTIVATIONS = {"LSTM": ["Sigmoid", "Tanh", "Tanh"], "GRU": ["Sigmoid", "Tanh"]}


class _Step:
    """One node to run: ``run(input values) -> output values``, by ONNX value name."""

    def __init__(self, inputs: list[str], outputs: list[str], run: Callable[[list[Value]], list[Value]]):
        self.inputs, self.outputs, self.run = inputs, outputs, run


class OnnxModule(Module):
    """A minirnn module running an ONNX graph: ``forward(*inputs)`` takes the graph inputs in
    order (ndarrays or Tensors) and returns its output, or a tuple of its outputs. The layers are
    registered sub-modules (``lstm0``, ``linear1``...), so ``parameters()``, ``state_dict()`` and
    the optimizers see them."""

    def __init__(self, input_names: list[str], output_names: list[str]):
        super().__init__()
        self.input_names, self.output_names = input_names, output_names
        self.constants: dict[str, np.ndarray] = {}
        self.steps: list[_Step] = []

    def forward(self, *inputs: Any) -> Any:
        if len(inputs) != len(self.input_names):
            raise TypeError(f"OnnxModule: expected {len(self.input_names)} inputs {self.input_names}, "
                            f"got {len(inputs)}")
        values: dict[str, Value] = {"": None, **self.constants, **dict(zip(self.input_names, inputs))}
        for step in self.steps:
            for name, value in zip(step.outputs, step.run([values[n] for n in step.inputs])):
                values[name] = value
        outputs = tuple(values[name] for name in self.output_names)
        return outputs[0] if len(outputs) == 1 else outputs


def _attributes(node: Any) -> dict[str, Any]:
    from onnx import helper
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _text(value: Any) -> Any:
    if isinstance(value, bytes):
        return value.decode()
    return [_text(v) for v in value] if isinstance(value, list) else value


class _Loader:
    """Walks the graph's nodes in order, turning each into a step of ``module``."""

    def __init__(self, proto: Any):
        from onnx import numpy_helper
        graph = proto.graph
        self.consts = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
        inputs = [v.name for v in graph.input if v.name not in self.consts]
        self.module = OnnxModule(inputs, [v.name for v in graph.output])
        self.uses: dict[str, int] = {}
        for node in graph.node:
            for name in node.input:
                self.uses[name] = self.uses.get(name, 0) + 1
        for name in self.module.output_names:
            self.uses[name] = self.uses.get(name, 0) + 1
        self.nodes = list(graph.node)
        self.skip: set[int] = set()

    def const(self, name: str) -> np.ndarray | None:
        return self.consts.get(name) if name else None

    def add_layer(self, kind: str, layer: Module) -> Module:
        count = sum(1 for name in self.module._modules if name.startswith(kind))
        self.module.add_module(f"{kind}{count}", layer)
        return layer

    def build(self) -> OnnxModule:
        from onnx import numpy_helper
        for index, node in enumerate(self.nodes):
            if index in self.skip:
                continue
            attrs = {k: _text(v) for k, v in _attributes(node).items()}
            if node.op_type == "Constant":
                if "value" not in attrs:
                    raise UnsupportedError(f"minirnn.onnx.load: node {node.name!r}: Constant: only 'value' is supported")
                self.consts[node.output[0]] = numpy_helper.to_array(attrs["value"])
                continue
            step = self._layer(index, node, attrs) or self._glue(node, attrs)
            self.module.steps.append(step)
        self.module.constants = self.consts
        return self.module

    def _glue(self, node: Any, attrs: dict[str, Any]) -> _Step:
        run = GLUE.get(node.op_type)
        if run is None:
            raise UnsupportedError(f"minirnn.onnx.load: node {node.name!r}: the operator {node.op_type} is not "
                                   f"supported; supported: LSTM, GRU, RNN, Gemm, {', '.join(sorted(GLUE))}")
        outputs = [n for n in node.output]
        if node.op_type == "Dropout" and len(outputs) > 1 and outputs[1]:
            raise UnsupportedError(f"minirnn.onnx.load: node {node.name!r}: Dropout's mask output is not supported")
        return _Step(list(node.input), outputs[:1] if node.op_type == "Dropout" else outputs,
                     lambda values: run(values, attrs))

    # ------------------------------------------------------------------ layers
    def _layer(self, index: int, node: Any, attrs: dict[str, Any]) -> _Step | None:
        op, inputs = node.op_type, list(node.input)
        if op in ("LSTM", "GRU", "RNN") and all(self.const(n) is not None for n in inputs[1:3]):
            return _recurrent_step(node, attrs, self)
        if op == "Gather" and attrs.get("axis", 0) == 0 and self._matrix(inputs[0]) and self.const(inputs[1]) is None:
            weight = self.consts[inputs[0]]
            layer = self.add_layer("embedding", Embedding(weight.shape[0], weight.shape[1], dtype=weight.dtype))
            layer.weight.data[...] = weight
            return _Step(inputs[1:], list(node.output), lambda v: [layer(np.asarray(getattr(v[0], "data", v[0])))])
        if op == "MatMul" and self._matrix(inputs[1]) and self.const(inputs[0]) is None:
            return self._linear(index, node, self.consts[inputs[1]], False)
        if op == "Gemm" and self._matrix(inputs[1]) and self.const(inputs[0]) is None:
            if attrs.get("alpha", 1.0) != 1.0 or attrs.get("beta", 1.0) != 1.0 or attrs.get("transA", 0):
                raise UnsupportedError(f"minirnn.onnx.load: node {node.name!r}: Gemm with alpha, beta or transA")
            return self._linear(index, node, self.consts[inputs[1]], bool(attrs.get("transB", 0)))
        return None

    def _matrix(self, name: str) -> bool:
        value = self.const(name)
        return value is not None and value.ndim == 2 and value.dtype.kind == "f"

    def _linear(self, index: int, node: Any, weight: np.ndarray, transposed: bool) -> _Step:
        """``x @ weight`` (Gemm: + C), plus a following Add of a constant vector that is the
        product's only use, as one ``Linear``."""
        weight = weight if transposed else weight.T  # -> (out_features, in_features)
        bias, outputs = self.const(node.input[2]) if len(node.input) > 2 else None, list(node.output)
        if bias is None and node.op_type == "MatMul":
            bias, outputs = self._bias_after(index, node.output[0], weight.shape[0]) or (None, outputs)
        layer = self.add_layer("linear", Linear(weight.shape[1], weight.shape[0], bias=bias is not None,
                                                dtype=weight.dtype))
        layer.weight.data[...] = weight
        if bias is not None:
            layer.bias.data[...] = np.broadcast_to(bias, (weight.shape[0],))
        return _Step(node.input[:1], outputs, lambda v: [layer(v[0] if isinstance(v[0], Tensor) else Tensor(v[0]))])

    def _bias_after(self, index: int, product: str, size: int) -> tuple[np.ndarray, list[str]] | None:
        if self.uses.get(product) != 1:
            return None
        for later in range(index + 1, len(self.nodes)):
            node = self.nodes[later]
            if product in node.input:
                other = [n for n in node.input if n != product]
                bias = self.const(other[0]) if node.op_type == "Add" and len(other) == 1 else None
                if bias is None or bias.size != size or bias.ndim != 1:
                    return None
                self.skip.add(later)
                return bias, list(node.output)
        return None


def _recurrent_step(node: Any, attrs: dict[str, Any], loader: _Loader) -> _Step:
    """An ONNX LSTM/GRU/RNN node as a one-layer minirnn module; its outputs Y (T, D, B, H),
    Y_h (D, B, H) (and LSTM's Y_c) from the module's (T, B, D*H) output and states."""
    op, name = node.op_type, node.name
    W, R = loader.consts[node.input[1]], loader.consts[node.input[2]]
    B = loader.const(node.input[3]) if len(node.input) > 3 else None
    direction, D = attrs.get("direction", "forward"), W.shape[0]
    mode = _recurrent_mode(op, name, attrs, direction)
    if len(node.input) > 7 and node.input[7]:
        raise UnsupportedError(f"minirnn.onnx.load: node {name!r}: LSTM peepholes (input P) are not supported")
    H = R.shape[-1]
    cls = {"LSTM": LSTM, "GRU": GRU, "RNN": RNN}[op]
    extra: dict[str, Any] = {"nonlinearity": mode[4:]} if op == "RNN" else {}
    if mode == "gru_reset_before":
        extra["reset_after"] = False
    layer = loader.add_layer(op.lower(), cls(W.shape[2], H, 1, bias=B is not None, bidirectional=D == 2,
                                             dtype=W.dtype, **extra))
    order, G = FROM_ONNX[mode], W.shape[1]
    for d, suffix in enumerate(["_l0", "_l0_reverse"][:D]):
        getattr(layer, f"weight_ih{suffix}").data[...] = reorder_gates(W[d], order)
        getattr(layer, f"weight_hh{suffix}").data[...] = reorder_gates(R[d], order)
        if B is not None:
            getattr(layer, f"bias_ih{suffix}").data[...] = reorder_gates(B[d, :G], order)
            getattr(layer, f"bias_hh{suffix}").data[...] = reorder_gates(B[d, G:], order)
    lstm = op == "LSTM"
    runtime = [node.input[i] if len(node.input) > i else "" for i in (0, 4, 5, 6)]

    def run(values: list[Value]) -> list[Value]:
        x, lens, h0, c0 = values
        T, batch = x.shape[0], x.shape[1]
        lengths = None if lens is None else np.asarray(getattr(lens, "data", lens)).astype(np.int64)
        if lstm:
            zeros = np.zeros((D, batch, H), W.dtype)
            hx = None if h0 is None and c0 is None else (zeros if h0 is None else h0, zeros if c0 is None else c0)
        else:
            hx = h0
        out, state = layer(x, hx, lengths)
        y = out.reshape(T, batch, D, H).permute(0, 2, 1, 3)
        return [y, *(state if lstm else (state,))]
    return _Step(runtime, list(node.output), run)


def _recurrent_mode(op: str, name: str, attrs: dict[str, Any], direction: str) -> str:
    """minirnn's mode for the node, or UnsupportedError naming what minirnn lacks."""
    def refuse(what: str) -> UnsupportedError:
        return UnsupportedError(f"minirnn.onnx.load: node {name!r}: {op} with {what} is not supported")
    if direction not in ("forward", "bidirectional"):
        raise refuse(f"direction={direction!r} (minirnn has forward and bidirectional)")
    if attrs.get("layout", 0) != 0 or attrs.get("clip") is not None or attrs.get("input_forget", 0):
        raise refuse("layout=1, clip or input_forget")
    activations = attrs.get("activations")
    if op == "RNN":
        kinds = set(activations or ["Tanh"])
        if kinds not in ({"Tanh"}, {"Relu"}, {"Sigmoid"}):
            raise refuse(f"activations={activations} (minirnn has Tanh, Relu or Sigmoid)")
        return f"rnn_{kinds.pop().lower()}"
    if activations is not None and activations != _DEFAULT_ACTIVATIONS[op] * (len(activations) // len(
            _DEFAULT_ACTIVATIONS[op])):
        raise refuse(f"activations={activations}")
    if op == "GRU" and attrs.get("linear_before_reset", 0) == 0:
        return "gru_reset_before"  # the reset gate before the recurrent product: GRU(reset_after=False)
    return op.lower()


def load(path: str | os.PathLike[str]) -> OnnxModule:
    """Read the ONNX model at ``path`` (from :func:`minirnn.onnx.export`, ``torch.onnx.export`` or
    another exporter using the same operators) as an :class:`OnnxModule` of minirnn layers.
    Opset 13 or later. Raises :class:`~minirnn.onnx.UnsupportedError` naming a node whose
    operator or attributes minirnn does not cover."""
    import onnx
    proto = onnx.load(os.fspath(path))
    opset = next((o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")), None)
    if opset is None or opset < 13:
        raise UnsupportedError(f"minirnn.onnx.load: expected opset 13 or later, got {opset}")
    return _Loader(proto).build()


