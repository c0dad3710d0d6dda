"""Per-step hidden-state gradient norms (hooks) and spectral radius."""
import subprocess
import sys

import numpy as np
import pytest
from test_reference import BACKENDS

import minirnn
from minirnn import Tensor, nn
from minirnn.analysis import hidden_grad_norms, spectral_radius


def test_spectral_radius_matches_torch_and_checks_shape():
    torch = pytest.importorskip("torch")
    m = np.random.default_rng(0).normal(size=(6, 6))
    want = torch.linalg.eigvals(torch.tensor(m)).abs().max().item()
    np.testing.assert_allclose(spectral_radius(m), want, rtol=1e-12)
    np.testing.assert_allclose(spectral_radius(Tensor(np.diag([0.5, -2.0]))), 2.0)
    with pytest.raises(ValueError, match=r"matrix: expected a non-empty square matrix \(H, H\), got shape \(2, 3\)"):
        spectral_radius(np.zeros((2, 3)))


def test_norms_match_torch_for_each_cell():
    torch = pytest.importorskip("torch")
    T, B, I, H = 6, 2, 3, 4
    x = np.random.default_rng(1).normal(size=(T, B, I))
    for ours, theirs in [(nn.RNNCell, torch.nn.RNNCell), (nn.GRUCell, torch.nn.GRUCell),
                         (nn.LSTMCell, torch.nn.LSTMCell)]:
        minirnn.manual_seed(0)
        cell = ours(I, H, dtype=np.float64)
        ref = theirs(I, H).double()
        ref.load_state_dict({k: torch.tensor(v) for k, v in cell.state_dict().items()})
        norms = hidden_grad_norms(cell, x, lambda hs: (hs[-1] * hs[-1]).sum() + hs[2].sum())
        state, hs = None, []
        for t in range(T):
            state = ref(torch.tensor(x[t]), state)
            h = state[0] if isinstance(state, tuple) else state
            h.retain_grad()
            hs.append(h)
        ((hs[-1] * hs[-1]).sum() + hs[2].sum()).backward()
        np.testing.assert_allclose(norms, [h.grad.norm().item() for h in hs], rtol=1e-10)


LAYER_KINDS = [("rnn_tanh", nn.RNN, nn.RNNCell, {}), ("rnn_sigmoid", nn.RNN, nn.RNNCell, {"nonlinearity": "sigmoid"}),
               ("lstm", nn.LSTM, nn.LSTMCell, {}), ("gru", nn.GRU, nn.GRUCell, {}),
               ("gru_reset_before", nn.GRU, nn.GRUCell, {"reset_after": False})]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
@pytest.mark.parametrize("kind,layer,cell,options", LAYER_KINDS, ids=[k[0] for k in LAYER_KINDS])
def test_fused_layer_norms_equal_the_cells(kind, layer, cell, options, dtype, backend):
    """The kernels' dL/dh_t of every step, read from one fused node, against hooks on the cell's steps."""
    T, B, I, H = 7, 3, 2, 5
    minirnn.manual_seed(1)
    c = cell(I, H, dtype=dtype, **options)
    m = layer(I, H, dtype=dtype, **options)
    m.load_state_dict({f"{k}_l0": v for k, v in c.state_dict().items()})
    rng = np.random.default_rng(2)
    x = rng.normal(size=(T, B, I)).astype(dtype)
    h0 = rng.normal(size=(B, H)).astype(dtype)
    hx_cell, hx_layer = ((h0, h0), (h0[None], h0[None])) if kind == "lstm" else (h0, h0[None])

    def loss(hs):
        return (hs[-1] * hs[-1]).sum() + hs[2].sum()

    expected = hidden_grad_norms(c, x, loss, hx_cell)
    with minirnn.fused.use_backend(backend):
        norms = hidden_grad_norms(m, x, loss, hx_layer)
    assert norms.shape == (T,) and expected[3] > 0 and norms[1] > 0  # step 2 and later reached; step 1 through 2
    np.testing.assert_allclose(norms, expected, rtol=1e-10 if dtype == np.float64 else 1e-4)
    for p, q in zip(m.parameters(), c.parameters()):  # and the backward was the layer's usual one
        np.testing.assert_allclose(p.grad, q.grad, rtol=1e-9 if dtype == np.float64 else 1e-3, atol=1e-12)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fused_layer_reports_dh_of_every_step_in_the_callers_order(backend):
    """With lengths (unsorted) and reversed: dh_steps in the caller's frame, equal to hooks on the
    tape's composed steps (cells unrolled within each length, backwards), zero past each length."""
    T, B, I, H = 5, 4, 2, 3
    minirnn.manual_seed(3)
    c = nn.GRUCell(I, H, dtype=np.float64, fused=False)
    rng = np.random.default_rng(4)
    x = rng.normal(size=(T, B, I))
    lengths = np.array([2, 5, 0, 4])
    dy = rng.normal(size=(T, B, H))
    dh_steps = np.full((T, B, H), np.nan)
    params = [c.weight_ih, c.weight_hh, c.bias_ih, c.bias_hh]
    with minirnn.fused.use_backend(backend):
        y, _ = minirnn.fused.rnn_layer("gru", Tensor(x), *params, np.zeros((B, H)), lengths=lengths,
                                       reverse=True, dh_steps=dh_steps)
    y.backward(dy)
    expected = np.zeros((T, B, H))
    for b, n in enumerate(lengths):
        h, hs = Tensor(np.zeros((1, H))), {}
        for t in reversed(range(n)):
            h = c(x[t, b:b + 1], h)
            hs[t] = h
        loss = sum(((hs[t] * Tensor(dy[t, b:b + 1])).sum() for t in hs), Tensor(np.zeros(())))
        for t, ht in hs.items():
            ht.register_hook(lambda g, t=t, b=b: expected.__setitem__((t, b), g[0]))
        if hs:
            loss.backward()
    np.testing.assert_allclose(dh_steps, expected, rtol=1e-12, atol=1e-14)


