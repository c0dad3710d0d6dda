"""minirnn.onnx.load: models exported by minirnn and by torch.onnx.export come back as minirnn
layers that compute what the original computes (outputs and gradients) and can be trained."""
import itertools
import warnings

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

import minirnn  # noqa: E402
import minirnn.onnx as mo  # noqa: E402
from minirnn import nn  # noqa: E402
from minirnn.charlm import CharLM  # noqa: E402
from minirnn.onnx.exporter import leaves  # noqa: E402

ATOL = 1e-5


def test_round_trip_gives_back_the_weights_and_outputs(tmp_path):
    m = CharLM(13, 5, 7, 2)
    state = np.zeros((2, 1, 7), np.float32)
    mo.export(m, (np.zeros((2, 1), np.int64), (state, state)), tmp_path / "m.onnx")
    loaded = mo.load(tmp_path / "m.onnx")
    assert [type(c).__name__ for c in loaded.children()] == ["Embedding", "LSTM", "LSTM", "Linear"]
    np.testing.assert_array_equal(loaded.lstm1.weight_hh_l0.data, m.lstm.weight_hh_l1.data)
    np.testing.assert_array_equal(loaded.lstm0.bias_ih_l0.data, m.lstm.bias_ih_l0.data)
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 13, (6, 3))
    h0, c0 = rng.standard_normal((2, 2, 3, 7)).astype(np.float32)
    m.eval()
    with minirnn.no_grad():
        logits, (h, c) = m(ids, (minirnn.Tensor(h0), minirnn.Tensor(c0)))
        got = loaded(ids, h0, c0)
    for a, b in zip(got, (logits, h, c)):
        np.testing.assert_allclose(a.data, b.data, rtol=0, atol=1e-6)


@pytest.mark.parametrize("cell,bidirectional,lengths", list(itertools.product(
    ("lstm", "gru", "gru_reset_before", "rnn_relu", "rnn_sigmoid"), (False, True), (False, True))))
def test_round_trip_of_each_cell(tmp_path, cell, bidirectional, lengths):
    cls = {"lstm": nn.LSTM, "gru": nn.GRU, "gru_reset_before": nn.GRU, "rnn_relu": nn.RNN, "rnn_sigmoid": nn.RNN}[cell]
    options = {"rnn_relu": {"nonlinearity": "relu"}, "rnn_sigmoid": {"nonlinearity": "sigmoid"},
               "gru_reset_before": {"reset_after": False}}.get(cell, {})
    m = cls(3, 4, num_layers=2, bidirectional=bidirectional, batch_first=True, **options)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((3, 5, 3)).astype(np.float32)
    h0 = rng.standard_normal((2 * (1 + bidirectional), 3, 4)).astype(np.float32)
    hx = (h0, h0 + 1) if cell == "lstm" else h0
    lens = np.array([5, 0, 2]) if lengths else None
    mo.export(m, (x, hx, lens), tmp_path / "m.onnx")
    loaded = mo.load(tmp_path / "m.onnx")
    with minirnn.no_grad():
        expected = leaves(m(x, hx, lens))
        got = loaded(x, *leaves(hx), *leaves(lens))
    for a, b in zip(got, expected, strict=True):
        np.testing.assert_allclose(a.data, b.data, rtol=0, atol=1e-6)


