"""nn.RNNCell / LSTMCell / GRUCell: against torch's cells, gradcheck, and bad inputs."""
from __future__ import annotations

import itertools
from typing import Any

import numpy as np
import pytest
from torch_oracle import assert_close_to_scale, torch_rnn

from minirnn import Tensor, gradcheck, nn
from minirnn.nn.cells import RNNCellBase

B, I, H = 3, 4, 5
KINDS = ("lstm", "gru", "rnn_tanh", "rnn_relu")


def make_cell(kind: str, **kwargs: Any) -> RNNCellBase:
    if kind.startswith("rnn"):
        return nn.RNNCell(I, H, nonlinearity=kind[4:], **kwargs)
    return {"lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind](I, H, **kwargs)


def states_of(kind: str, result: Any) -> list[Tensor]:
    return list(result) if kind == "lstm" else [result]


@pytest.mark.parametrize("kind,bias,dtype,batched,hx",
                         list(itertools.product(KINDS, (True, False), (np.float64, np.float32), (True, False),
                                                (True, False))))
def test_cell_matches_torch(kind: str, bias: bool, dtype: type, batched: bool, hx: bool) -> None:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(0)
    cell = make_cell(kind, bias=bias, dtype=dtype)
    t = torch_rnn(kind, I, H, cell=True, bias=bias, dtype=dtype)
    t.load_state_dict({k: torch.from_numpy(v) for k, v in cell.state_dict().items()})
    lead = (B,) if batched else ()
    x = rng.standard_normal(lead + (I,)).astype(dtype)
    states = [rng.standard_normal(lead + (H,)).astype(dtype) for _ in range(2 if kind == "lstm" else 1)] if hx else []
    weights = [rng.standard_normal(lead + (H,)).astype(dtype) for _ in range(2 if kind == "lstm" else 1)]

    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in states]
    out_t = states_of(kind, t(xt, (tuple(st) if kind == "lstm" else st[0]) if st else None))
    sum((o * torch.from_numpy(w)).sum() for o, w in zip(out_t, weights)).backward()

    xm = Tensor(x.copy(), requires_grad=True)
    sm = [Tensor(s.copy(), requires_grad=True) for s in states]
    out_m = states_of(kind, cell(xm, (tuple(sm) if kind == "lstm" else sm[0]) if sm else None))
    for o, w in zip(out_m, weights):
        o.backward(w, retain_graph=True)
    rtol = 1e-9 if dtype == np.float64 else 1e-4
    pairs = [(o.data, e.detach().numpy()) for o, e in zip(out_m, out_t)] + [(xm.grad, xt.grad.numpy())]
    pairs += [(p.grad, q.grad.numpy()) for p, q in zip(cell.parameters(), t.parameters())]
    pairs += [(s.grad, q.grad.numpy()) for s, q in zip(sm, st)]
    for k, (a, e) in enumerate(pairs):
        assert a.dtype == dtype and a.shape == e.shape, k
        assert_close_to_scale(a, e, rtol, f"item {k}")


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("kind", KINDS)
def test_cell_gradcheck(kind: str, fused: bool) -> None:
    rng = np.random.default_rng(1)
    cell = make_cell(kind, dtype=np.float64, fused=fused)
    x = Tensor(rng.standard_normal((B, I)), requires_grad=True)
    states = [Tensor(rng.standard_normal((B, H)), requires_grad=True) for _ in range(2 if kind == "lstm" else 1)]
    params = list(cell.parameters())

    def step(x: Tensor, *states: Tensor) -> Any:
        return cell(x, tuple(states) if kind == "lstm" else states[0])

    assert gradcheck(step, [x, *states])
    assert gradcheck(lambda *p: step(x, *states), params)


def test_missing_state_is_zeros() -> None:
    cell = nn.LSTMCell(I, H, dtype=np.float64)
    x = np.random.default_rng(2).standard_normal((B, I))
    h, c = cell(x)
    h0, c0 = cell(x, (np.zeros((B, H)), np.zeros((B, H))))
    np.testing.assert_array_equal(h.data, h0.data)
    np.testing.assert_array_equal(c.data, c0.data)


def test_cell_options() -> None:
    cell = nn.LSTMCell(I, H, recurrent_init="orthogonal", forget_bias=1.0, dtype=np.float64)
    for block in np.split(cell.weight_hh.data, 4):
        np.testing.assert_allclose(block @ block.T, np.eye(H), atol=1e-12)
    np.testing.assert_array_equal(cell.bias_ih.data[H:2 * H], 1.0)
    assert [n for n, _ in nn.GRUCell(I, H, bias=False).named_parameters()] == ["weight_ih", "weight_hh"]


BAD = [  # (id, cell kind, input, hx, error, message)
    ("rank 3", "gru", np.ones((1, B, I), np.float32), None, ValueError, r"input: expected shape \(B, 4\) or \(4,\)"),
    ("features", "gru", np.ones((B, I + 1), np.float32), None, ValueError, "input: expected shape"),
    ("float16", "gru", np.ones((B, I), np.float16), None, TypeError, "input: expected dtype float32"),
    ("list", "rnn_tanh", [1.0] * I, None, TypeError, "input: expected a Tensor or ndarray, got list"),
    ("hx shape", "gru", np.ones((B, I), np.float32), np.ones((B, H + 1), np.float32), ValueError,
     r"hx: expected shape \(3, 5\)"),
    ("hx dtype", "rnn_relu", np.ones((B, I), np.float32), np.ones((B, H)), TypeError, "hx: expected dtype float32"),
    ("lstm hx single", "lstm", np.ones((B, I), np.float32), np.ones((B, H), np.float32), TypeError,
     "hx: expected a pair"),
    ("lstm c shape", "lstm", np.ones((B, I), np.float32), (np.ones((B, H), np.float32), np.ones((H,), np.float32)),
     ValueError, r"hx\[1\]: expected shape"),
]


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("name,kind,x,hx,error,message", BAD, ids=[b[0] for b in BAD])
def test_bad_inputs_raise(name: str, kind: str, x: Any, hx: Any, error: type, message: str, fused: bool) -> None:
    """The fused step (the default) and the composed one check their inputs the same way."""
    with pytest.raises(error, match=message):
        make_cell(kind, fused=fused)(x, hx)


def test_bad_constructor_arguments_raise() -> None:
    with pytest.raises(ValueError, match="nonlinearity: expected one of \\('tanh', 'relu', 'sigmoid'\\), got 'elu'"):
        nn.RNNCell(I, H, nonlinearity="elu")
    with pytest.raises(ValueError, match="hidden_size: expected an int >= 1, got 0"):
        nn.GRUCell(I, 0)
    with pytest.raises(TypeError, match="dtype: expected float32 or float64, got int32"):
        nn.LSTMCell(I, H, dtype=np.int32)
    for kind in KINDS:
        with pytest.raises(TypeError, match="fused: expected True or False, got 'yes'"):
            make_cell(kind, fused="yes")
