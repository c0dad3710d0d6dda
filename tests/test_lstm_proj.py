"""nn.LSTM(proj_size=P), PyTorch's projected LSTM: the fused kernels and the NumPy reference
against torch (outputs and every gradient) over layers x bidirectional x batch_first x lengths x
dtype, state dicts both ways, gradcheck in float64, the reference against the formula written
out, and clear errors for bad arguments."""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from test_reference import BACKENDS
from test_rnn_modules import B, H, I, T, run_torch, skip_unless_available
from torch_oracle import assert_close_to_scale

import minirnn
from minirnn import Tensor, fused, gradcheck, nn, reference
from minirnn.nn.rnn import RNNBase

P = 2  # proj_size, < H = 3
pytestmark = pytest.mark.filterwarnings("ignore:LSTM with projections is not supported with oneDNN")

GRID = list(itertools.product((1, 2), (False, True), (False, True), (False, True), (np.float64, np.float32)))


def _case_id(case: tuple) -> str:
    layers, bidirectional, batch_first, lengths, dtype = case
    return f"L{layers}-bi{int(bidirectional)}-bf{int(batch_first)}-len{int(lengths)}-{np.dtype(dtype).name}"


def _random_case(seed: int, num_layers: int, bidirectional: bool, batch_first: bool, with_lengths: bool,
                 dtype: Any) -> tuple:
    """Input, (h0, c0), lengths and the output gradients (output, h_n, c_n) of one grid case."""
    rng = np.random.default_rng(seed)
    D = 2 if bidirectional else 1
    x = rng.standard_normal((B, T, I) if batch_first else (T, B, I)).astype(dtype)
    hx = [rng.standard_normal((num_layers * D, B, size)).astype(dtype) for size in (P, H)]
    lengths = rng.integers(1, T + 1, B) if with_lengths else None  # torch packs no empty sequence
    grads = [rng.standard_normal(x.shape[:2] + (D * P,))] + [rng.standard_normal(s.shape) for s in hx]
    if lengths is not None:  # padded outputs are constant zero: no gradient flows from there
        mask = (np.arange(T)[:, None] < lengths[None, :])[:, :, None]
        grads[0] = grads[0] * (mask.transpose(1, 0, 2) if batch_first else mask)
    return x, hx, lengths, [g.astype(dtype) for g in grads]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", GRID, ids=[_case_id(c) for c in GRID])
def test_projected_lstm_matches_torch(backend: str, case: tuple) -> None:
    torch = pytest.importorskip("torch")
    skip_unless_available(backend)
    num_layers, bidirectional, batch_first, with_lengths, dtype = case
    kwargs = {"num_layers": num_layers, "bidirectional": bidirectional, "batch_first": batch_first,
              "bias": True, "proj_size": P}
    m = nn.LSTM(I, H, dtype=dtype, **kwargs)
    x, hx, lengths, grads = _random_case(GRID.index(case), num_layers, bidirectional, batch_first, with_lengths,
                                         dtype)
    expected_values, expected_grads = run_torch(torch, "lstm", m.state_dict(), x, hx, lengths, grads, **kwargs)

    xt = Tensor(x.copy(), requires_grad=True)
    states = [Tensor(s.copy(), requires_grad=True) for s in hx]
    with fused.use_backend(backend):
        out, (h_n, c_n) = m(xt, tuple(states), lengths=lengths)
    for o, g in zip((out, h_n, c_n), grads):
        o.backward(g, retain_graph=True)
    rtol = 1e-9 if dtype == np.float64 else 1e-4
    for name, a, e in zip(("output", "h_n", "c_n"), (out, h_n, c_n), expected_values):
        assert a.dtype == dtype, name
        assert_close_to_scale(a.data, e, rtol, name)
    ours = [xt.grad] + [p.grad for p in m.parameters()] + [s.grad for s in states]
    names = ["input"] + [n for n, _ in m.named_parameters()] + ["h0", "c0"]
    assert len(ours) == len(expected_grads) and any("weight_hr" in n for n in names)
    for name, a, e in zip(names, ours, expected_grads):
        assert_close_to_scale(a, e, rtol, f"grad of {name}")


@pytest.mark.parametrize("num_layers,bidirectional,bias", [(1, False, True), (2, True, False)])
def test_state_dicts_move_both_ways_with_torch(num_layers: int, bidirectional: bool, bias: bool) -> None:
    torch = pytest.importorskip("torch")
    options = {"num_layers": num_layers, "bidirectional": bidirectional, "bias": bias, "proj_size": P}
    x = np.random.default_rng(4).standard_normal((T, B, I))
    t = torch.nn.LSTM(I, H, dtype=torch.float64, **options)
    m = nn.LSTM(I, H, dtype=np.float64, **options)
    assert [(k, tuple(v.shape)) for k, v in t.state_dict().items()] == \
        [(k, v.shape) for k, v in m.state_dict().items()]
    for source_is_torch in (True, False):
        if source_is_torch:
            m.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})
        else:
            m = nn.LSTM(I, H, dtype=np.float64, **options)  # fresh values
            t.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})
        for k, v in t.state_dict().items():
            np.testing.assert_array_equal(m.state_dict()[k], v.numpy(), err_msg=k)
        assert_close_to_scale(m(x)[0].data, t(torch.from_numpy(x))[0].detach().numpy(), 1e-9, "output")


