"""nn.RNN / nn.LSTM / nn.GRU: against torch over a covering grid, against the cells unrolled on
the tape, parameter names and init options, and fuzzed bad inputs."""
from __future__ import annotations

import itertools
import os
import subprocess
import sys
from typing import Any

import numpy as np
import pytest
from torch_oracle import assert_close_to_scale, torch_rnn

import minirnn
from minirnn import Tensor, fused, nn
from minirnn.nn.rnn import RNNBase
from minirnn.modes import NUM_GATES

T, B, I, H = 5, 3, 4, 3
MODES = ("lstm", "gru", "rnn_tanh", "rnn_relu")


def skip_unless_available(backend: str) -> None:
    try:
        fused.get_backend(backend)
    except RuntimeError as exc:  # an extension built without the kernels
        pytest.skip(str(exc))


def make_module(mode: str, **kwargs: Any) -> RNNBase:
    if mode.startswith("rnn"):
        return nn.RNN(I, H, nonlinearity=mode[4:], **kwargs)
    return {"lstm": nn.LSTM, "gru": nn.GRU}[mode](I, H, **kwargs)


# ---------------------------------------------------------------------------- torch grid
FACTORS = {
    "mode": MODES,
    "num_layers": (1, 2, 3),
    "bidirectional": (False, True),
    "batch_first": (False, True),
    "bias": (True, False),
    "dtype": (np.float64, np.float32),
    "lengths": (False, True),
    "hx": (False, True),
    "backend": ("c", "reference"),
}
GRID_SIZE = 192


def covering_grid(factors: dict[str, tuple], size: int, seed: int = 0) -> list[dict[str, Any]]:
    """A seeded sample of the full product in which every pair of values of any two factors
    appears together (so no interaction of two options goes untested)."""
    product = list(itertools.product(*factors.values()))
    rng = np.random.default_rng(seed)
    chosen = [product[i] for i in rng.choice(len(product), size, replace=False)]
    values = list(factors.values())
    for (i, a), (j, b) in itertools.combinations(enumerate(values), 2):
        missing = set(itertools.product(a, b)) - {(c[i], c[j]) for c in chosen}
        if missing:
            names = list(factors)
            raise RuntimeError(f"grid seed {seed} misses ({names[i]}, {names[j]}) = {missing}; "
                               "change the seed or size")
    return [dict(zip(factors, c)) for c in chosen]


GRID = covering_grid(FACTORS, GRID_SIZE)


def _case_id(case: dict[str, Any]) -> str:
    return "-".join(f"{k}={v.__name__ if isinstance(v, type) else v}" for k, v in case.items())


def run_torch(torch: Any, mode: str, state: dict, x: np.ndarray, hx: list[np.ndarray] | None,
              lengths: np.ndarray | None, grads: list[np.ndarray], **kwargs: Any) -> tuple[list, list]:
    """torch's outputs and the gradients of (input, every parameter in order, h0, c0)."""
    m = torch_rnn(mode, I, H, dtype=x.dtype, **kwargs)
    m.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    tx = torch.tensor(x, requires_grad=True)
    states = [torch.tensor(s, requires_grad=True) for s in hx] if hx else []
    given = None if not states else (tuple(states) if mode == "lstm" else states[0])
    inp = tx if lengths is None else torch.nn.utils.rnn.pack_padded_sequence(
        tx, torch.from_numpy(lengths), batch_first=kwargs["batch_first"], enforce_sorted=False)
    out, final = m(inp, given)
    if lengths is not None:
        out, _ = torch.nn.utils.rnn.pad_packed_sequence(out, batch_first=kwargs["batch_first"], total_length=T)
    finals = list(final) if mode == "lstm" else [final]
    loss = sum((o * torch.from_numpy(g)).sum() for o, g in zip([out] + finals, grads))
    loss.backward()
    values = [o.detach().numpy() for o in [out] + finals]
    return values, [tx.grad.numpy()] + [p.grad.numpy() for p in m.parameters()] + [s.grad.numpy() for s in states]



