"""The lectures' models PyTorch lacks (Elman with a sigmoid, the GRU with the reset gate before the
recurrent product) against a plain NumPy formula of each (tests/lecture_oracle.py), and the IRNN's
identity init. The kernels' behaviours shared with the other modes (threads, inference, lengths,
workspace) are checked by the mode-parametrized tests in test_kernels.py / test_reference.py."""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from lecture_oracle import LECTURE_MODES
from lecture_oracle import layer as oracle_layer
from lecture_oracle import module as oracle_module
from test_reference import BACKENDS
from torch_oracle import assert_close_to_scale

import minirnn
from minirnn import Tensor, fused, gradcheck, init, modes, nn, reference
from minirnn.nn.cells import RNNCellBase
from minirnn.nn.rnn import RNNBase

T, B, I, H = 5, 4, 3, 6
RTOL = {np.float32: 1e-5, np.float64: 1e-12}


def make_module(mode: str, **kwargs: Any) -> RNNBase:
    if mode == "rnn_sigmoid":
        return nn.RNN(I, H, nonlinearity="sigmoid", **kwargs)
    return nn.GRU(I, H, reset_after=False, **kwargs)


def make_cell(mode: str, **kwargs: Any) -> RNNCellBase:
    if mode == "rnn_sigmoid":
        return nn.RNNCell(I, H, nonlinearity="sigmoid", **kwargs)
    return nn.GRUCell(I, H, reset_after=False, **kwargs)


def layer_args(mode: str, dtype: type, bias: bool, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    gh = modes.NUM_GATES[mode] * H

    def draw(*shape: int) -> np.ndarray:
        return rng.uniform(-1, 1, shape).astype(dtype)

    b = (draw(gh), draw(gh)) if bias else (None, None)
    return draw(T, B, I), draw(gh, I), draw(gh, H), *b, draw(B, H)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode,dtype,bias,lengths",
                         list(itertools.product(LECTURE_MODES, (np.float32, np.float64), (True, False),
                                                (None, np.array([T, 0, 2, T - 1])))))
def test_layer_matches_the_formula(backend: str, mode: str, dtype: type, bias: bool,
                                   lengths: np.ndarray | None) -> None:
    args = layer_args(mode, dtype, bias)
    lens = None if lengths is None else lengths.astype(np.int64)
    y, h_n, c_n, _ = fused.get_backend(backend).rnn_forward(mode, *args, None, lens)
    y_e, h_e = oracle_layer(mode, *(None if a is None else a.astype(np.float64) for a in args), lens)
    assert c_n is None and y.dtype == h_n.dtype == dtype
    assert_close_to_scale(y, y_e, RTOL[dtype], "y")
    assert_close_to_scale(h_n, h_e, RTOL[dtype], "h_n")


@pytest.mark.parametrize("mode", LECTURE_MODES)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("num_layers,bidirectional,batch_first", [(1, False, False), (2, True, True), (3, True, False)])
def test_module_matches_the_formula(mode: str, dtype: type, num_layers: int, bidirectional: bool,
                                    batch_first: bool) -> None:
    """Stacked, bidirectional, batch first, lengths in any order (one of them 0)."""
    minirnn.manual_seed(4)
    m = make_module(mode, num_layers=num_layers, bidirectional=bidirectional, batch_first=batch_first, dtype=dtype)
    rng = np.random.default_rng(5)
    x = rng.standard_normal((T, B, I)).astype(dtype)
    h0 = rng.standard_normal((num_layers * (1 + bidirectional), B, H)).astype(dtype)
    lengths = np.array([2, T, 0, 3])
    out, h_n = m(x.transpose(1, 0, 2) if batch_first else x, h0, lengths=lengths)
    out_e, h_e = oracle_module(mode, x, m.state_dict(), num_layers, bidirectional, h0, lengths)
    assert_close_to_scale(out.data.transpose(1, 0, 2) if batch_first else out.data, out_e, 10 * RTOL[dtype], "output")
    assert_close_to_scale(h_n.data, h_e, 10 * RTOL[dtype], "h_n")


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", LECTURE_MODES)
def test_gradcheck_two_layers_bidirectional_with_lengths(backend: str, mode: str) -> None:
    """float64 central differences through every parameter, the input and h0 of a stacked
    bidirectional module (each layer and direction one fused node)."""
    minirnn.manual_seed(6)
    m = make_module(mode, num_layers=2, bidirectional=True, dtype=np.float64)
    rng = np.random.default_rng(7)
    x = Tensor(rng.standard_normal((3, 3, I)), requires_grad=True)
    h0 = Tensor(rng.standard_normal((4, 3, H)) * 0.5, requires_grad=True)
    lengths = np.array([3, 1, 2])
    params = list(m.parameters())

    def run(x: Tensor, h0: Tensor, *_: Tensor) -> tuple[Tensor, Tensor]:
        with fused.use_backend(backend):
            return m(x, h0, lengths=lengths)

    assert gradcheck(run, [x, h0, *params])