class TorchTagger:
    """A torch Embedding -> 2-layer bidirectional LSTM -> Linear, exported by torch.onnx.export."""

    def __init__(self, torch, tmp_path, dynamo):
        class Model(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.embed = torch.nn.Embedding(20, 8)
                self.lstm = torch.nn.LSTM(8, 16, num_layers=2, bidirectional=True)
                self.head = torch.nn.Linear(32, 20)

            def forward(self, ids):
                return self.head(self.lstm(self.embed(ids))[0])
        torch.manual_seed(0)
        self.model = Model().eval()
        self.path = tmp_path / "torch.onnx"
        ids = torch.randint(0, 20, (5, 3))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the legacy exporter's deprecation, its batch-size advice
            if dynamo:
                dim = torch.export.Dim
                torch.onnx.export(self.model, (ids,), str(self.path), input_names=["ids"], opset_version=17,
                                  dynamo=True, dynamic_shapes={"ids": {0: dim("T"), 1: dim("B")}}, verbose=False)
            else:
                torch.onnx.export(self.model, (ids,), str(self.path), input_names=["ids"], opset_version=17,
                                  dynamo=False, dynamic_axes={"ids": {0: "T", 1: "B"}})


@pytest.mark.parametrize("dynamo", [False, True])
def test_a_torch_exported_lstm_matches_torch_outputs_and_gradients(tmp_path, dynamo):
    torch = pytest.importorskip("torch")
    if dynamo:
        pytest.importorskip("onnxscript")
    tagger = TorchTagger(torch, tmp_path, dynamo)
    loaded = mo.load(tagger.path)
    assert sorted(type(c).__name__ for c in loaded.children()) == ["Embedding", "LSTM", "LSTM", "Linear"]
    rng = np.random.default_rng(2)
    # (torch's dynamo exporter writes the traced T into a Reshape: onnxruntime fails at another T too)
    for T, B in ((5, 3), (5, 2) if dynamo else (7, 2)):
        ids = rng.integers(0, 20, (T, B))
        probe = rng.standard_normal((T, B, 20)).astype(np.float32)
        tagger.model.zero_grad()
        expected = tagger.model(torch.from_numpy(ids))
        (expected * torch.from_numpy(probe)).sum().backward()
        loaded.zero_grad()
        got = loaded(ids)
        (got * minirnn.Tensor(probe)).sum().backward()
        np.testing.assert_allclose(got.data, expected.detach().numpy(), rtol=0, atol=ATOL)
        grads = {"embedding0": loaded.embedding0.weight.grad, "linear0": loaded.linear0.weight.grad,
                 "lstm0": loaded.lstm0.weight_hh_l0_reverse.grad}
        torch_grads = {"embedding0": tagger.model.embed.weight.grad, "linear0": tagger.model.head.weight.grad,
                       "lstm0": tagger.model.lstm.weight_hh_l0_reverse.grad}
        for name, grad in grads.items():
            np.testing.assert_allclose(grad, torch_grads[name].numpy(), rtol=0, atol=ATOL, err_msg=name)


def test_a_loaded_model_trains(tmp_path):
    m = nn.Sequential(nn.Linear(3, 8), nn.Linear(8, 1))
    mo.export(m, minirnn.Tensor(np.zeros((1, 3), np.float32)), tmp_path / "m.onnx", dynamic_axes={"input": {0: "n"}})
    loaded = mo.load(tmp_path / "m.onnx")
    rng = np.random.default_rng(3)
    x = rng.standard_normal((64, 3)).astype(np.float32)
    y = minirnn.Tensor(x @ np.array([[1.0], [-2.0], [0.5]], np.float32))
    opt = minirnn.optim.Adam(loaded.parameters(), lr=0.02)
    losses = []
    for _ in range(100):
        opt.zero_grad()
        loss = minirnn.functional.mse_loss(loaded(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.05 * losses[0]


def _lstm_graph(tmp_path, opset=17, **attrs):
    from onnx import TensorProto, helper, numpy_helper
    W = numpy_helper.from_array(np.zeros((1, 8, 3), np.float32), "W")
    R = numpy_helper.from_array(np.zeros((1, 8, 2), np.float32), "R")
    op = attrs.pop("op", "LSTM")
    node = helper.make_node(op, ["x", "W", "R"], ["y"], name="rec", hidden_size=2, **attrs)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [W, R])
    path = tmp_path / "g.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)]), path)
    return path


@pytest.mark.parametrize("attrs,message", [
    ({"direction": "reverse"}, "node 'rec': LSTM with direction='reverse'"),
    ({"clip": 1.0}, "LSTM with layout=1, clip or input_forget"),
    ({"activations": ["Sigmoid", "Relu", "Tanh"]}, r"LSTM with activations=\['Sigmoid', 'Relu', 'Tanh'\]"),
    ({"op": "RNN", "activations": ["Softsign"]}, r"RNN with activations=\['Softsign'\]"),
])
def test_unsupported_recurrent_options_are_named(tmp_path, attrs, message):
    with pytest.raises(mo.UnsupportedError, match=message):
        mo.load(_lstm_graph(tmp_path, **attrs))


def test_gru_without_linear_before_reset_loads_as_the_lectures_gru(tmp_path):
    """ONNX's default GRU (linear_before_reset=0: the reset gate before the recurrent product) is
    GRU(reset_after=False); loaded from a graph torch never wrote, it matches onnxruntime."""
    from onnx import TensorProto, helper, numpy_helper
    import onnxruntime
    rng = np.random.default_rng(3)
    W = numpy_helper.from_array(rng.standard_normal((1, 6, 3)).astype(np.float32), "W")
    R = numpy_helper.from_array(rng.standard_normal((1, 6, 2)).astype(np.float32), "R")
    node = helper.make_node("GRU", ["x", "W", "R"], ["y"], name="gru", hidden_size=2)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 1, 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)], [W, R])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "g.onnx")
    loaded = mo.load(tmp_path / "g.onnx")
    x = rng.standard_normal((4, 1, 3)).astype(np.float32)
    expected = onnxruntime.InferenceSession(str(tmp_path / "g.onnx")).run(None, {"x": x})[0]
    with minirnn.no_grad():
        got = loaded(x)
    np.testing.assert_allclose((got[0] if isinstance(got, tuple) else got).data, expected, rtol=0, atol=1e-6)


