"""Look at the tape: list, print and draw the graph behind a tensor.

Every tensor made by a recorded op points at its :class:`~minirnn.autograd.Node`; the nodes point
at their inputs. :func:`nodes` walks that DAG in exactly the order ``backward()`` will visit it
(:func:`minirnn.autograd.topological_order`) and describes each node as a plain record;
:func:`render_text` prints one line per node; :func:`to_dot` and :func:`render` draw it with
Graphviz, inputs at the top and the output at the bottom::

    >>> loss = (w @ x + b).tanh().sum()
    >>> print(minirnn.graph.render_text(loss, names={"w": w, "b": b}))

Leaves are the tensors the graph starts from and that require grad (parameters, inputs you
differentiate with respect to); tensors that do not require grad are constants. ``names`` maps
readable names to leaves -- ``model.named_parameters()`` is the usual choice.
"""
from __future__ import annotations

import shutil
import subprocess
import warnings
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Union

import numpy as np

from .autograd import Released, topological_order
from .checks import check_tensor
from .tensor import Tensor

RENDER_FORMATS = ("svg", "png")

#: Leaf labels: ``{"w": w}`` or pairs such as ``model.named_parameters()``.
Names = Union[Mapping[str, Tensor], Iterable[tuple[str, Tensor]]]


@dataclass(frozen=True)
class InputRecord:
    """One positional input of a recorded op.

    ``kind`` is ``"node"`` (output ``output_index`` of node ``source`` in the list),
    ``"leaf"`` (leaf number ``source``: a tensor the graph starts from that requires grad),
    ``"constant"`` (a tensor that does not require grad) or ``"value"`` (a non-tensor argument
    such as an axis or an index; ``name`` is a short label from :func:`value_text`).
    """

    kind: str
    source: int | None
    output_index: int
    shape: tuple[int, ...] | None
    dtype: str | None
    name: str | None


@dataclass(frozen=True)
class NodeRecord:
    """One recorded op, as ``backward()`` will see it.

    ``index`` is the position in backward order (0 = the op that produced the tensor);
    ``saved_bytes`` is the ``nbytes`` of its ``ctx.save_for_backward`` arrays right now (0 once a
    backward without ``retain_graph`` has freed them; a view counts its own size, an array saved
    by two nodes counts in both -- :func:`minirnn.profile` counts distinct buffers instead);
    ``needs_input_grad[i]`` says whether backward must produce a gradient for input ``i``.
    """

    index: int
    name: str
    output_shapes: tuple[tuple[int, ...], ...]
    dtypes: tuple[str, ...]
    saved_bytes: int
    needs_input_grad: tuple[bool, ...]
    inputs: tuple[InputRecord, ...]


def _leaf_names(names: Names | None) -> dict[int, str]:
    if names is None:
        return {}
    if not isinstance(names, Mapping):
        try:
            names = dict(names)
        except (TypeError, ValueError):
            raise TypeError("graph: expected names to be a mapping from str to Tensor or (name, tensor) pairs, "
                            f"got {type(names).__name__}") from None
    for key, value in names.items():
        if not isinstance(key, str):
            raise TypeError(f"graph: expected the keys of names to be str, got {type(key).__name__}")
        if not isinstance(value, Tensor):
            raise TypeError(f"graph: expected names[{key!r}] to be a minirnn.Tensor, got {type(value).__name__}")
    return {id(value): key for key, value in names.items()}


