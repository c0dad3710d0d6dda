"""``export``: a minirnn model to an ONNX file (opset 17).

How: the model runs its forward once on the example inputs, in eval mode, while
:func:`~minirnn.onnx.trace.record_calls` records every call of a supported layer. Then each of
the model's outputs is *resolved* to an ONNX value, walking backwards: a graph input is its name;
a layer's output becomes that layer's nodes (after resolving the layer's own inputs); any other
Tensor is the output of a tape node, whose Function (Tanh, LogSoftmax, Permute, ...) becomes one
ONNX node. Only what the outputs depend on is exported, in an order where inputs come first.

A recurrent layer of L layers becomes L ONNX LSTM/GRU/RNN nodes (one per layer, both directions
in one node), with ``layout=0`` (onnxruntime refuses batch-first layouts): batch-first input is
transposed in front and the output back. ONNX's Y (T, D, B, H) becomes minirnn's (T, B, D*H) by
Transpose(0, 2, 1, 3) + Reshape(0, 0, -1); ``lengths`` becomes ``sequence_lens`` (int32), the
initial states ``initial_h``/``initial_c`` (sliced per layer from (L*D, B, H)).
"""
from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np

from ..autograd import enable_grad
from ..nn.embedding import Embedding
from ..nn.linear import Linear
from ..nn.module import Module
from ..nn.rnn import RNNBase
from ..ops.nn_ops import LogSoftmax
from ..ops.pointwise import Exp, Log, Relu, Sigmoid, Softplus, Tanh
from ..ops.shape import Permute
from ..tensor import Tensor
from ._layout import ONNX_OPS, TO_ONNX, reorder_gates
from .builder import GraphBuilder
from .trace import SUPPORTED_TEXT, Call, UnsupportedError, record_calls

OPSET = 17
#: Tape Functions that are one ONNX operator of one input, axes kept.
POINTWISE = {Tanh: "Tanh", Sigmoid: "Sigmoid", Relu: "Relu", Softplus: "Softplus", Exp: "Exp", Log: "Log"}

DynamicAxes = dict[str, dict[int, str]]


def leaves(value: Any) -> list[Any]:
    """The non-None leaves of nested tuples/lists, in order."""
    if isinstance(value, (tuple, list)):
        return [leaf for item in value for leaf in leaves(item)]
    return [] if value is None else [value]


def _map_leaves(value: Any, fn: Any) -> Any:
    if isinstance(value, (tuple, list)):
        return type(value)(_map_leaves(item, fn) for item in value)
    return None if value is None else fn(value)


def _traced_input(value: Any) -> Any:
    """An example input as the model sees it while traced: float data as a Tensor that requires
    grad (so that every op on it is recorded on the tape), integer data as an ndarray."""
    data = value.data if isinstance(value, Tensor) else np.asarray(value)
    if data.dtype.kind == "f":
        return Tensor(data, requires_grad=True)
    if data.dtype.kind in "iu":
        return data
    raise TypeError(f"minirnn.onnx.export: example_inputs: expected float or integer arrays/Tensors (or None, "
                    f"or tuples of them), got dtype {data.dtype}")