def test_unknown_operators_and_old_opsets_are_named(tmp_path):
    from onnx import TensorProto, helper
    node = helper.make_node("Erf", ["x"], ["y"], name="erf")
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [2])])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "e.onnx")
    with pytest.raises(mo.UnsupportedError, match="node 'erf': the operator Erf is not supported; supported: LSTM"):
        mo.load(tmp_path / "e.onnx")
    with pytest.raises(mo.UnsupportedError, match="expected opset 13 or later, got 12"):
        mo.load(_lstm_graph(tmp_path, opset=12))


def test_wrong_number_of_inputs(tmp_path):
    mo.export(nn.Linear(2, 2), minirnn.Tensor(np.zeros((1, 2), np.float32)), tmp_path / "m.onnx")
    with pytest.raises(TypeError, match=r"expected 1 inputs \['input'\], got 2"):
        mo.load(tmp_path / "m.onnx")(np.zeros((1, 2), np.float32), 1)


@pytest.mark.parametrize("trans_b", [0, 1])
def test_gemm_becomes_a_linear_layer(tmp_path, trans_b):
    from onnx import TensorProto, helper, numpy_helper
    rng = np.random.default_rng(4)
    w, b = rng.standard_normal((3, 5)).astype(np.float32), rng.standard_normal(5).astype(np.float32)
    node = helper.make_node("Gemm", ["x", "W", "b"], ["y"], name="fc", transB=trans_b)
    graph = helper.make_graph([node], "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 3])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 5])],
                              [numpy_helper.from_array(w.T.copy() if trans_b else w, "W"),
                               numpy_helper.from_array(b, "b")])
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), tmp_path / "g.onnx")
    loaded = mo.load(tmp_path / "g.onnx")
    assert [type(c).__name__ for c in loaded.children()] == ["Linear"]
    x = rng.standard_normal((4, 3)).astype(np.float32)
    np.testing.assert_allclose(loaded(x).data, x @ w + b, rtol=1e-6, atol=1e-6)