@pytest.mark.parametrize("seed,case", list(enumerate(GRID)), ids=[_case_id(c) for c in GRID])
def test_module_matches_torch(seed: int, case: dict[str, Any]) -> None:
    torch = pytest.importorskip("torch")
    skip_unless_available(case["backend"])
    mode, dtype = case["mode"], case["dtype"]
    kwargs = {k: case[k] for k in ("num_layers", "bidirectional", "batch_first", "bias")}
    rng = np.random.default_rng(seed)
    m = make_module(mode, dtype=dtype, **kwargs)
    x = rng.standard_normal((B, T, I) if case["batch_first"] else (T, B, I)).astype(dtype)
    L = kwargs["num_layers"] * (2 if kwargs["bidirectional"] else 1)
    hx = [rng.standard_normal((L, B, H)).astype(dtype) for _ in range(2 if mode == "lstm" else 1)] \
        if case["hx"] else None
    lengths = rng.integers(1, T + 1, B) if case["lengths"] else None
    out_shape = (B, T, L // kwargs["num_layers"] * H) if case["batch_first"] else (T, B, L // kwargs["num_layers"] * H)
    n_states = 2 if mode == "lstm" else 1
    grads = [rng.standard_normal(out_shape)] + [rng.standard_normal((L, B, H)) for _ in range(n_states)]
    if lengths is not None:  # padded outputs are constant zero: no gradient flows from there
        mask = (np.arange(T)[:, None] < lengths[None, :])[:, :, None]
        grads[0] = grads[0] * (mask.transpose(1, 0, 2) if case["batch_first"] else mask)
    grads = [g.astype(dtype) for g in grads]
    expected_values, expected_grads = run_torch(torch, mode, m.state_dict(), x, hx, lengths, grads, **kwargs)

    xt = Tensor(x.copy(), requires_grad=True)
    states = [Tensor(s.copy(), requires_grad=True) for s in hx] if hx else []
    given = None if not states else (tuple(states) if mode == "lstm" else states[0])
    with fused.use_backend(case["backend"]):
        out, final = m(xt, given, lengths=lengths)
    finals = list(final) if mode == "lstm" else [final]
    for o, g in zip([out] + finals, grads):
        o.backward(g, retain_graph=True)
    rtol = 1e-9 if dtype == np.float64 else 1e-4
    for name, a, e in zip(("output", "h_n", "c_n"), [out] + finals, expected_values):
        assert a.dtype == dtype and a.shape == e.shape, name
        assert_close_to_scale(a.data, e, rtol, name)
    ours = [xt.grad] + [p.grad for p in m.parameters()] + [s.grad for s in states]
    names = ["input"] + [n for n, _ in m.named_parameters()] + ["h0", "c0"][:len(states)]
    assert len(ours) == len(expected_grads)
    for name, a, e in zip(names, ours, expected_grads):
        assert_close_to_scale(a, e, rtol, f"grad of {name}")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("num_layers,bidirectional,bias", [(1, False, True), (2, True, False), (3, True, True)])
def test_state_dicts_move_both_ways_with_torch(mode: str, num_layers: int, bidirectional: bool, bias: bool) -> None:
    """The two documented one-liners: torch -> minirnn and minirnn -> torch, checked by value
    and by running both models on the same input."""
    torch = pytest.importorskip("torch")
    options = {"num_layers": num_layers, "bidirectional": bidirectional, "bias": bias}
    x = np.random.default_rng(4).standard_normal((T, B, I))

    def same_outputs(m: RNNBase, t: Any) -> None:
        ours, theirs = m(x)[0].data, t(torch.from_numpy(x))[0].detach().numpy()
        assert_close_to_scale(ours, theirs, 1e-9, "output")

    t = torch_rnn(mode, I, H, **options)
    m = make_module(mode, dtype=np.float64, **options)
    assert [(k, tuple(v.shape)) for k, v in t.state_dict().items()] == \
        [(k, v.shape) for k, v in m.state_dict().items()]
    m.load_state_dict({k: v.numpy() for k, v in t.state_dict().items()})  # torch -> minirnn
    for k, v in t.state_dict().items():
        np.testing.assert_array_equal(m.state_dict()[k], v.numpy(), err_msg=k)
    same_outputs(m, t)
    m = make_module(mode, dtype=np.float64, **options)  # a fresh minirnn model, new values
    t.load_state_dict({k: torch.from_numpy(v) for k, v in m.state_dict().items()})  # minirnn -> torch
    for k, v in m.state_dict().items():
        np.testing.assert_array_equal(t.state_dict()[k].numpy(), v, err_msg=k)
    same_outputs(m, t)


# ---------------------------------------------------------------------------- fused == cells on the tape
def unrolled_with_cell(m: RNNBase, x: Tensor, states: list[Tensor], lengths: np.ndarray | None) -> list[Tensor]:
    """A one-layer module's forward rebuilt from its cell, step by step on the tape."""
    mode = m.mode
    if mode.startswith("rnn"):
        c = nn.RNNCell(I, H, bias=m.bias, nonlinearity=mode[4:], dtype=m.dtype)
    else:
        c = {"lstm": nn.LSTMCell, "gru": nn.GRUCell}[mode](I, H, bias=m.bias, dtype=m.dtype)
    for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
        if hasattr(c, name):
            c.register_parameter(name, getattr(m, f"{name}_l0"))  # share the module's parameters
    h, cs = states[0][0], (states[1][0] if mode == "lstm" else None)
    ys = []
    for t in range(x.shape[0]):
        new = c(x[t], (h, cs) if mode == "lstm" else h)
        h_new, c_new = new if mode == "lstm" else (new, None)
        keep = np.ones((B, 1)) if lengths is None else (t < lengths)[:, None].astype(x.dtype)
        ys.append(h_new * keep)
        h = h_new * keep + h * (1 - keep)
        if mode == "lstm":
            cs = c_new * keep + cs * (1 - keep)
    return [minirnn.ops.stack(ys, 0), h] + ([cs] if mode == "lstm" else [])


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("bias,lengths", [(True, False), (False, True)])
def test_fused_layer_equals_cells_on_the_tape(mode: str, bias: bool, lengths: bool) -> None:
    rng = np.random.default_rng(7)
    m = make_module(mode, bias=bias, dtype=np.float64)
    lens = np.array([T, 2, 0]) if lengths else None
    x = rng.standard_normal((T, B, I))
    hx = [rng.standard_normal((1, B, H)) for _ in range(2 if mode == "lstm" else 1)]
    weights = [rng.standard_normal((T, B, H))] + [rng.standard_normal((B, H)) for _ in hx]
    results = []
    for path in ("fused", "cells"):
        m.zero_grad()
        xt, states = Tensor(x.copy(), requires_grad=True), [Tensor(s.copy(), requires_grad=True) for s in hx]
        if path == "fused":
            out, final = m(xt, tuple(states) if mode == "lstm" else states[0], lengths=lens)
            outs = [out] + [f.reshape(B, H) for f in (final if mode == "lstm" else [final])]
        else:
            outs = unrolled_with_cell(m, xt, states, lens)
        for o, w in zip(outs, weights):
            o.backward(w, retain_graph=True)
        results.append([o.data for o in outs] + [xt.grad] + [p.grad for p in m.parameters()] + [s.grad for s in states])
    for k, (a, e) in enumerate(zip(*results)):
        np.testing.assert_allclose(a, e, rtol=1e-12, atol=1e-12, err_msg=f"item {k}")


# ---------------------------------------------------------------------------- options and modes
def test_default_init_is_uniform_within_one_over_sqrt_h() -> None:
    minirnn.manual_seed(0)
    m = nn.GRU(I, 16, num_layers=2, bidirectional=True)
    for name, p in m.named_parameters():
        assert p.dtype == np.float32, name
        assert np.abs(p.data).max() <= 0.25 and np.abs(p.data).max() > 0.2, name


@pytest.mark.parametrize("mode", MODES)
def test_orthogonal_recurrent_init(mode: str) -> None:
    m = make_module(mode, num_layers=2, bidirectional=True, recurrent_init="orthogonal", dtype=np.float64)
    for name, p in m.named_parameters():
        if name.startswith("weight_hh"):
            for block in np.split(p.data, NUM_GATES[mode]):  # every gate's H x H block
                np.testing.assert_allclose(block @ block.T, np.eye(H), atol=1e-12, err_msg=name)
        else:
            assert np.abs(p.data).max() <= 1 / np.sqrt(H), name


def test_forget_bias_sets_the_forget_slice_only() -> None:
    minirnn.manual_seed(3)
    m = nn.LSTM(I, H, num_layers=2, bidirectional=True, forget_bias=1.0, dtype=np.float64)
    minirnn.manual_seed(3)
    default = nn.LSTM(I, H, num_layers=2, bidirectional=True, dtype=np.float64)
    for name, p in m.named_parameters():
        q = getattr(default, name).data
        if name.startswith("bias_"):
            np.testing.assert_array_equal(p.data[H:2 * H], 1.0 if name.startswith("bias_ih") else 0.0)
            np.testing.assert_array_equal(np.delete(p.data, np.s_[H:2 * H]), np.delete(q, np.s_[H:2 * H]))
        else:
            np.testing.assert_array_equal(p.data, q, err_msg=name)


def test_dropout_between_layers_only_in_training() -> None:
    """Training: ``ops.dropout`` on the output of every layer but the last (so the module equals
    its layers chained by hand with the same random stream); eval: no dropout at all."""
    p = 0.4
    m = nn.GRU(I, H, num_layers=3, dropout=p, dtype=np.float64)
    layers = [nn.GRU(I if k == 0 else H, H, dtype=np.float64) for k in range(3)]
    for k, layer in enumerate(layers):  # share the module's parameters of layer k
        for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh"):
            layer.register_parameter(f"{name}_l0", getattr(m, f"{name}_l{k}"))
    x = np.random.default_rng(0).standard_normal((T, B, I))

    def chained(training: bool) -> np.ndarray:
        y = Tensor(x)
        for k, layer in enumerate(layers):
            y = layer(y)[0]
            if k < len(layers) - 1:
                y = minirnn.ops.dropout(y, p, training)
        return y.data

    minirnn.manual_seed(5)
    train_out = m(x)[0].data
    minirnn.manual_seed(5)
    np.testing.assert_array_equal(train_out, chained(True))
    m.eval()
    eval_out = m(x)[0].data
    np.testing.assert_array_equal(eval_out, chained(False))
    assert not np.allclose(train_out, eval_out)
    one = nn.GRU(I, H, num_layers=1, dropout=0.5, dtype=np.float64)  # a single layer: no dropout at all
    np.testing.assert_array_equal(one(x)[0].data, one.eval()(x)[0].data)


@pytest.mark.parametrize("mode", MODES)
def test_each_layer_and_direction_is_one_node_on_the_tape(mode: str) -> None:
    m = make_module(mode, num_layers=3, bidirectional=True, dtype=np.float64)
    out, final = m(np.ones((T, B, I)))
    h_n = final[0] if mode == "lstm" else final
    kinds = [record.name for record in minirnn.graph.nodes(out.sum() + h_n.sum())]
    assert kinds.count("FusedRNNLayer") == 3 * 2


def test_unbatched_input_is_a_batch_of_one() -> None:
    m = nn.LSTM(I, H, num_layers=2, bidirectional=True, dtype=np.float64)
    x = np.random.default_rng(1).standard_normal((T, I))
    out, (h, c) = m(x)
    batched, (hb, cb) = m(x[:, None])
    assert out.shape == (T, 2 * H) and h.shape == (4, H) and c.shape == (4, H)
    np.testing.assert_array_equal(out.data, batched.data[:, 0])
    np.testing.assert_array_equal(h.data, hb.data[:, 0])


def test_documented_edge_results() -> None:
    """T = 0: empty output, h_n = h0. Length 0: zero output, h_n = h0. B = 0: empty results."""
    m = nn.LSTM(I, H, num_layers=2, bidirectional=True, dtype=np.float64)
    rng = np.random.default_rng(2)
    hx = tuple(rng.standard_normal((4, B, H)) for _ in range(2))
    out, (h, c) = m(np.zeros((0, B, I)), hx)
    assert out.shape == (0, B, 2 * H)
    np.testing.assert_array_equal(h.data, hx[0])
    np.testing.assert_array_equal(c.data, hx[1])
    out, (h, _) = m(rng.standard_normal((T, B, I)), hx, lengths=[T, 0, 1])
    np.testing.assert_array_equal(out.data[:, 1], 0)
    np.testing.assert_array_equal(out.data[1:, 2], 0)
    np.testing.assert_array_equal(h.data[:, 1], hx[0][:, 1])
    out, (h, _) = m(np.zeros((T, 0, I)))
    assert out.shape == (T, 0, 2 * H) and h.shape == (4, 0, H)


# ---------------------------------------------------------------------------- fuzzed bad inputs
def _x(*shape: int, dtype: Any = np.float32) -> np.ndarray:
    return np.ones(shape, dtype=dtype)


BAD_INPUTS = [  # (id, module kwargs, forward args, forward kwargs, error, message)
    ("rank 1", {}, (_x(I),), {}, ValueError, "input: expected 3 dimensions"),
    ("rank 4", {}, (_x(T, B, I, 1),), {}, ValueError, "input: expected 3 dimensions"),
    ("features", {}, (_x(T, B, I + 1),), {}, ValueError, "expected input_size 4"),
    ("float16", {}, (_x(T, B, I, dtype=np.float16),), {}, TypeError, "expected dtype float32"),
    ("float64 into float32", {}, (_x(T, B, I, dtype=np.float64),), {}, TypeError, "got float64"),
    ("int input", {}, (np.ones((T, B, I), dtype=np.int64),), {}, TypeError, "got int64"),
    ("list input", {}, ([[[1.0] * I]],), {}, TypeError, "input: expected a Tensor or ndarray, got list"),
    ("hx shape", {}, (_x(T, B, I), (_x(1, B + 1, H), _x(1, B, H))), {}, ValueError,
     r"hx\[0\]: expected shape \(1, 3, 3\)"),
    ("hx layers", {"num_layers": 2}, (_x(T, B, I), (_x(1, B, H), _x(2, B, H))), {}, ValueError,
     r"hx\[0\]: expected shape"),
    ("c0 shape", {}, (_x(T, B, I), (_x(1, B, H), _x(B, H))), {}, ValueError, r"hx\[1\]: expected shape"),
    ("hx not a pair", {}, (_x(T, B, I), _x(1, B, H)), {}, TypeError, "hx: expected a pair"),
    ("hx dtype", {}, (_x(T, B, I), (_x(1, B, H, dtype=np.float64), _x(1, B, H))), {}, TypeError,
     r"hx\[0\]: expected dtype"),
    ("lengths high", {}, (_x(T, B, I),), {"lengths": [T + 1, 1, 1]}, ValueError,
     r"lengths: expected values in \[0, 5\]"),
    ("lengths huge", {}, (_x(T, B, I),), {"lengths": [2**62, 1, 1]}, ValueError, "lengths: expected values"),
    ("lengths negative", {}, (_x(T, B, I),), {"lengths": [-1, 1, 1]}, ValueError, "lengths: expected values"),
    ("lengths count", {}, (_x(T, B, I),), {"lengths": [1, 1]}, ValueError, r"lengths: expected shape \(3,\)"),
    ("lengths float", {}, (_x(T, B, I),), {"lengths": [1.5, 1, 1]}, TypeError, "lengths: expected integers"),
    ("lengths unbatched", {}, (_x(T, I),), {"lengths": [1]}, ValueError, "lengths: expected None"),
    ("batch_first features", {"batch_first": True}, (_x(B, T, I + 2),), {}, ValueError, "expected input_size"),
    ("lengths uint64 max", {}, (_x(T, B, I),), {"lengths": np.array([2**64 - 1, 1, 1], np.uint64)}, ValueError,
     "lengths: expected values"),
    ("lengths bool", {}, (_x(T, B, I),), {"lengths": np.array([True, True, False])}, TypeError,
     "lengths: expected integers, got dtype bool"),
    ("lengths 2-D", {}, (_x(T, B, I),), {"lengths": np.ones((1, B), np.int64)}, ValueError,
     r"lengths: expected shape \(3,\)"),
]


@pytest.mark.parametrize("name,kwargs,args,fkwargs,error,message", BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS])
def test_bad_inputs_raise(name: str, kwargs: dict, args: tuple, fkwargs: dict, error: type, message: str) -> None:
    m = nn.LSTM(I, H, **kwargs)
    with pytest.raises(error, match=message):
        m(*args, **fkwargs)