def nodes(tensor: Tensor, names: Names | None = None) -> list[NodeRecord]:
    """The nodes of ``tensor``'s graph in the order backward visits them (empty for a leaf).

    A node comes before every node that produced one of its inputs, so ``[0]`` made ``tensor``.
    Leaves are numbered in the order they are first met; ``names`` (name -> tensor) labels them.
    """
    tensor = check_tensor("graph.nodes", "tensor", tensor, floating=False)
    by_id = _leaf_names(names)
    if tensor.grad_fn is None:
        return []
    order = topological_order(tensor.grad_fn)
    position = {id(node): i for i, node in enumerate(order)}
    leaves: dict[int, int] = {}
    return [NodeRecord(index=i, name=node.name,
                       output_shapes=tuple(tuple(shape) for shape, _ in node.output_meta),
                       dtypes=tuple(str(dtype) for _, dtype in node.output_meta),
                       saved_bytes=node.saved_nbytes(),
                       needs_input_grad=tuple(node.needs_input_grad),
                       inputs=tuple(_input_record(x, position, leaves, by_id) for x in node.inputs))
            for i, node in enumerate(order)]


def _input_record(x: Any, position: dict[int, int], leaves: dict[int, int],
                  by_id: dict[int, str]) -> InputRecord:
    if not isinstance(x, (Tensor, Released)) or (isinstance(x, Released) and x.grad_fn is None and x.source is None):
        return InputRecord("value", None, 0, None, None, value_text(x))
    shape, dtype = tuple(x.shape), str(x.dtype)
    if x.grad_fn is not None:
        return InputRecord("node", position[id(x.grad_fn)], x._output_index, shape, dtype, None)
    if x.requires_grad:
        number = leaves.setdefault(id(x), len(leaves))
        return InputRecord("leaf", number, 0, shape, dtype, by_id.get(id(x), f"leaf{number}"))
    original = (x.source and x.source()) if isinstance(x, Released) else x  # None once a released constant is gone
    return InputRecord("constant", None, 0, shape, dtype, None if original is None else by_id.get(id(original)))


def value_text(value: Any, limit: int = 24) -> str:
    """A short label for a non-tensor argument: ``1``, ``None``, ``[:, 4:8]``, ``array(2, 4)``."""
    if isinstance(value, slice):
        parts = ["" if v is None else str(v) for v in (value.start, value.stop, value.step)]
        text = ":".join(parts if value.step is not None else parts[:2])
    elif isinstance(value, tuple) and any(isinstance(v, slice) for v in value):
        text = "[" + ", ".join(value_text(v, limit) for v in value) + "]"
    elif isinstance(value, list):
        text = "[" + ", ".join(value_text(v, limit) for v in value) + "]"
    elif isinstance(value, tuple):
        text = "(" + ", ".join(value_text(v, limit) for v in value) + ("," if len(value) == 1 else "") + ")"
    elif isinstance(value, (np.ndarray, Released)):  # Released: an array a finished backward let go of
        text = "array" + _shape_text(value.shape)
    elif value is None or isinstance(value, (bool, int, float, str, np.generic)):
        text = repr(value)
    else:
        text = type(value).__name__
    return text if len(text) <= limit else text[:limit - 3] + "..."


def format_bytes(n: int) -> str:
    """``1536`` -> ``"1.5 KiB"``: binary units, one decimal above bytes."""
    if n < 1024:
        return f"{n} B"
    value = float(n)
    for unit in ("KiB", "MiB", "GiB"):
        value /= 1024
        if value < 1024 or unit == "GiB":
            break
    return f"{value:.1f} {unit}"


def _shape_text(shape: tuple[int, ...]) -> str:
    return str(tuple(shape))


def _outputs_text(record: NodeRecord) -> str:
    shapes = " + ".join(_shape_text(s) for s in record.output_shapes)
    return f"{shapes} {'/'.join(sorted(set(record.dtypes)))}"


def _input_text(x: InputRecord) -> str:
    if x.kind == "node":
        return f"#{x.source}" + (f".{x.output_index}" if x.output_index else "")
    if x.kind == "leaf":
        return f"{x.name}{_shape_text(x.shape)}"  # type: ignore[arg-type]
    if x.kind == "constant":
        return f"{x.name or 'const'}{_shape_text(x.shape)}"  # type: ignore[arg-type]
    return x.name  # type: ignore[return-value]


