"""minirnn.onnx.export: onnxruntime runs the exported model to minirnn's outputs (1e-5, float32)."""
import itertools
import json
import zlib

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

import minirnn  # noqa: E402
import minirnn.onnx as mo  # noqa: E402
from minirnn import nn  # noqa: E402
from minirnn.charlm import CharLM  # noqa: E402
from minirnn.cli import main  # noqa: E402
from minirnn.onnx.exporter import leaves  # noqa: E402

ATOL = 1e-5
CELLS = {"lstm": nn.LSTM, "gru": nn.GRU, "gru_reset_before": nn.GRU, "rnn_tanh": nn.RNN, "rnn_relu": nn.RNN,
         "rnn_sigmoid": nn.RNN}


def run_minirnn(model, *inputs):
    model.eval()
    with minirnn.no_grad():
        out = model(*inputs)
    return [leaf.data for leaf in leaves(out)]


def run_onnx(path, names, *inputs):
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    feed = {n: (x.astype(np.int64) if x.dtype.kind in "iu" else x) for n, x in zip(names, inputs)}
    return session.run(None, feed)


def assert_same(got, expected):
    assert len(got) == len(expected)
    for i, (a, b) in enumerate(zip(got, expected)):
        assert a.shape == b.shape, f"output {i}: shape {a.shape} vs {b.shape}"
        np.testing.assert_allclose(a, b, rtol=0, atol=ATOL, err_msg=f"output {i}")


def recurrent_inputs(rng, m, T, B, lengths, with_state):
    x = rng.standard_normal((B, T, m.input_size) if m.batch_first else (T, B, m.input_size)).astype(np.float32)
    state_shape = (m.num_layers * m.num_directions, B, m.hidden_size)
    hx = None
    if with_state:
        hx = rng.standard_normal(state_shape).astype(np.float32)
        if m.mode == "lstm":
            hx = (hx, rng.standard_normal(state_shape).astype(np.float32))
    lens = rng.integers(0, T + 1, B) if lengths else None
    if lengths:
        lens[0] = T  # the padded length itself occurs
    return x, hx, lens


class WithLengths(nn.Module):
    """forward(x, hx, lengths) with None left out, so every configuration has the same call."""

    def __init__(self, rnn):
        super().__init__()
        self.rnn = rnn

    def forward(self, x, hx=None, lengths=None):
        return self.rnn(x, hx, lengths)


CONFIGS = list(itertools.product(CELLS, (1, 2), (False, True), (False, True), (False, True), (False, True)))


@pytest.mark.parametrize("cell,layers,bidirectional,batch_first,lengths,with_state", CONFIGS)
def test_recurrent_layers_match_onnxruntime(tmp_path, cell, layers, bidirectional, batch_first, lengths, with_state):
    """Every option of RNN/LSTM/GRU, at the traced size and at another batch and time (dynamic axes);
    lengths include 0, where the final state is the initial one."""
    rng = np.random.default_rng(zlib.crc32(repr((cell, layers, bidirectional, batch_first, lengths, with_state)).encode()))
    I, H = (int(v) for v in rng.integers(1, 9, 2))
    extra = {"nonlinearity": cell[4:]} if cell.startswith("rnn") else {"reset_after": False} if cell.endswith(
        "before") else {}
    m = WithLengths(CELLS[cell](I, H, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first,
                                bias=bool(rng.integers(2)), dropout=0.3 if layers > 1 else 0.0, **extra))
    x, hx, lens = recurrent_inputs(rng, m.rnn, 5, 3, lengths, with_state)
    path = tmp_path / "m.onnx"
    proto = mo.export(m, (x, hx, lens), path)
    onnx.checker.check_model(onnx.load(path), full_check=True)
    names = [v.name for v in proto.graph.input]
    for T, B in ((5, 3), (2, 4)):
        x, hx, lens = recurrent_inputs(rng, m.rnn, T, B, lengths, with_state)
        args = [a for a in (x, *(hx if isinstance(hx, tuple) else (hx,)), lens) if a is not None]
        assert_same(run_onnx(path, names, *args), run_minirnn(m, x, hx, lens))


def test_unbatched_input(tmp_path):
    m = nn.GRU(3, 4, num_layers=2, bidirectional=True)
    x = np.random.default_rng(0).standard_normal((6, 3)).astype(np.float32)
    mo.export(m, (x,), tmp_path / "m.onnx")
    for T in (6, 2):
        x = np.random.default_rng(T).standard_normal((T, 3)).astype(np.float32)
        assert_same(run_onnx(tmp_path / "m.onnx", ["input"], x), run_minirnn(m, x))


class Tagger(nn.Module):
    """A chain of modules and functions: Embedding -> tanh -> LSTM -> Linear -> op."""

    def __init__(self, op):
        super().__init__()
        self.op = op
        self.embed = nn.Embedding(11, 5)
        self.rnn = nn.LSTM(5, 6, batch_first=True, bidirectional=True)
        self.head = nn.Sequential(nn.Linear(12, 7), nn.Dropout(0.5), nn.Linear(7, 4))

    def forward(self, ids):
        out, _ = self.rnn(self.embed(ids).tanh())
        return self.op(self.head(out))