@pytest.mark.parametrize("mode", LECTURE_MODES)
@pytest.mark.parametrize("cell_fused", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_cell_matches_the_formula_and_gradchecks(mode: str, cell_fused: bool, dtype: type) -> None:
    minirnn.manual_seed(8)
    cell = make_cell(mode, dtype=dtype, fused=cell_fused)
    rng = np.random.default_rng(9)
    x, h = rng.standard_normal((B, I)).astype(dtype), rng.standard_normal((B, H)).astype(dtype)
    expected = oracle_layer(mode, x[None].astype(np.float64), *(p.data.astype(np.float64) for p in cell.parameters()),
                            h.astype(np.float64))[1]
    assert_close_to_scale(cell(x, h).data, expected, RTOL[dtype], "h'")
    assert_close_to_scale(cell(x[0], h[0]).data, expected[0], RTOL[dtype], "h' unbatched")
    cell64 = make_cell(mode, dtype=np.float64, fused=cell_fused)
    xt, ht = Tensor(x.astype(np.float64), requires_grad=True), Tensor(h.astype(np.float64), requires_grad=True)
    assert gradcheck(lambda a, b, *_: cell64(a, b), [xt, ht, *cell64.parameters()])


@pytest.mark.parametrize("mode", LECTURE_MODES)
def test_fused_cell_equals_composed_cell(mode: str) -> None:
    """Outputs and every gradient of the two speeds of the same step, over three steps."""
    results = []
    for cell_fused in (True, False):
        minirnn.manual_seed(10)
        cell = make_cell(mode, dtype=np.float64, fused=cell_fused)
        rng = np.random.default_rng(11)
        xs = [Tensor(rng.standard_normal((B, I)), requires_grad=True) for _ in range(3)]
        h = Tensor(rng.standard_normal((B, H)), requires_grad=True)
        state = h
        for x in xs:
            state = cell(x, state)
        (state * Tensor(rng.standard_normal((B, H)))).sum().backward()
        results.append([state.data, h.grad] + [x.grad for x in xs] + [p.grad for p in cell.parameters()])
    for k, (a, e) in enumerate(zip(*results)):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-13, err_msg=f"item {k}")


@pytest.mark.parametrize("threads", [1, 2])
def test_kernels_match_reference_with_w_hh_given_to_blas_unpacked(threads: int) -> None:
    """One row a step and a W_hh larger than L2 (3 * 300^2 * 4 bytes): the forward pass gives W_hh's
    blocks to BLAS as they are (the 'direct' path), the r/z product and the W_hn product both."""
    from minirnn import _C
    rng = np.random.default_rng(14)
    x, h0 = rng.standard_normal((3, 1, I)).astype(np.float32), rng.standard_normal((1, 300)).astype(np.float32)
    w_ih, w_hh = (rng.uniform(-0.06, 0.06, (900, n)).astype(np.float32) for n in (I, 300))
    b = rng.uniform(-0.06, 0.06, 900).astype(np.float32)
    saved = _C.num_threads()
    _C.set_num_threads(threads)
    try:
        y, h_n, _, state = _C.rnn_forward("gru_reset_before", x, w_ih, w_hh, b, b, h0, None, None)
        grads = _C.rnn_backward(state, np.ones_like(y), None, None)
    finally:
        _C.set_num_threads(saved)
    y_r, h_r, _, state_r = reference.rnn_forward("gru_reset_before", x, w_ih, w_hh, b, b, h0, None, None)
    expected = reference.rnn_backward(state_r, np.ones_like(y), np.zeros_like(h0), None)
    assert_close_to_scale(y, y_r, 1e-5, "y")
    for name, a, e in zip(("dx", "dw_ih", "dw_hh", "db_ih", "db_hh", "dh0"), grads, expected):
        assert_close_to_scale(a, e, 1e-5, name)


def test_reset_before_has_no_gate_gradient_products() -> None:
    """Its dW_hn is dG_n^T (r * h), not a product with h: the kernels refuse gate_grads for it."""
    from minirnn import _C
    x, w_ih, w_hh, b_ih, b_hh, h0 = layer_args("gru_reset_before", np.float64, True)
    saved = _C.rnn_forward("gru_reset_before", x, w_ih, w_hh, b_ih, b_hh, h0, None, None)[3]
    with pytest.raises(ValueError, match="gate_grads: expected False for mode 'gru_reset_before', got True"):
        _C.rnn_backward(saved, None, None, None, True)