class _Exporter:
    """Turns the recorded calls and the tape behind the outputs into ONNX nodes (see the module doc)."""

    def __init__(self, calls: list[Call], inputs: dict[int, str]):
        self.g = GraphBuilder()
        self.names = dict(inputs)  # id(Tensor or ndarray) -> its ONNX value
        self.producers = {id(leaf): call for call in calls for leaf in leaves(call.output)}
        self.inputs = set(inputs.values())
        self.axes: DynamicAxes = {}  # graph input -> axis -> dimension name
        self.sources: dict[str, str] = {}  # value -> the value whose leading axes it keeps
        self._times = 0

    # ------------------------------------------------------------------ resolving values
    def resolve(self, value: Any, user: str) -> str:
        """The ONNX value holding ``value``, adding the nodes that compute it; ``user`` names what
        needs it, for the error message."""
        name = self.names.get(id(value))
        if name is not None:
            return name
        call = self.producers.get(id(value))
        if call is not None:
            self._emit_call(call)
            return self.names[id(value)]
        node = getattr(value, "_node", None)
        if node is None:
            raise UnsupportedError(f"minirnn.onnx.export: {user} is neither an example input nor computed from "
                                   f"one by supported layers and ops (a constant, or made under no_grad?); "
                                   f"supported: {SUPPORTED_TEXT}")
        name = self._emit_op(node, user)
        self.names[id(value)] = name
        return name

    def _emit_op(self, node: Any, user: str) -> str:
        fn, hint = node.function, node.name.lower()
        if fn not in POINTWISE and fn not in (LogSoftmax, Permute):
            raise UnsupportedError(f"minirnn.onnx.export: {user} is computed by the op {node.name}, which is not "
                                   f"supported; supported: {SUPPORTED_TEXT}")
        x = self.resolve(node.inputs[0], f"the input of {node.name}")
        if fn is Permute:
            return self.g.one("Transpose", [x], hint, perm=list(node.inputs[1]))
        if fn is LogSoftmax:
            out = self.g.one("LogSoftmax", [x], hint, axis=int(node.inputs[1]))
        else:
            out = self.g.one(POINTWISE[fn], [x], hint)
        self.sources[out] = x
        return out

    def name_axes(self, value: str, axes: dict[int, str]) -> None:
        """Name dynamic ``axes`` of the graph input that ``value`` keeps the axes of, if any."""
        while value in self.sources:
            value = self.sources[value]
        if value in self.inputs:
            named = self.axes.setdefault(value, {})
            for axis, dim in axes.items():
                if dim == "time" and axis not in named:
                    dim, self._times = ("time" if self._times == 0 else f"{value}_time"), self._times + 1
                named.setdefault(axis, dim)

    # ------------------------------------------------------------------ layers
    def _emit_call(self, call: Call) -> None:
        module, hint = call.module, call.name
        args = call.arguments
        if isinstance(module, RNNBase):
            outputs = _RecurrentLayer(self, call).emit()
        elif isinstance(module, Embedding):
            ids = self.resolve(args["ids"], f"the ids of {hint!r}")
            outputs = [self.g.one("Gather", [self.g.const(module.weight.data, f"{hint}.weight", (id(module), "weight")), ids], hint, axis=0)]
            self.sources[outputs[0]] = ids
        elif isinstance(module, Linear):
            x = self.resolve(args["x"], f"the input of {hint!r}")
            y = self.g.one("MatMul", [x, self.g.const(module.weight.data.T, f"{hint}.weight_t", (id(module), "weight"))], hint)
            if module.bias is not None:
                y = self.g.one("Add", [y, self.g.const(module.bias.data, f"{hint}.bias", (id(module), "bias"))], hint)
            outputs = [y]
            self.sources[y] = x
        else:  # pragma: no cover - record_calls records only the layers above (Dropout in eval: never)
            raise UnsupportedError(f"minirnn.onnx.export: {hint!r} ({type(module).__name__}) is not supported")
        for leaf, name in zip(leaves(call.output), outputs):
            self.names[id(leaf)] = name