def summary(records: list[NodeRecord]) -> str:
    """``"5 nodes (2 Add, 2 Mul, 1 Sum), 3 leaves, 480 B saved"`` for a list from :func:`nodes`."""
    kinds = Counter(r.name for r in records)
    leaves = {x.source for r in records for x in r.inputs if x.kind == "leaf"}
    per_kind = ", ".join(f"{count} {name}" for name, count in kinds.most_common())
    saved = format_bytes(sum(r.saved_bytes for r in records))
    return (f"{len(records)} node{'s' * (len(records) != 1)} ({per_kind}), "
            f"{len(leaves)} lea{'ves' if len(leaves) != 1 else 'f'}, {saved} saved")


def render_text(tensor: Tensor, names: Names | None = None) -> str:
    """One line per node in backward order, then a summary line::

        #0  Sum  () float64       0 B  <- #1
        #1  Mul  (2, 3) float64  96 B  <- #2, w(2, 3)
        #2  Add  (2, 3) float64   0 B  <- x(2, 3), const(3,)
        3 nodes (1 Sum, 1 Mul, 1 Add), 2 leaves, 96 B saved

    Columns: position, op, output shape(s) and dtype, bytes saved for backward, inputs (``#k`` is
    node k's output, ``#k.j`` its output j; leaves by name; ``const`` for tensors without grad;
    other arguments as short labels such as ``[:, 4:8]``).
    """
    records = nodes(tensor, names)
    if not records:
        return f"leaf tensor {_shape_text(tensor.shape)} {tensor.dtype}: no graph (nothing recorded)"
    rows = [(f"#{r.index}", r.name, _outputs_text(r), format_bytes(r.saved_bytes),
             ", ".join(_input_text(x) for x in r.inputs)) for r in records]
    widths = [max(len(row[c]) for row in rows) for c in range(4)]
    lines = [f"{i:<{widths[0]}}  {name:<{widths[1]}}  {out:<{widths[2]}}  {saved:>{widths[3]}}  <- {ins}"
             for i, name, out, saved, ins in rows]
    return "\n".join(lines + [summary(records)])