@pytest.mark.parametrize("backend", BACKENDS)
def test_gradcheck_two_layers_bidirectional_with_lengths(backend: str) -> None:
    """float64 central differences through every parameter (weight_hr included), the input and
    both initial states of a stacked bidirectional projected LSTM."""
    minirnn.manual_seed(6)
    m = nn.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=P, dtype=np.float64)
    rng = np.random.default_rng(7)
    x = Tensor(rng.standard_normal((3, 3, I)), requires_grad=True)
    h0 = Tensor(rng.standard_normal((4, 3, P)) * 0.5, requires_grad=True)
    c0 = Tensor(rng.standard_normal((4, 3, H)) * 0.5, requires_grad=True)
    lengths = np.array([3, 1, 2])
    params = list(m.parameters())

    def run(x: Tensor, h0: Tensor, c0: Tensor, *_: Tensor) -> tuple[Tensor, ...]:
        with fused.use_backend(backend):
            out, (h_n, c_n) = m(x, (h0, c0), lengths=lengths)
        return out, h_n, c_n

    assert gradcheck(run, [x, h0, c0, *params])


def _formula(x: np.ndarray, w_ih: np.ndarray, w_hh: np.ndarray, w_hr: np.ndarray, b: np.ndarray,
             h: np.ndarray, c: np.ndarray) -> np.ndarray:
    """The projected LSTM written out one step, one sequence at a time (no lengths): y (T, B, P)."""
    def sigmoid(v: np.ndarray) -> np.ndarray:
        return 1 / (1 + np.exp(-v))

    ys = []
    for x_t in x:
        z = x_t @ w_ih.T + h @ w_hh.T + b
        i, f, g, o = sigmoid(z[:, :H]), sigmoid(z[:, H:2 * H]), np.tanh(z[:, 2 * H:3 * H]), sigmoid(z[:, 3 * H:])
        c = f * c + i * g
        h = (o * np.tanh(c)) @ w_hr.T
        ys.append(h)
    return np.stack(ys)


@pytest.mark.parametrize("backend", BACKENDS)
def test_layer_matches_the_formula(backend: str) -> None:
    rng = np.random.default_rng(3)
    x, w_ih, w_hh, w_hr = (rng.standard_normal(s) for s in ((T, B, I), (4 * H, I), (4 * H, P), (P, H)))
    b_ih, b_hh, h0, c0 = (rng.standard_normal(s) for s in ((4 * H,), (4 * H,), (B, P), (B, H)))
    y, h_n, c_n, _ = fused.get_backend(backend).lstm_proj_forward(x, w_ih, w_hh, w_hr, b_ih, b_hh, h0, c0, None)
    expected = _formula(x, w_ih, w_hh, w_hr, b_ih + b_hh, h0, c0)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(h_n, y[-1])
    assert c_n.shape == (B, H)


@pytest.mark.extension
@pytest.mark.parametrize("threads", [1, 2])
def test_kernels_match_reference_with_lengths_on_any_thread_count(threads: int) -> None:
    """Rows shared among threads, every length from 0 to T, no bias: the C kernels equal the
    NumPy reference in every output and gradient."""
    rng = np.random.default_rng(5)
    Bl = 7
    args = [rng.standard_normal(s) for s in ((T, Bl, I), (4 * H, I), (4 * H, P), (P, H))]
    args += [None, None, rng.standard_normal((Bl, P)), rng.standard_normal((Bl, H)), np.array([5, 0, 3, 1, 5, 2, 4])]
    before = minirnn._C.num_threads()
    minirnn._C.set_num_threads(threads)
    work = minirnn._C.min_step_work()
    minirnn._C.set_min_step_work(0)
    try:
        ours = minirnn._C.lstm_proj_forward(*args)
        dy, dh_n, dc_n = (rng.standard_normal(s) for s in ((T, Bl, P), (Bl, P), (Bl, H)))
        our_grads = minirnn._C.lstm_proj_backward(ours[3], dy, dh_n, dc_n)
    finally:
        minirnn._C.set_num_threads(before)
        minirnn._C.set_min_step_work(work)
    ref = reference.lstm_proj_forward(*args)
    ref_grads = reference.lstm_proj_backward(ref[3], dy, dh_n, dc_n)
    for name, a, e in zip(("y", "h_n", "c_n"), ours[:3], ref[:3]):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12, err_msg=name)
    names = ("dx", "dw_ih", "dw_hh", "dw_hr", "db_ih", "db_hh", "dh0", "dc0")
    for name, a, e in zip(names, our_grads, ref_grads):
        if e is None:
            assert a is None, name
        else:
            np.testing.assert_allclose(a, e, rtol=1e-11, atol=1e-12, err_msg=name)