class _RecurrentLayer:
    """The nodes of one call of an RNN/LSTM/GRU module (see the module doc)."""

    def __init__(self, exporter: _Exporter, call: Call):
        self.ex, self.g, self.m, self.hint = exporter, exporter.g, call.module, call.name
        self.args = call.arguments
        self.batched = len(self.args["input"].shape) == 3
        self.lstm = self.m.mode == "lstm"

    def emit(self) -> list[str]:
        m, g, hint = self.m, self.g, self.hint
        if m.proj_size:  # ONNX's LSTM has no projection of h
            raise UnsupportedError(f"minirnn.onnx.export: {hint!r} (LSTM with proj_size={m.proj_size}) is not "
                                   "supported: ONNX's LSTM has no projection")
        x = self._input()
        hx = self.args["hx"]
        h0 = self._state(hx[0] if self.lstm and hx is not None else hx, "hx")
        c0 = self._state(None if hx is None else hx[1], "hx[1]") if self.lstm else ""
        lens, empty = "", ""
        if self.args["lengths"] is not None:
            lens = self.ex.resolve(self.args["lengths"], f"the lengths of {hint!r}")
            self.ex.name_axes(lens, {0: "batch"})
            lens = g.one("Cast", [lens], hint, to=6)  # TensorProto.INT32
            if h0:  # (1, B, 1): the sequences of length 0, whose final state is the initial one
                empty = g.one("Unsqueeze", [g.one("Equal", [lens, g.const(np.zeros((), np.int32), "zero")], hint),
                                            g.ints([0, 2])], hint)
        h_n, c_n = [], []
        for layer in range(m.num_layers):
            states = [self._layer_state(h0, layer), self._layer_state(c0, layer)] if self.lstm else \
                [self._layer_state(h0, layer)]
            outs = g.op(ONNX_OPS[m.mode], [x, *self._weights(layer), lens, *states], f"{hint}.l{layer}",
                        3 if self.lstm else 2, **self._attributes())
            y = g.one("Transpose", [outs[0]], hint, perm=[0, 2, 1, 3])  # (T, D, B, H) -> (T, B, D, H)
            x = g.one("Reshape", [y, g.ints([0, 0, -1])], hint)  # -> (T, B, D*H)
            finals = outs[1:]
            if empty:  # onnxruntime ends a sequence of length 0 at zeros, minirnn at its initial state
                finals = [g.one("Where", [empty, state, final], hint) for state, final in zip(states, finals)]
            h_n.append(finals[0])
            c_n.extend(finals[1:])
        if self.batched and m.batch_first:
            x = g.one("Transpose", [x], hint, perm=[1, 0, 2])
        outputs = [x, self._final(h_n)] + ([self._final(c_n)] if self.lstm else [])
        if not self.batched:
            outputs = [g.one("Squeeze", [v, g.ints([1])], hint) for v in outputs]
        return outputs

    def _input(self) -> str:
        x = self.ex.resolve(self.args["input"], f"the input of {self.hint!r}")
        if not self.batched:
            self.ex.name_axes(x, {0: "time"})
            return self.g.one("Unsqueeze", [x, self.g.ints([1])], self.hint)
        self.ex.name_axes(x, {1: "time", 0: "batch"} if self.m.batch_first else {0: "time", 1: "batch"})
        return self.g.one("Transpose", [x], self.hint, perm=[1, 0, 2]) if self.m.batch_first else x

    def _state(self, value: Any, what: str) -> str:
        if value is None:
            return ""
        state = self.ex.resolve(value, f"the {what} of {self.hint!r}")
        if not self.batched:
            return self.g.one("Unsqueeze", [state, self.g.ints([1])], self.hint)
        self.ex.name_axes(state, {1: "batch"})
        return state

    def _layer_state(self, state: str, layer: int) -> str:
        """Layer ``layer``'s directions of an (L*D, B, H) state."""
        if not state or self.m.num_layers == 1:
            return state
        D = self.m.num_directions
        return self.g.one("Slice", [state, self.g.ints([layer * D]), self.g.ints([(layer + 1) * D]),
                                    self.g.ints([0])], self.hint)

    def _weights(self, layer: int) -> list[str]:
        """W (D, G*H, I), R (D, G*H, H) and B (D, 2*G*H) of ``layer``, gates in ONNX's order."""
        m, g, order = self.m, self.g, TO_ONNX[self.m.mode]
        params = [m._layer_parameters(suffix) for suffix in m._suffixes(layer)]
        W = np.stack([reorder_gates(p[0].data, order) for p in params])
        R = np.stack([reorder_gates(p[1].data, order) for p in params])
        names = [g.const(W, f"{self.hint}.W{layer}", (id(m), "W", layer)),
                 g.const(R, f"{self.hint}.R{layer}", (id(m), "R", layer))]
        if m.bias:
            B = np.stack([np.concatenate([reorder_gates(p[2].data, order), reorder_gates(p[3].data, order)])
                          for p in params])
            names.append(g.const(B, f"{self.hint}.B{layer}", (id(m), "B", layer)))
        else:
            names.append("")
        return names

    def _attributes(self) -> dict[str, Any]:
        m = self.m
        attrs: dict[str, Any] = {"hidden_size": m.hidden_size,
                                 "direction": "bidirectional" if m.bidirectional else "forward"}
        if m.mode.startswith("gru"):  # PyTorch's GRU (minirnn's default) is 1, the lectures' (reset_after=False) 0
            attrs["linear_before_reset"] = int(m.mode == "gru")
        elif m.mode.startswith("rnn_"):
            attrs["activations"] = [m.mode[4:].capitalize()] * m.num_directions
        return attrs

    def _final(self, states: list[str]) -> str:
        return states[0] if len(states) == 1 else self.g.one("Concat", states, self.hint, axis=0)


def _value_info(name: str, array: np.ndarray, axes: dict[int, str]) -> Any:
    from onnx import TensorProto, helper
    if array.dtype.kind == "f":
        elem = helper.np_dtype_to_tensor_dtype(array.dtype)
    else:
        elem = TensorProto.INT32 if array.dtype == np.int32 else TensorProto.INT64
    shape = [axes.get(axis, size) for axis, size in enumerate(array.shape)]
    return helper.make_tensor_value_info(name, elem, shape)


def _names(given: Sequence[str] | None, count: int, stem: str, what: str) -> list[str]:
    if given is None:
        return [stem] if count == 1 else [f"{stem}_{i}" for i in range(count)]
    given = list(given)
    if len(given) != count or len(set(given)) != count or not all(isinstance(n, str) and n for n in given):
        raise ValueError(f"minirnn.onnx.export: {what}: expected {count} distinct non-empty names, got {given!r}")
    return given