def _quote(text: str) -> str:
    """A DOT double-quoted string; ``\\n`` inside ``text`` stays a line break in the label."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def to_dot(tensor: Tensor, names: Names | None = None, rankdir: str = "TB") -> str:
    """Graphviz DOT text for ``tensor``'s graph: ops as boxes, leaves as ellipses, edges forward.

    Ops are labeled with name, output shape/dtype and saved bytes; the op that made ``tensor`` is
    filled. Constants and non-tensor arguments are left out to keep big graphs readable.
    ``rankdir`` is Graphviz's layout direction: ``"TB"`` (top to bottom) or ``"LR"``.
    """
    if rankdir not in ("TB", "LR", "BT", "RL"):
        raise ValueError(f"graph.to_dot(): expected rankdir 'TB', 'LR', 'BT' or 'RL', got {rankdir!r}")
    records = nodes(check_tensor("graph.to_dot", "tensor", tensor, floating=False), names)
    lines = ["digraph minirnn {",
             f"  graph [rankdir={rankdir}, fontname=Helvetica];",
             "  node [fontname=Helvetica, fontsize=10];",
             "  edge [arrowsize=0.6];"]
    leaves_done: set[int] = set()
    for r in records:
        style = ', style=filled, fillcolor="#ffd8a8"' if r.index == 0 else ""
        label = f"{r.name}\n{_outputs_text(r)}\nsaved {format_bytes(r.saved_bytes)}"
        lines.append(f"  n{r.index} [shape=box{style}, label={_quote(label)}];")
        for x in r.inputs:
            if x.kind == "leaf" and x.source not in leaves_done:
                leaves_done.add(x.source)  # type: ignore[arg-type]
                label = f"{x.name}\n{_shape_text(x.shape)} {x.dtype}"  # type: ignore[arg-type]
                lines.append(f'  l{x.source} [shape=ellipse, style=filled, fillcolor="#d0ebff", '
                             f"label={_quote(label)}];")
            if x.kind in ("node", "leaf"):
                tail = f"n{x.source}" if x.kind == "node" else f"l{x.source}"
                attrs = f" [label={_quote(str(x.output_index))}]" if x.output_index else ""
                lines.append(f"  {tail} -> n{r.index}{attrs};")
    if not records:
        label = f"leaf {_shape_text(tensor.shape)} {tensor.dtype}\n(no graph)"
        lines.append(f"  l0 [shape=ellipse, label={_quote(label)}];")
    return "\n".join(lines + ["}"]) + "\n"


def render(tensor: Tensor, path: str | Path, format: str = "svg",  # noqa: A002 (Graphviz's word)
           names: Names | None = None, rankdir: str = "TB") -> Path:
    """Write ``path.dot`` and, when Graphviz's ``dot`` program is installed, ``path.<format>``.

    ``path`` may carry the suffix ``.dot``, ``.svg`` or ``.png`` or none. Returns the rendered
    file, or -- with a warning saying so -- the ``.dot`` file when ``dot`` is not installed.
    """
    if format not in RENDER_FORMATS:
        raise ValueError(f"graph.render(): expected format 'svg' or 'png', got {format!r}")
    if not isinstance(path, (str, Path)):
        raise TypeError(f"graph.render(): expected path to be a str or Path, got {type(path).__name__}")
    base = Path(path)
    if base.suffix in (".dot", ".svg", ".png"):
        base = base.with_suffix("")
    dot_path = base.with_suffix(".dot")
    dot_path.write_text(to_dot(tensor, names, rankdir))
    program = shutil.which("dot")
    if program is None:
        warnings.warn(f"graph.render(): Graphviz's 'dot' program is not installed; wrote the DOT text to "
                      f"{dot_path} (render it with: dot -T{format} {dot_path} -o {base}.{format})",
                      stacklevel=2)
        return dot_path
    out_path = base.with_suffix("." + format)
    done = subprocess.run([program, f"-T{format}", str(dot_path), "-o", str(out_path)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"graph.render(): dot -T{format} failed on {dot_path}: {done.stderr.strip()}")
    return out_path


__all__ = ["InputRecord", "NodeRecord", "format_bytes", "nodes", "render", "render_text", "summary",
           "to_dot", "value_text"]


def batch_table(log: Any, timings: bool = True) -> str:
    """The batches an ``autobatch()`` block formed (its :class:`~minirnn.autobatch.BatchLog`), in
    the order they ran, then a summary line::

        #   op      size  how      signature
        0   Linear     4  batched  (3,), shared(3, 3), None
        1   Sum        4  batched  (3,), (0,), False
        2 batches for 8 ops (mean size 4.0); recording 0.1 ms, scheduling 0.2 ms

    ``signature``: per argument the shape a member gives (stacked into the batch), ``shared(...)``
    for a weight all members use, or the option's value. ``how`` is ``alone: <why>`` for an op
    that could not join a batch (it ran on its own, after the work it depends on). ``timings=False``
    leaves the times out of the summary line (for output that must not change from run to run).
    """
    rows = [(str(i), b.op, str(b.size), b.how, b.signature) for i, b in enumerate(log.batches)]
    header = ("#", "op", "size", "how", "signature")
    widths = [max(len(r[c]) for r in [header, *rows]) for c in range(4)]
    lines = [f"{r[0]:<{widths[0]}}  {r[1]:<{widths[1]}}  {r[2]:>{widths[2]}}  {r[3]:<{widths[3]}}  {r[4]}"
             for r in [header, *rows]]
    mean = log.ops / len(log.batches) if log.batches else 0.0
    times = (f"; recording {log.record_seconds * 1e3:.1f} ms, scheduling {log.schedule_seconds * 1e3:.1f} ms"
             if timings else "")
    lines.append(f"{len(log.batches)} batches for {log.ops} ops (mean size {mean:.1f}){times}")
    return "\n".join(lines)