def test_shapes_and_repr() -> None:
    m = nn.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=P, batch_first=True)
    assert m.weight_hh_l1.shape == (4 * H, P) and m.weight_ih_l1.shape == (4 * H, 2 * P)
    assert m.weight_hr_l1_reverse.shape == (P, H)
    out, (h_n, c_n) = m(np.zeros((B, T, I), np.float32))
    assert out.shape == (B, T, 2 * P) and h_n.shape == (4, B, P) and c_n.shape == (4, B, H)
    out, (h_n, c_n) = m(np.zeros((T, I), np.float32))  # unbatched
    assert out.shape == (T, 2 * P) and h_n.shape == (4, P) and c_n.shape == (4, H)
    assert "proj_size=2" in repr(m)


@pytest.mark.parametrize("make,kwargs,error,message", [
    (nn.LSTM, {"proj_size": H}, ValueError, r"proj_size: expected 0 or less than hidden_size = 3, got 3"),
    (nn.LSTM, {"proj_size": H + 4}, ValueError, "proj_size: expected 0 or less than hidden_size"),
    (nn.LSTM, {"proj_size": -1}, ValueError, r"proj_size: expected an int >= 0 \(0: no projection\), got -1"),
    (nn.LSTM, {"proj_size": 1.5}, TypeError, "proj_size: expected an int, got float"),
    (lambda **k: RNNBase("gru", **k), {"proj_size": 1}, ValueError,
     "proj_size: expected 0 for mode 'gru' .only an LSTM projects its state., got 1"),
    (lambda **k: RNNBase("rnn_tanh", **k), {"proj_size": 2}, ValueError, "proj_size: expected 0 for mode 'rnn_tanh'"),
])
def test_bad_proj_size_raises(make: Any, kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        make(**{"input_size": I, "hidden_size": H, **kwargs})


def test_bad_states_name_proj_size() -> None:
    m = nn.LSTM(I, H, proj_size=P)
    x = np.zeros((T, B, I), np.float32)
    with pytest.raises(ValueError, match=r"hx\[0\]: expected shape \(1, 3, 2\) .*proj_size"):
        m(x, (np.zeros((1, B, H), np.float32), np.zeros((1, B, H), np.float32)))
    with pytest.raises(ValueError, match=r"hx\[1\]: expected shape \(1, 3, 3\) .*hidden_size"):
        m(x, (np.zeros((1, B, P), np.float32), np.zeros((1, B, P), np.float32)))


@pytest.mark.parametrize("backend", BACKENDS)
def test_kernel_arguments_are_checked(backend: str) -> None:
    skip_unless_available(backend)
    f = fused.get_backend(backend).lstm_proj_forward
    x, w_ih, w_hh, w_hr = np.zeros((T, B, I)), np.zeros((4 * H, I)), np.zeros((4 * H, P)), np.zeros((P, H))
    h0, c0 = np.zeros((B, P)), np.zeros((B, H))
    with pytest.raises(ValueError, match=r"w_hr: expected a 2-D .*0 < P < H"):
        f(x, w_ih, w_hh, np.zeros((H, H)), None, None, h0, c0, None)
    with pytest.raises(ValueError, match="w_hh: expected"):
        f(x, w_ih, np.zeros((4 * H, H)), w_hr, None, None, h0, c0, None)
    with pytest.raises(ValueError, match="h0: expected"):
        f(x, w_ih, w_hh, w_hr, None, None, np.zeros((B, H)), c0, None)
    with pytest.raises(TypeError, match="w_hr: expected dtype"):
        f(x, w_ih, w_hh, w_hr.astype(np.float32), None, None, h0, c0, None)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("shape", [(0, B, I), (T, 0, I)], ids=["T0", "B0"])
def test_empty_input_gives_empty_results_and_zero_weight_gradients(backend: str, shape: tuple) -> None:
    """T = 0: empty output, h_n/c_n the initial states; B = 0: empty results. Either way the weight
    gradients are zero (no step ran)."""
    m = nn.LSTM(I, H, num_layers=2, bidirectional=True, proj_size=P, dtype=np.float64)
    rng = np.random.default_rng(2)
    hx = tuple(rng.standard_normal((4, shape[1], size)) for size in (P, H))
    x = Tensor(np.zeros(shape), requires_grad=True)
    with fused.use_backend(backend):
        out, (h_n, c_n) = m(x, hx)
    assert out.shape == shape[:2] + (2 * P,) and h_n.shape == hx[0].shape and c_n.shape == hx[1].shape
    np.testing.assert_array_equal(h_n.data, hx[0])
    np.testing.assert_array_equal(c_n.data, hx[1])
    (out.sum() + h_n.sum() + c_n.sum()).backward()
    for name, p in m.named_parameters():
        np.testing.assert_array_equal(p.grad, np.zeros(p.shape), err_msg=name)