@pytest.mark.parametrize("make,kwargs,error,message", [
    (nn.GRU, {"hidden_size": 0}, ValueError, "hidden_size: expected an int >= 1"),
    (nn.GRU, {"input_size": 2.5}, ValueError, "input_size: expected an int >= 0"),
    (nn.LSTM, {"num_layers": 0}, ValueError, "num_layers: expected an int >= 1"),
    (nn.RNN, {"dropout": 1.5}, ValueError, r"dropout: expected a number in \[0, 1\), got 1.5"),
    (nn.LSTM, {"dropout": 1.0}, ValueError, r"dropout: expected a number in \[0, 1\), got 1.0"),
    (nn.GRU, {"dtype": np.float16}, TypeError, "dtype: expected float32 or float64, got float16"),
    (nn.LSTM, {"recurrent_init": "eye"}, ValueError, "recurrent_init: expected one of"),
    (nn.RNN, {"nonlinearity": "gelu"}, ValueError, "nonlinearity: expected one of \\('tanh', 'relu', 'sigmoid'\\)"),
    (nn.LSTM, {"forget_bias": "one"}, TypeError, "forget_bias: expected a number or None, got str"),
    (lambda **k: RNNBase("gru", **k), {"forget_bias": 1.0}, ValueError, "forget_bias: expected None"),
])
def test_bad_constructor_arguments_raise(make: Any, kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        make(**{"input_size": I, "hidden_size": H, **kwargs})


def test_nan_input_propagates_without_crash() -> None:
    x = _x(T, B, I)
    x[2, 1, 0] = np.nan
    out, h = nn.GRU(I, H)(x)
    assert np.isnan(out.data[2:, 1]).all() and np.isfinite(out.data[:, 0]).all() and np.isnan(h.data[0, 1]).all()


@pytest.mark.parametrize("backend", ("c", "reference"))
def test_non_contiguous_input_gives_the_same_result(backend: str) -> None:
    skip_unless_available(backend)
    m = nn.LSTM(I, H, bidirectional=True, dtype=np.float64)
    x = np.random.default_rng(3).standard_normal((B, I, T)).transpose(2, 0, 1)  # a (T, B, I) view
    assert not x.flags.c_contiguous
    with fused.use_backend(backend):
        strided, contiguous = m(x, lengths=[T, 1, 3]), m(np.ascontiguousarray(x), lengths=[T, 1, 3])
    np.testing.assert_array_equal(strided[0].data, contiguous[0].data)
    np.testing.assert_array_equal(strided[1][0].data, contiguous[1][0].data)


# ---------------------------------------------------------------------------- fuzz (in a subprocess)
def _other_float(a: np.ndarray) -> np.ndarray:
    return a.astype(np.float32 if a.dtype == np.float64 else np.float64)


def _set(a: np.ndarray, value: Any, dtype: Any = None) -> np.ndarray:
    a = a.astype(dtype or a.dtype)
    a[0] = value
    return a


# name -> (change (x, hx, lengths, T) -> (x, hx, lengths), error raised or None, argument named).
# A spoil of hx or lengths first gets a valid hx / lengths to spoil, and a batch of B >= 1.
SPOILS: dict[str, tuple[Any, type | None, str]] = {
    "valid": (lambda x, hx, n, T: (x, hx, n), None, ""),
    "nan": (lambda x, hx, n, T: (np.where(np.arange(x.size).reshape(x.shape) == 0, np.nan, x).astype(x.dtype), hx, n),
            None, ""),
    "non-contiguous": (lambda x, hx, n, T: (np.asfortranarray(x), hx, n), None, ""),
    "float16": (lambda x, hx, n, T: (x.astype(np.float16), hx, n), TypeError, "input"),
    "other float": (lambda x, hx, n, T: (_other_float(x), hx, n), TypeError, "input"),
    "int": (lambda x, hx, n, T: (x.astype(np.int32), hx, n), TypeError, "input"),
    "rank 4": (lambda x, hx, n, T: (x[..., None], hx, n), ValueError, "input"),
    "rank 1": (lambda x, hx, n, T: (x.reshape(-1), hx, n), ValueError, "input"),
    "features": (lambda x, hx, n, T: (np.concatenate([x, x[..., :1]], -1), hx, n), ValueError, "input"),
    "hx shape": (lambda x, hx, n, T: (x, [np.concatenate([hx[0], hx[0][:, :1]], 1)] + hx[1:], n), ValueError, "hx"),
    "hx dtype": (lambda x, hx, n, T: (x, [_other_float(h) for h in hx], n), TypeError, "hx"),
    "lengths high": (lambda x, hx, n, T: (x, hx, _set(n, T + 1)), ValueError, "lengths"),
    "lengths negative": (lambda x, hx, n, T: (x, hx, _set(n, -1)), ValueError, "lengths"),
    "lengths huge": (lambda x, hx, n, T: (x, hx, _set(n, 2**64 - 1, np.uint64)), ValueError, "lengths"),
    "lengths count": (lambda x, hx, n, T: (x, hx, np.append(n, 0)), ValueError, "lengths"),
    "lengths float": (lambda x, hx, n, T: (x, hx, n.astype(np.float64)), TypeError, "lengths"),
    "lengths 2-D": (lambda x, hx, n, T: (x, hx, n[None]), ValueError, "lengths"),
}


def fuzz_modules(seed: int, cases: int) -> None:
    """``cases`` random modules and calls, each valid but for one random spoil: a spoiled call
    must raise the spoil's error naming the argument; a valid one (NaN and non-contiguous input
    included) must give the documented shapes, zeros past each length, the same result as a
    contiguous input, and a backward. Anything else (another exception, a crash) fails."""
    rng = np.random.default_rng(seed)
    for case in range(cases):
        name = list(SPOILS)[rng.integers(len(SPOILS))]
        spoil, error, argument = SPOILS[name]
        mode, dtype = MODES[rng.integers(len(MODES))], (np.float32, np.float64)[rng.integers(2)]
        layers, bidirectional, batch_first = int(rng.integers(1, 3)), bool(rng.integers(2)), bool(rng.integers(2))
        steps, batch = int(rng.integers(0, 4)), int(rng.integers(1 if name.startswith(("hx", "lengths")) else 0, 3))
        m = make_module(mode, num_layers=layers, bidirectional=bidirectional, batch_first=batch_first, dtype=dtype)
        D = layers * (2 if bidirectional else 1)
        x = rng.standard_normal((batch, steps, I) if batch_first else (steps, batch, I)).astype(dtype)
        hx = [rng.standard_normal((D, batch, H)).astype(dtype) for _ in range(2 if mode == "lstm" else 1)] \
            if rng.integers(2) or name.startswith("hx") else None
        lengths = rng.integers(0, steps + 1, batch) if rng.integers(2) or name.startswith("lengths") else None
        x, hx, lengths = spoil(x, hx, lengths, steps)
        state = None if hx is None else (tuple(hx) if mode == "lstm" else hx[0])
        where = f"case {case} ({name}, {mode}, layers {layers}, bidirectional {bidirectional}, batch_first " \
                f"{batch_first}, {np.dtype(dtype)}, x {x.shape}, lengths {lengths})"
        with fused.use_backend(("c", "reference")[rng.integers(2)]):
            if error is not None:
                try:
                    m(x, state, lengths=lengths)
                except error as exc:
                    assert f"{argument}" in str(exc) and "expected" in str(exc), f"{where}: message {exc}"
                    continue
                raise AssertionError(f"{where}: expected {error.__name__}, got no error")
            out, final = m(x, state, lengths=lengths)
            finals = list(final) if mode == "lstm" else [final]
            assert out.shape == x.shape[:2] + (D // layers * H,), where
            assert all(f.shape == (D, batch, H) for f in finals), where
            if lengths is not None:
                past = np.arange(steps)[:, None] >= lengths[None, :]
                assert (out.data[past.T if batch_first else past] == 0).all(), where
            if name == "non-contiguous":
                again = m(np.ascontiguousarray(x), state, lengths=lengths)[0]
                np.testing.assert_array_equal(out.data, again.data, err_msg=where)
            for o in [out] + finals:
                o.backward(np.ones(o.shape, dtype), retain_graph=True)
            if name != "nan":
                assert all(np.isfinite(p.grad).all() for p in m.parameters()), where


@pytest.mark.extension
def test_fuzzed_calls_raise_or_give_documented_results_never_crash() -> None:
    """The fuzz runs in a child process, so that a crash (a signal) fails this test, not the run."""
    tests = os.path.dirname(os.path.abspath(__file__))
    code = f"import sys; sys.path.insert(0, {tests!r}); import test_rnn_modules as t; t.fuzz_modules(0, 400)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"fuzz exited with {done.returncode} (negative: killed by a signal)\n" \
                                 f"{done.stderr[-3000:]}"