OPS = {"log_softmax": lambda y: minirnn.functional.log_softmax(y, -1),
       "softmax": lambda y: minirnn.functional.softmax(y, 1), "relu": minirnn.functional.relu,
       "sigmoid": minirnn.functional.sigmoid, "softplus": minirnn.functional.softplus,
       "transpose": lambda y: y.transpose(0, 1).tanh()}


@pytest.mark.parametrize("op", sorted(OPS))
def test_custom_module_chains(tmp_path, op):
    m = Tagger(OPS[op])
    ids = np.random.default_rng(1).integers(0, 11, (2, 9))
    m.train()
    mo.export(m, (ids,), tmp_path / "m.onnx", input_names=["ids"])
    assert m.training and m.head[1].training  # the modes are restored
    for B, T in ((2, 9), (3, 4)):
        ids = np.random.default_rng(B).integers(0, 11, (B, T))
        assert_same(run_onnx(tmp_path / "m.onnx", ["ids"], ids), run_minirnn(m, ids))


def test_sequential_of_linear_layers_with_named_dynamic_axes(tmp_path):
    m = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.2), nn.Linear(8, 3))
    x = np.ones((2, 4), np.float32)
    proto = mo.export(m, x, tmp_path / "m.onnx", dynamic_axes={"input": {0: "rows"}})
    assert [d.dim_param or d.dim_value for d in proto.graph.input[0].type.tensor_type.shape.dim] == ["rows", 4]
    x = np.random.default_rng(0).standard_normal((5, 4)).astype(np.float32)
    assert_same(run_onnx(tmp_path / "m.onnx", ["input"], x), run_minirnn(m, minirnn.Tensor(x)))


def test_time_and_batch_axes_are_named(tmp_path):
    m = CharLM(9, 4, 5, 2)
    state = np.zeros((2, 1, 5), np.float32)
    proto = mo.export(m, (np.zeros((3, 1), np.int64), (state, state)), tmp_path / "m.onnx",
                      input_names=["ids", "h0", "c0"], output_names=["logits", "h_n", "c_n"])
    dims = {v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
            for v in [*proto.graph.input, *proto.graph.output]}
    assert dims == {"ids": ["time", "batch"], "h0": [2, "batch", 5], "c0": [2, "batch", 5],
                    "logits": ["time", "batch", 9], "h_n": [2, "batch", 5], "c_n": [2, "batch", 5]}


def test_cli_exports_the_main_job_model(tmp_path):
    """`python -m minirnn export charlm.npz charlm.onnx` on a trained char-LM checkpoint; the
    README's onnxruntime lines give minirnn's logits and states."""
    (tmp_path / "t.txt").write_text("abcabd " * 80, encoding="utf-8")
    ckpt, out = tmp_path / "charlm.npz", tmp_path / "charlm.onnx"
    assert main(["train", "charlm", "--data", str(tmp_path / "t.txt"), "--steps", "5", "--hidden", "12",
                 "--embed", "6", "--batch", "4", "--seq-len", "8", "--out", str(ckpt), "--quiet",
                 "--samples", "0"]) == 0
    assert main(["export", str(ckpt), str(out)]) == 0
    session = ort.InferenceSession(str(out))
    chars = json.loads(session.get_modelmeta().custom_metadata_map["minirnn.vocab"])
    model, vocab = minirnn.cli.load_charlm(str(ckpt))
    assert chars == vocab.tokens
    ids = np.array([[chars.index(c), chars.index(d)] for c, d in zip("abcab", "dabca")], dtype=np.int64)
    h0, c0 = (np.random.default_rng(k).standard_normal((2, 2, 12)).astype(np.float32) for k in (1, 2))
    got = session.run(None, {"ids": ids, "h0": h0, "c0": c0})
    assert_same(got, run_minirnn(model, ids, (minirnn.Tensor(h0), minirnn.Tensor(c0))))


def test_cli_export_refuses_a_file_that_is_not_a_checkpoint(tmp_path, capsys):
    minirnn.save({"x": np.zeros(2)}, tmp_path / "x.npz")
    assert main(["export", str(tmp_path / "x.npz"), str(tmp_path / "x.onnx")]) == 2
    assert "expected a file written by 'train charlm'" in capsys.readouterr().err


class WithCell(nn.Module):
    def __init__(self):
        super().__init__()
        self.cell = nn.LSTMCell(3, 4)

    def forward(self, x):
        return self.cell(x)[0]