def _trace(model: Module, example_inputs: tuple[Any, ...]) -> tuple[list[Call], tuple[Any, ...], Any]:
    """Run ``model`` once in eval mode on the example inputs; returns the recorded calls, the
    inputs as the model saw them and its output. Training modes are restored afterwards."""
    modes = [(m, m.training) for m in model.modules()]
    traced = _map_leaves(example_inputs, _traced_input)
    model.eval()
    try:
        with record_calls(model) as calls, enable_grad():
            output = model(*traced)
    finally:
        for module, mode in modes:
            module.training = mode
    return calls, traced, output


def export(model: Module, example_inputs: Any, path: str | os.PathLike[str], *,
           input_names: Sequence[str] | None = None, output_names: Sequence[str] | None = None,
           dynamic_axes: DynamicAxes | None = None, metadata: dict[str, str] | None = None) -> Any:
    """Write ``model`` as an ONNX model (opset 17) to ``path`` and return the ``onnx.ModelProto``.

    ``model`` is made of ``Embedding``, ``RNN``/``LSTM``/``GRU`` (any options: layers,
    bidirectional, batch_first, ``lengths`` -> ``sequence_lens``, initial states), ``Linear``,
    ``Dropout`` (exported in eval mode, the identity), the activations, ``softmax``/``log_softmax``,
    ``Sequential``, and modules of your own whose forward chains these. ``example_inputs`` is the
    tuple of positional arguments of ``model`` (a single array is one argument); its non-None
    leaves (nested tuples allowed, e.g. an LSTM state ``(h0, c0)``) become the graph inputs,
    ``input_names`` naming them in order (default ``input``/``input_0``...); the non-None leaves of
    the output become the graph outputs (``output_names``). Integer inputs are int64 in the graph
    (int32 stays int32).

    The time and batch axes of every input that reaches a recurrent layer (through an
    ``Embedding``, ``Linear`` or activation), of initial states and of ``lengths`` are dynamic,
    named ``time`` and ``batch``; ``dynamic_axes`` ({input name: {axis: dimension name}}) names
    more. Other axes keep the example's sizes. ``metadata`` goes to the model's metadata_props.

    Raises :class:`~minirnn.onnx.UnsupportedError` naming the module or op that ONNX export
    does not cover. The model passes ``onnx.checker.check_model(..., full_check=True)``.
    """
    import onnx
    from onnx import helper, shape_inference
    if not isinstance(model, Module):
        raise TypeError(f"minirnn.onnx.export: model: expected a minirnn.nn.Module, got {type(model).__name__}")
    if not isinstance(example_inputs, tuple):
        example_inputs = (example_inputs,)
    calls, traced, output = _trace(model, example_inputs)
    in_leaves, out_leaves = leaves(traced), leaves(output)
    in_names = _names(input_names, len(in_leaves), "input", "input_names")
    out_names = _names(output_names, len(out_leaves), "output", "output_names")
    ex = _Exporter(calls, {id(leaf): name for leaf, name in zip(in_leaves, in_names)})
    for i, (leaf, name) in enumerate(zip(out_leaves, out_names)):
        ex.g.nodes.append(helper.make_node("Identity", [ex.resolve(leaf, f"output {i} ({name!r})")], [name]))
    for name, axes in (dynamic_axes or {}).items():
        if name not in in_names:
            raise ValueError(f"minirnn.onnx.export: dynamic_axes: expected input names from {in_names}, got {name!r}")
        ex.axes.setdefault(name, {}).update(axes)
    arrays = [leaf.data if isinstance(leaf, Tensor) else leaf for leaf in in_leaves]
    graph_inputs = [_value_info(n, a, ex.axes.get(n, {})) for n, a in zip(in_names, arrays)]
    graph_outputs = [helper.make_tensor_value_info(n, helper.np_dtype_to_tensor_dtype(leaf.data.dtype), None)
                     for n, leaf in zip(out_names, out_leaves)]
    graph = helper.make_graph(ex.g.nodes, type(model).__name__, graph_inputs, graph_outputs, ex.g.initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="minirnn")
    inferred = {v.name: v for v in shape_inference.infer_shapes(proto, strict_mode=True).graph.output}
    for value in proto.graph.output:  # symbolic output shapes, which the checker asks for
        value.type.CopyFrom(inferred[value.name].type)
    for key, text in (metadata or {}).items():
        proto.metadata_props.add(key=key, value=text)
    onnx.checker.check_model(proto, full_check=True)
    onnx.save(proto, os.fspath(path))
    return proto
