"""Per-step hidden-state gradient norms (hooks) and spectral radius."""
import subprocess
import sys

import numpy as np
import pytest

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