class Doubler(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(3, 3)

    def forward(self, x):
        return self.fc(x) * 2


@pytest.mark.parametrize("model,message", [
    (WithCell(), "the module 'cell' (LSTMCell) is not supported; supported: Embedding, Linear"),
    (Doubler(), "output 0 ('output') is computed by the op Mul, which is not supported; supported: Embedding"),
    (nn.Sequential(nn.Linear(3, 3), nn.MSELoss()), "the module '1' (MSELoss) is not supported"),
    (nn.Sequential(nn.LSTM(3, 4, proj_size=2)), "'0' (LSTM with proj_size=2) is not supported: ONNX's LSTM has no"),
])
def test_unsupported_modules_and_ops_are_named(tmp_path, model, message):
    with pytest.raises(mo.UnsupportedError, match=message.replace("(", r"\(").replace(")", r"\)")):
        mo.export(model, (np.ones((2, 3), np.float32),), tmp_path / "m.onnx")
    assert not (tmp_path / "m.onnx").exists()


def test_a_constant_output_is_refused(tmp_path):
    class Constant(nn.Module):
        def forward(self, x):
            return minirnn.Tensor(np.ones(3, np.float32))
    with pytest.raises(mo.UnsupportedError, match="neither an example input nor computed from one"):
        mo.export(Constant(), (np.ones(3, np.float32),), tmp_path / "m.onnx")


def test_bad_arguments(tmp_path):
    m = nn.Linear(2, 2)
    with pytest.raises(TypeError, match="model: expected a minirnn.nn.Module"):
        mo.export(lambda x: x, np.ones(2, np.float32), tmp_path / "m.onnx")
    with pytest.raises(ValueError, match="input_names: expected 1 distinct non-empty names"):
        mo.export(m, np.ones(2, np.float32), tmp_path / "m.onnx", input_names=["a", "b"])
    with pytest.raises(ValueError, match="dynamic_axes: expected input names from"):
        mo.export(m, np.ones(2, np.float32), tmp_path / "m.onnx", dynamic_axes={"x": {0: "n"}})
    with pytest.raises(TypeError, match="expected float or integer arrays"):
        mo.export(m, np.array(["a", "b"]), tmp_path / "m.onnx")


@pytest.mark.checkout
def test_the_readme_runs_the_exported_main_job_model_with_onnxruntime(tmp_path, monkeypatch):
    """The README's onnxruntime lines, on a checkpoint of the main job's sizes (2 x 128)."""
    import re
    from pathlib import Path
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    (snippet,) = [b for b in re.findall(r"```python\n(.*?)```", readme, re.S) if "onnxruntime" in b]
    (tmp_path / "t.txt").write_text("The cat sat. " * 40, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    assert main(["train", "charlm", "--data", "t.txt", "--steps", "1", "--batch", "2", "--seq-len", "8",
                 "--quiet", "--samples", "0"]) == 0
    assert main(["export", "charlm.npz", "charlm.onnx"]) == 0
    scope: dict = {}
    exec(compile(snippet, "README.md", "exec"), scope)
    model, vocab = minirnn.cli.load_charlm("charlm.npz")
    ids = np.array([[vocab.tokens.index(c)] for c in "The "])
    state = minirnn.Tensor(np.zeros((2, 1, 128), np.float32))
    assert_same([scope["logits"], scope["h_n"], scope["c_n"]], run_minirnn(model, ids, (state, state)))


def test_without_onnx_the_error_says_what_to_install(tmp_path):
    """minirnn.onnx and `python -m minirnn export` name the extra to install when onnx is missing."""
    import subprocess
    import sys
    hide = "import sys; sys.modules['onnx'] = None; "
    result = subprocess.run([sys.executable, "-c", hide + "import minirnn.onnx"], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 1 and "minirnn.onnx needs the onnx package: pip install 'minirnn[onnx]'" in result.stderr
    minirnn.save({"x": np.zeros(1)}, tmp_path / "c.npz")
    cli = hide + f"from minirnn.cli import main; sys.exit(main(['export', {str(tmp_path / 'c.npz')!r}, 'o.onnx']))"
    result = subprocess.run([sys.executable, "-c", cli], capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert result.returncode == 1 and "export: minirnn.onnx needs the onnx package" in result.stderr
    assert not (tmp_path / "o.onnx").exists()


def test_a_layer_called_twice_has_its_weights_in_the_file_once(tmp_path):
    class Twice(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(4, 4)
            self.rnn = nn.GRU(4, 4, num_layers=2)

        def forward(self, x):
            return self.rnn(self.rnn(self.fc(self.fc(x)))[0])[0]
    m = Twice()
    x = np.random.default_rng(0).standard_normal((3, 2, 4)).astype(np.float32)
    proto = mo.export(m, (x,), tmp_path / "m.onnx")
    weights = [i for i in proto.graph.initializer if i.data_type == onnx.TensorProto.FLOAT]
    assert len(weights) == 8  # fc: W^T, b; rnn: W, R, B of each of its 2 layers
    assert_same(run_onnx(tmp_path / "m.onnx", ["input"], x), run_minirnn(m, minirnn.Tensor(x)))