def test_dh_steps_bad_arguments():
    from minirnn import _C
    T, B, I, H = 3, 2, 2, 4
    args = ("rnn_tanh", np.zeros((T, B, I)), np.zeros((H, I)), np.zeros((H, H)), None, None, np.zeros((B, H)), None,
            None)
    saved = _C.rnn_forward(*args)[3]
    for bad, message in [(np.zeros((T, B, H), np.float32), "dh_steps: expected dtype float64"),
                         (np.zeros((T, B, H + 1)), r"dh_steps: expected \(T, B, H\) = \(3, 2, 4\), got \(3, 2, 5\)"),
                         (np.zeros((H, B, T)).T, "dh_steps: expected a writable C-contiguous array")]:
        with pytest.raises((TypeError, ValueError), match=message):
            _C.rnn_backward(saved, None, None, None, dh_steps=bad)
    with pytest.raises(ValueError, match=r"rnn: dh_steps: expected shape \(3, 2, 4\)"):
        minirnn.fused.rnn_layer("rnn_tanh", Tensor(args[1]), *(Tensor(a) for a in args[2:4]), None, None, args[6],
                                dh_steps=np.zeros((T, B, 1)))
    for layer, message in [(nn.GRU(I, H, num_layers=2), "num_layers=2"), (nn.RNN(I, H, bidirectional=True),
                           "bidirectional=True"), (nn.LSTM(I, H, batch_first=True), "batch_first=True")]:
        with pytest.raises(ValueError, match="cell: expected a cell or a one-layer, one-direction, time-major layer"):
            hidden_grad_norms(layer, np.zeros((T, B, I), np.float32), lambda hs: hs[-1].sum())
    with pytest.raises(TypeError, match="hx: expected a pair"):
        hidden_grad_norms(nn.LSTM(I, H), np.zeros((T, B, I), np.float32), lambda hs: hs[-1].sum(), hx=np.zeros(1))
    with pytest.raises(ValueError, match="cell: expected a layer without proj_size .* got proj_size=1"):
        hidden_grad_norms(nn.LSTM(I, H, proj_size=1), np.zeros((T, B, I), np.float32), lambda hs: hs[-1].sum())


def test_vanishing_gradients_with_small_recurrent_weights():
    minirnn.manual_seed(0)
    cell = nn.RNNCell(3, 8, dtype=np.float64)
    cell.weight_hh.data[:] = 0.2 * np.eye(8)
    assert np.isclose(spectral_radius(cell.weight_hh), 0.2)
    x = np.random.default_rng(0).normal(size=(12, 2, 3))
    norms = hidden_grad_norms(cell, x, lambda hs: hs[-1].sum())
    assert (np.diff(norms) > 0).all() and norms[0] < 1e-6 * norms[-1]


def test_bad_arguments():
    cell = nn.RNNCell(3, 4, dtype=np.float64)
    with pytest.raises(ValueError, match=r"inputs: expected shape \(T, B, I\)"):
        hidden_grad_norms(cell, np.zeros((2, 3)), lambda hs: hs[-1].sum())
    with pytest.raises(ValueError, match="loss_fn: expected a scalar Tensor"):
        hidden_grad_norms(cell, np.zeros((2, 1, 3)), lambda hs: hs[-1])


def test_plots_write_image_files(tmp_path):
    pytest.importorskip("matplotlib")
    from minirnn import plot
    plot.loss_curves({"lstm": [3, 2, 1], "rnn": [3, 3]}, tmp_path / "loss.png")
    plot.gradient_heatmap(np.abs(np.random.default_rng(0).normal(size=(4, 6))), tmp_path / "heat.png")
    plot.loss_curves({"gru": [2, 1]}, tmp_path / "loss.svg")
    for name in ("loss.png", "heat.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    assert b"<svg" in (tmp_path / "loss.svg").read_bytes()
    with pytest.raises(ValueError, match=r"norms: expected a non-empty 2-D array"):
        plot.gradient_heatmap(np.zeros(3), tmp_path / "x.png")
    with pytest.raises(ValueError, match="curves: expected at least one named curve"):
        plot.loss_curves({}, tmp_path / "x.png")


def test_plot_without_matplotlib_explains_the_extra(tmp_path, monkeypatch):
    """Runs whether or not matplotlib is installed: a missing one is simulated."""
    from minirnn import plot
    for name in ("matplotlib", "matplotlib.figure"):
        monkeypatch.setitem(sys.modules, name, None)
    with pytest.raises(ImportError, match=r"pip install 'minirnn\[plot\]'"):
        plot.loss_curves({"a": [1]}, tmp_path / "y.png")
    with pytest.raises(ImportError, match="minirnn.plot needs matplotlib"):
        plot.gradient_heatmap(np.ones((2, 2)), tmp_path / "y.png")
    assert not (tmp_path / "y.png").exists()


def test_matplotlib_is_imported_lazily():
    code = "import sys, minirnn, minirnn.plot, minirnn.analysis, minirnn.cli; print('matplotlib' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "False"