def test_repr_names_the_variant() -> None:
    assert "reset_after=False" in repr(nn.GRU(I, H, reset_after=False))
    assert "reset_after" not in repr(nn.GRU(I, H))
    assert "reset_after=False" in repr(nn.GRUCell(I, H, reset_after=False))


# ---------------------------------------------------------------------------- IRNN
@pytest.mark.parametrize("make", [lambda **k: nn.RNN(I, H, nonlinearity="relu", num_layers=2, bidirectional=True, **k),
                                  lambda **k: nn.RNNCell(I, H, nonlinearity="relu", **k)])
def test_identity_recurrent_init_is_the_irnn(make: Any) -> None:
    """Le, Jaitly and Hinton (2015): W_hh = I, biases 0; W_ih keeps the default init."""
    minirnn.manual_seed(12)
    m = make(recurrent_init="identity", dtype=np.float64)
    for name, p in m.named_parameters():
        if name.startswith("weight_hh"):
            np.testing.assert_array_equal(p.data, np.eye(H), err_msg=name)
        elif name.startswith("bias"):
            np.testing.assert_array_equal(p.data, 0.0, err_msg=name)
        else:
            assert 0 < np.abs(p.data).max() <= 1 / np.sqrt(H), name


def test_irnn_with_zero_input_carries_a_positive_state_unchanged() -> None:
    """What the identity init is for: relu(I h + 0) = h for h >= 0, over any number of steps."""
    m = nn.RNN(I, H, nonlinearity="relu", recurrent_init="identity", dtype=np.float64)
    h0 = np.abs(np.random.default_rng(13).standard_normal((1, 2, H)))
    out, h_n = m(np.zeros((50, 2, I)), h0)
    np.testing.assert_array_equal(h_n.data, h0)
    np.testing.assert_array_equal(out.data[-1], h0[0])


def test_eye_fills_the_identity_like_torch() -> None:
    w = np.full((3, 5), 7.0, np.float32)
    assert init.eye_(w) is w
    np.testing.assert_array_equal(w, np.eye(3, 5))
    t = Tensor(np.ones((4, 2)))
    init.eye_(t)
    np.testing.assert_array_equal(t.data, np.eye(4, 2))
    torch = pytest.importorskip("torch")
    np.testing.assert_array_equal(w, torch.nn.init.eye_(torch.empty(3, 5)).numpy())


@pytest.mark.parametrize("call,error,message", [
    (lambda: init.eye_(np.zeros(3)), ValueError, r"eye_: expected a 2-D tensor, got shape \(3,\)"),
    (lambda: init.eye_(np.zeros((2, 2, 2))), ValueError, r"eye_: expected a 2-D tensor, got shape \(2, 2, 2\)"),
    (lambda: init.eye_(np.zeros((2, 2), np.int64)), TypeError, "eye_: expected tensor to be a float"),
    (lambda: nn.LSTM(I, H, recurrent_init="identity"), ValueError,
     "LSTM: recurrent_init: 'identity' \\(IRNN\\) is for an Elman RNN, not mode 'lstm'"),
    (lambda: nn.GRUCell(I, H, recurrent_init="identity"), ValueError, "GRUCell: recurrent_init: 'identity'"),
    (lambda: nn.RNN(I, H, nonlinearity="softsign"), ValueError,
     "RNN: nonlinearity: expected one of \\('tanh', 'relu', 'sigmoid'\\), got 'softsign'"),
    (lambda: nn.RNNCell(I, H, nonlinearity="elu"), ValueError, "RNNCell: nonlinearity: expected one of"),
    (lambda: RNNBase("lstm", I, H, reset_after=False), ValueError,
     "RNNBase: reset_after: expected True \\(only a GRU has the option\\), got False for mode 'lstm'"),
    (lambda: RNNCellBase("rnn_tanh", I, H, reset_after=False), ValueError,
     "RNNCellBase: reset_after: expected True \\(only a GRU has the option\\), got False for mode 'rnn_tanh'"),
    (lambda: nn.GRU(I, H, reset_after="no"), TypeError, "GRU: reset_after: expected True or False, got 'no'"),
    (lambda: nn.GRUCell(I, H, reset_after=0), TypeError, "GRUCell: reset_after: expected True or False, got 0"),
])
def test_bad_arguments_name_the_argument(call: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()
