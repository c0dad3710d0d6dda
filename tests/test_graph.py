"""minirnn.graph: records in backward order, the text rendering, DOT export and rendering."""
from __future__ import annotations

import dataclasses
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

import minirnn
from minirnn import graph, ops
from minirnn.autograd import Context, Function
from minirnn.tensor import Tensor

HAVE_DOT = shutil.which("dot") is not None


class Halves(Function):
    """Two outputs: the first and second half of a 1-D array (a multi-output node for the tests)."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        ctx.n = a.shape[0] // 2
        return a[:ctx.n].copy(), a[ctx.n:].copy()

    @staticmethod
    def backward(ctx: Context, g0: np.ndarray, g1: np.ndarray) -> np.ndarray:
        return np.concatenate([g0, g1])


def leaf(*shape: int, grad: bool = True) -> Tensor:
    return Tensor(np.arange(np.prod(shape), dtype=np.float64).reshape(shape) / 10, requires_grad=grad)


@pytest.fixture
def small():
    """out = ((x + c) * w) @ v  with leaves x, w (grad) and constants c, v."""
    x, w = leaf(2, 3), leaf(2, 3)
    c, v = leaf(3, grad=False), leaf(3, 1, grad=False)
    out = ops.matmul(ops.mul(ops.add(x, c), w), v)
    return out, x, w


def test_small_expression_nodes_in_backward_order(small):
    out, x, w = small
    records = graph.nodes(out, names={"x": x, "w": w})
    assert [r.name for r in records] == ["MatMul", "Mul", "Add"]
    assert [r.index for r in records] == [0, 1, 2]
    assert [r.output_shapes for r in records] == [((2, 1),), ((2, 3),), ((2, 3),)]
    assert all(r.dtypes == ("float64",) for r in records)
    # MatMul saves A (2x3) and B (3x1); Mul saves both (2x3) operands; Add saves no arrays.
    assert [r.saved_bytes for r in records] == [(6 + 3) * 8, 2 * 6 * 8, 0]
    assert [r.needs_input_grad for r in records] == [(True, False), (True, True), (True, False)]
    matmul, mul, add = records
    assert [(i.kind, i.source) for i in matmul.inputs] == [("node", 1), ("constant", None)]
    assert [(i.kind, i.source, i.name) for i in mul.inputs] == [("node", 2, None), ("leaf", 0, "w")]
    assert [(i.kind, i.source, i.name) for i in add.inputs] == [("leaf", 1, "x"), ("constant", None, None)]
    assert add.inputs[1].shape == (3,)


def test_every_node_comes_before_its_producers():
    x = leaf(4)
    a = ops.mul(x, x)
    b = ops.add(a, x)
    c = ops.mul(a, b)          # diamond: a feeds b and c
    out = ops.add(c, ops.mul(b, a))
    records = graph.nodes(out)
    assert len(records) == 5
    for r in records:
        for i in r.inputs:
            if i.kind == "node":
                assert i.source > r.index, f"node #{r.index} {r.name} listed after its producer #{i.source}"


def test_saved_bytes_drop_to_zero_after_backward(small):
    out, _, _ = small
    out.backward(np.ones((2, 1)), retain_graph=True)
    assert [r.saved_bytes for r in graph.nodes(out)] == [72, 96, 0]
    out.backward(np.ones((2, 1)))
    assert [r.saved_bytes for r in graph.nodes(out)] == [0, 0, 0]


def test_leaf_and_no_grad_have_no_nodes():
    x = leaf(3)
    assert graph.nodes(x) == []
    assert "no graph" in graph.render_text(x)
    with minirnn.no_grad():
        y = ops.mul(x, x)
    assert graph.nodes(y) == []


def test_render_text_lines(small):
    out, x, w = small
    text = graph.render_text(out, names={"x": x, "w": w})
    lines = text.splitlines()
    assert len(lines) == 4
    assert re.fullmatch(r"#0\s+MatMul\s+\(2, 1\) float64\s+72 B\s+<- #1, const\(3, 1\)", lines[0])
    assert re.fullmatch(r"#1\s+Mul\s+\(2, 3\) float64\s+96 B\s+<- #2, w\(2, 3\)", lines[1])
    assert re.fullmatch(r"#2\s+Add\s+\(2, 3\) float64\s+0 B\s+<- x\(2, 3\), const\(3,\)", lines[2])
    assert lines[3] == "3 nodes (1 MatMul, 1 Mul, 1 Add), 2 leaves, 168 B saved"


def test_multi_output_node_in_text_and_dot():
    x = leaf(4)
    first, second = Halves.apply(x)
    out = ops.mul(second, first)
    records = graph.nodes(out)
    assert [r.name for r in records] == ["Mul", "Halves"]
    assert records[1].output_shapes == ((2,), (2,))
    assert [(i.source, i.output_index) for i in records[0].inputs] == [(1, 1), (1, 0)]
    assert "<- #1.1, #1" in graph.render_text(out).splitlines()[0]
    assert 'n1 -> n0 [label="1"];' in graph.to_dot(out)


def test_names_may_be_pairs():
    x, w = leaf(2), leaf(2)
    out = ops.mul(x, w)
    assert graph.render_text(out, names=iter([("x", x), ("w", w)])) == graph.render_text(out, {"x": x, "w": w})
    assert "<- x(2,), w(2,)" in graph.render_text(out, names=[("x", x), ("w", w)])


def test_non_tensor_arguments_are_labelled():
    x = leaf(2, 4)
    out = ops.sum(x[:, 1:3], 0)
    records = graph.nodes(out)
    assert [r.name for r in records] == ["Sum", "GetItem"]
    assert [(i.kind, i.name) for i in records[1].inputs] == [("leaf", "leaf0"), ("value", "[:, 1:3]")]
    assert graph.render_text(out).splitlines()[1].endswith("<- leaf0(2, 4), [:, 1:3]")


@pytest.mark.parametrize("value, text", [
    (slice(None, None, 2), "::2"), (slice(1, None), "1:"), ((slice(None), 1), "[:, 1]"), ((0, 1), "(0, 1)"),
    ((3,), "(3,)"), ([1, 2], "[1, 2]"), (None, "None"), (False, "False"), (np.zeros((2, 3)), "array(2, 3)"),
    ("x" * 50, "'" + "x" * 20 + "..."), (object(), "object"),
])
def test_value_text(value, text):
    assert graph.value_text(value) == text


def test_format_bytes():
    assert [graph.format_bytes(n) for n in (0, 1023, 1024, 1536, 5 * 2**20, 3 * 2**30, 2**50)] == \
        ["0 B", "1023 B", "1.0 KiB", "1.5 KiB", "5.0 MiB", "3.0 GiB", "1048576.0 GiB"]


# ---------------------------------------------------------------- DOT
_STATEMENT = re.compile(
    r'\s*(?:(?:graph|node|edge) \[.*\]'                               # defaults
    r'|[A-Za-z_]\w*(?: -> [A-Za-z_]\w*)?(?: \[(?:\w+=(?:"(?:[^"\\]|\\.)*"|[\w#.]+)(?:, )?)*\])?);')


def check_dot_syntax(text: str) -> None:
    """The subset of DOT that to_dot writes: a digraph of id / edge / default statements."""
    lines = text.strip().splitlines()
    assert lines[0] == "digraph minirnn {" and lines[-1] == "}"
    for line in lines[1:-1]:
        assert _STATEMENT.fullmatch(line), f"not a DOT statement: {line!r}"
    defined = set(re.findall(r"^\s*(\w+) \[", text, re.M)) - {"graph", "node", "edge"}
    for tail, head in re.findall(r"^\s*(\w+) -> (\w+)", text, re.M):
        assert tail in defined and head in defined, f"edge {tail} -> {head} uses an undefined node"


def test_to_dot_structure(small):
    out, x, w = small
    text = graph.to_dot(out, names={"x": x, "w": w})
    check_dot_syntax(text)
    assert len(re.findall(r"shape=box", text)) == 3       # one box per op
    assert len(re.findall(r"shape=ellipse", text)) == 2   # one ellipse per leaf; constants left out
    assert set(re.findall(r"^\s*(\w+ -> \w+);", text, re.M)) == {"n1 -> n0", "n2 -> n1", "l0 -> n1", "l1 -> n2"}
    assert 'label="MatMul\\n(2, 1) float64\\nsaved 72 B"' in text


def test_to_dot_escapes_names():
    x = leaf(2)
    text = graph.to_dot(ops.mul(x, x), names={'say "hi" \\o/': x})
    check_dot_syntax(text)
    assert 'label="say \\"hi\\" \\\\o/\\n(2,) float64"' in text


def test_to_dot_of_a_leaf_is_valid():
    check_dot_syntax(graph.to_dot(leaf(2)))


@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz 'dot' is not installed (syntax checked above)")
def test_dot_program_parses_export(small):
    out, x, w = small
    done = subprocess.run(["dot", "-Tsvg"], input=graph.to_dot(out, names={"x": x, "w": w}),
                          capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "<svg" in done.stdout and "MatMul" in done.stdout


@pytest.mark.skipif(not HAVE_DOT, reason="Graphviz 'dot' is not installed")
@pytest.mark.parametrize("fmt, magic", [("svg", b"<?xml"), ("png", b"\x89PNG")])
def test_render_runs_dot(small, tmp_path: Path, fmt: str, magic: bytes):
    out, _, _ = small
    path = graph.render(out, tmp_path / "g.dot", format=fmt, rankdir="LR")
    assert path == tmp_path / f"g.{fmt}"
    assert path.read_bytes().startswith(magic)
    assert "rankdir=LR" in (tmp_path / "g.dot").read_text()


def test_render_without_dot_writes_dot_and_warns(small, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    out, _, _ = small
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    with pytest.warns(UserWarning, match="'dot' program is not installed"):
        path = graph.render(out, str(tmp_path / "g"), format="png")
    assert path == tmp_path / "g.dot"
    assert path.read_text() == graph.to_dot(out)


def test_deep_chain_needs_no_recursion():
    x = leaf(1)
    y = x
    for _ in range(3000):
        y = ops.add(y, x)
    records = graph.nodes(y)
    assert len(records) == 3000
    assert records[-1].inputs[0].kind == "leaf"


@pytest.mark.parametrize("call, exc, match", [
    (lambda t: graph.nodes(t.data), TypeError, "expected tensor to be a minirnn.Tensor, got ndarray"),
    (lambda t: graph.render_text(t, names=3), TypeError, "expected names to be a mapping .* got int"),
    (lambda t: graph.render_text(t, names=[1]), TypeError, "expected names to be a mapping .* got list"),
    (lambda t: graph.render_text(t, names={1: t}), TypeError, "expected the keys of names to be str, got int"),
    (lambda t: graph.nodes(t, names={"a": 1}), TypeError, r"expected names\['a'\] to be a minirnn.Tensor, got int"),
    (lambda t: graph.to_dot(t, rankdir="XY"), ValueError, "expected rankdir .* got 'XY'"),
    (lambda t: graph.render(t, "g", format="pdf"), ValueError, "expected format 'svg' or 'png', got 'pdf'"),
    (lambda t: graph.render(t, 3), TypeError, "expected path to be a str or Path, got int"),
])
def test_bad_arguments(call, exc, match):
    with pytest.raises(exc, match=match):
        call(ops.mul(leaf(2), leaf(2)))


# ---------------------------------------------------------------- the lesson: unrolled cell vs fused layer
def _lstm_losses(steps: int):
    """sum(h_T) of a 3-step sequence through an unrolled composed nn.LSTMCell and through nn.LSTM (same weights)."""
    T, B, I, H = steps, 2, 3, 4
    cell, lstm = minirnn.nn.LSTMCell(I, H, dtype=np.float64, fused=False), minirnn.nn.LSTM(I, H, dtype=np.float64)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        getattr(lstm, name + "_l0").data[...] = getattr(cell, name).data
    x = Tensor(np.random.default_rng(0).standard_normal((T, B, I)))
    h = c = Tensor(np.zeros((B, H)))
    for t in range(T):
        h, c = cell(x[t], (h, c))
    _, (h_n, _) = lstm(x)
    return h.sum(), h_n.sum(), cell, lstm


def test_unrolled_lstm_cell_and_fused_lstm_both_render():
    cell_loss, fused_loss, cell, lstm = _lstm_losses(3)
    one_step, _, _, _ = _lstm_losses(1)
    unrolled = graph.nodes(cell_loss, names=cell.named_parameters())
    fused = graph.nodes(fused_loss, names=lstm.named_parameters())
    # The unrolled graph repeats one step's nodes per time step (plus the final Sum) ...
    assert len(unrolled) - 1 == 3 * (len(graph.nodes(one_step)) - 1)
    assert len(unrolled) > 30
    # ... the fused layer is a single node with three outputs (y, h_n, c_n).
    kinds = [r.name for r in fused]
    assert kinds.count("FusedRNNLayer") == 1 and len(fused) <= 4
    layer = fused[kinds.index("FusedRNNLayer")]
    assert layer.output_shapes == ((3, 2, 4), (2, 4), (2, 4))
    for records, names in ((unrolled, dict(cell.named_parameters())), (fused, dict(lstm.named_parameters()))):
        assert {x.name for r in records for x in r.inputs if x.kind == "leaf"} == set(names)
    for loss, module in ((cell_loss, cell), (fused_loss, lstm)):
        text = graph.render_text(loss, names=module.named_parameters())
        assert len(text.splitlines()) == len(graph.nodes(loss)) + 1
        dot = graph.to_dot(loss, names=module.named_parameters())
        check_dot_syntax(dot)
        assert dot.count("shape=box") == len(graph.nodes(loss))
        if HAVE_DOT:
            done = subprocess.run(["dot", "-Tsvg"], input=dot, capture_output=True, text=True)
            assert done.returncode == 0 and "<svg" in done.stdout, done.stderr


def test_the_graph_reads_the_same_after_backward_freed_it():
    """Backward lets go of saved arrays and input values; the records keep everything else."""
    x, w, c = leaf(2, 3), leaf(3, 2), leaf(3, grad=False)
    names = {"x": x, "w": w, "c": c}
    idx = np.array([1, 0, 1])
    out = ops.sum(ops.where(np.ones(3, bool), ops.matmul(ops.add(x, c), w)[:, 0][idx], 0.0))
    before = graph.nodes(out, names=names)
    text_before = graph.render_text(out, names=names)
    assert "c(3,)" in text_before
    out.backward()
    after = graph.nodes(out, names=names)
    assert [r.saved_bytes for r in after] == [0] * len(after)
    assert [dataclasses.replace(r, saved_bytes=0) for r in before] == after
    strip_bytes = re.compile(r"\s+\d+(\.\d)? (B|KiB)\s+<-")
    assert strip_bytes.sub(" <-", graph.render_text(out, names=names)).splitlines()[:-1] == \
        strip_bytes.sub(" <-", text_before).splitlines()[:-1]
    check_dot_syntax(graph.to_dot(out))
