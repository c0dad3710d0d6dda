"""The fast tape: functional.linear as one node, transposes as views, the one-pass sigmoid, fused
cell steps (one node per step) against the composed steps and torch, and the engine's
ScatteredGrad / materialize_grads / hook / retain_graph paths."""
from __future__ import annotations

import itertools
from typing import Any, Callable

import numpy as np
import pytest
from torch_oracle import assert_close_to_scale, check_against_torch, torch_rnn

import minirnn
from minirnn import Tensor, functional as F, gradcheck, nn, ops
from minirnn.fused import FusedCellStep, cell_step

R = np.random.default_rng(11)
DTYPES = (np.float32, np.float64)
RTOL = {np.float32: 1e-5, np.float64: 1e-9}


def normal(*shape: int, dtype: Any = np.float64) -> np.ndarray:
    return R.standard_normal(shape).astype(dtype)


def leaf(array: np.ndarray) -> Tensor:
    return Tensor(np.array(array), requires_grad=True)


def torch_dtype(dtype: Any) -> Any:
    import torch
    return torch.float64 if np.dtype(dtype) == np.float64 else torch.float32


# ============================================================================ 1. linear
LINEAR_SHAPES = [  # (id, x shape, bias)
    ("2d", (4, 3), True),
    ("3d", (2, 4, 3), True),
    ("1d", (3,), True),
    ("2d_no_bias", (4, 3), False),
    ("3d_no_bias", (2, 1, 3), False),
    ("1d_no_bias", (3,), False),
]
N_OUT = 5


@pytest.mark.parametrize("name, x_shape, bias", LINEAR_SHAPES, ids=[c[0] for c in LINEAR_SHAPES])
@pytest.mark.parametrize("fn", [F.linear, ops.linear], ids=["functional", "ops"])
def test_linear_gradcheck(name: str, x_shape: tuple, bias: bool, fn: Callable) -> None:
    inputs = [leaf(normal(*x_shape)), leaf(normal(N_OUT, x_shape[-1]))] + ([leaf(normal(N_OUT))] if bias else [])
    assert gradcheck(lambda x, w, *b: fn(x, w, b[0] if b else None), inputs)


@pytest.mark.parametrize("name, x_shape, bias", LINEAR_SHAPES, ids=[c[0] for c in LINEAR_SHAPES])
def test_linear_matches_torch_float64(name: str, x_shape: tuple, bias: bool) -> None:
    torch = pytest.importorskip("torch")
    inputs = [normal(*x_shape), normal(N_OUT, x_shape[-1])] + ([normal(N_OUT)] if bias else [])
    check_against_torch(lambda x, w, *b: F.linear(x, w, b[0] if b else None),
                        lambda x, w, *b: torch.nn.functional.linear(x, w, b[0] if b else None), inputs)


@pytest.mark.parametrize("name, x_shape, bias", LINEAR_SHAPES, ids=[c[0] for c in LINEAR_SHAPES])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_linear_values_and_grads_match_torch(name: str, x_shape: tuple, bias: bool, dtype: Any) -> None:
    """Every dtype: values and all gradients, each in the input's dtype and C layout."""
    torch = pytest.importorskip("torch")
    arrays = [normal(*x_shape, dtype=dtype), normal(N_OUT, x_shape[-1], dtype=dtype)]
    if bias:
        arrays.append(normal(N_OUT, dtype=dtype))
    ours = [leaf(a) for a in arrays]
    theirs = [torch.tensor(a, requires_grad=True) for a in arrays]
    y = F.linear(ours[0], ours[1], ours[2] if bias else None)
    yt = torch.nn.functional.linear(theirs[0], theirs[1], theirs[2] if bias else None)
    assert y.grad_fn is not None and y.grad_fn.name == "Linear"
    assert y.dtype == dtype and y.shape == tuple(yt.shape)
    assert_close_to_scale(y.data, yt.detach().numpy(), RTOL[dtype], "y")
    seed = normal(*y.shape, dtype=dtype)
    y.backward(seed)
    yt.backward(torch.from_numpy(seed))
    for k, (a, t) in enumerate(zip(ours, theirs)):
        assert a.grad.dtype == dtype and a.grad.shape == a.shape, k
        assert_close_to_scale(a.grad, t.grad.numpy(), RTOL[dtype], f"grad of input {k}")


def test_linear_is_one_node_and_reads_transposed_or_strided_weights() -> None:
    x, w, b = leaf(normal(4, 3)), leaf(normal(3, N_OUT)), leaf(normal(N_OUT))  # w.T is (5, 3), F-contiguous
    y = F.linear(x, w.T, b)
    names = [n.name for n in minirnn.graph.nodes(y)]
    assert names == ["Linear", "Permute"]
    np.testing.assert_allclose(y.data, x.data @ w.data + b.data, rtol=1e-12, atol=1e-12)
    assert gradcheck(lambda x, w, b: F.linear(x, w.T, b), [x, w, b])
    strided = leaf(normal(N_OUT, 6))
    assert gradcheck(lambda x, w: F.linear(x, w[:, ::2]), [leaf(normal(2, 3)), strided])
    # a non-contiguous (..., K) input
    x3 = leaf(normal(3, 4, 2))
    assert gradcheck(lambda x, w: F.linear(x.permute(2, 0, 1), w), [x3, leaf(normal(N_OUT, 4))])


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_nn_linear_equals_functional_linear(bias: bool, dtype: Any) -> None:
    layer = nn.Linear(3, N_OUT, bias=bias, dtype=dtype)
    x = Tensor(normal(2, 4, 3, dtype=dtype))
    y = layer(x)
    assert y.grad_fn.name == "Linear"
    np.testing.assert_array_equal(y.data, F.linear(x, layer.weight, layer.bias).data)
    expected = x.data @ layer.weight.data.T + (layer.bias.data if bias else 0)
    assert_close_to_scale(y.data, expected, RTOL[dtype], "nn.Linear")


@pytest.mark.parametrize("in_features, out_features", [(0, 5), (3, 0)], ids=["K0", "N0"])
@pytest.mark.parametrize("x_shape", [(4,), (2, 4)], ids=["2d", "3d"])
def test_linear_with_an_empty_feature_axis(in_features: int, out_features: int, x_shape: tuple) -> None:
    """K = 0 (y is the bias) or N = 0 (y is empty), as torch and as ``x @ W.T + b`` (what
    nn.Linear computed before linear was one node; nn.Linear(0, 5) is a valid layer)."""
    torch = pytest.importorskip("torch")
    check_against_torch(F.linear, torch.nn.functional.linear,
                        [normal(*x_shape, in_features), normal(out_features, in_features), normal(out_features)])
    layer = nn.Linear(in_features, out_features, dtype=np.float64)
    x = leaf(normal(*x_shape, in_features))
    y = layer(x)
    assert y.shape == x_shape + (out_features,)
    y.backward(np.ones(y.shape))
    assert layer.weight.grad.shape == (out_features, in_features)
    np.testing.assert_array_equal(layer.bias.grad, np.full(out_features, float(np.prod(x_shape))))
    np.testing.assert_array_equal(x.grad, np.zeros(x.shape))  # (no outputs, or no elements)


_X = Tensor(np.ones((4, 3)))
_W = Tensor(np.ones((5, 3)))
LINEAR_BAD = [  # (id, call, error, message)
    ("weight_1d", lambda: F.linear(_X, Tensor(np.ones(3))), ValueError,
     r"linear\(\): expected weight of shape \(out_features, in_features\), got \(3,\)"),
    ("weight_3d", lambda: F.linear(_X, Tensor(np.ones((1, 5, 3)))), ValueError, r"expected weight of shape"),
    ("k_mismatch", lambda: F.linear(_X, Tensor(np.ones((5, 4)))), ValueError,
     r"linear\(\): expected x of shape \(\.\.\., 4\) to match weight \(5, 4\), got \(4, 3\)"),
    ("x_0d", lambda: F.linear(Tensor(np.float64(1.0)), _W), ValueError, r"expected x of shape \(\.\.\., 3\)"),
    ("bias_shape", lambda: F.linear(_X, _W, Tensor(np.ones(4))), ValueError,
     r"linear\(\): expected bias of shape \(5,\), got \(4,\)"),
    ("bias_2d", lambda: F.linear(_X, _W, Tensor(np.ones((1, 5)))), ValueError, r"expected bias of shape \(5,\)"),
    ("weight_dtype", lambda: F.linear(_X, Tensor(np.ones((5, 3), np.float32))), TypeError,
     r"linear\(\): expected weight to have x's dtype float64, got float32"),
    ("bias_dtype", lambda: F.linear(_X, _W, Tensor(np.ones(5, np.float32))), TypeError,
     r"expected bias to have x's dtype float64, got float32"),
    ("x_int", lambda: F.linear(Tensor(np.ones((4, 3), np.int64)), _W), TypeError,
     r"linear\(\): expected x to be a float32 or float64 tensor"),
    ("x_ndarray", lambda: F.linear(np.ones((4, 3)), _W), TypeError,
     r"linear\(\): expected x to be a minirnn.Tensor, got ndarray"),
    ("weight_ndarray", lambda: F.linear(_X, np.ones((5, 3))), TypeError,
     r"expected weight to be a minirnn.Tensor, got ndarray"),
    ("bias_list", lambda: F.linear(_X, _W, [0.0] * 5), TypeError, r"expected bias to be a minirnn.Tensor, got list"),
]


@pytest.mark.parametrize("name, call, error, message", LINEAR_BAD, ids=[c[0] for c in LINEAR_BAD])
def test_linear_bad_arguments_raise(name: str, call: Callable, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()


# ============================================================================ 2. transposes are views
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_transpose_of_a_weight_is_a_view(dtype: Any) -> None:
    w = leaf(normal(5, 3, dtype=dtype))
    assert w.data.flags.c_contiguous
    for t in (w.T, w.transpose(0, 1), w.permute(1, 0), ops.transpose(w), ops.permute(w, (-1, -2))):
        assert np.shares_memory(t.data, w.data)
        assert t.shape == (3, 5)
        np.testing.assert_array_equal(t.data, w.data.T)
    x3 = leaf(normal(2, 3, 4, dtype=dtype))
    p = x3.permute(2, 0, 1)
    assert np.shares_memory(p.data, x3.data) and p.shape == (4, 2, 3)


X_SHAPES = [("2d", (4, 3)), ("3d", (2, 4, 3)), ("1d", (3,)), ("3d_noncontig", (4, 2, 3))]


@pytest.mark.parametrize("name, x_shape", X_SHAPES, ids=[c[0] for c in X_SHAPES])
@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_matmul_with_a_transposed_weight(name: str, x_shape: tuple, dtype: Any) -> None:
    """x @ W.T: numpy's values; W.grad and x.grad as torch's, W.grad C-contiguous in W's dtype."""
    torch = pytest.importorskip("torch")
    x_arr, w_arr = normal(*x_shape, dtype=dtype), normal(5, 3, dtype=dtype)
    x, w = leaf(x_arr), leaf(w_arr)
    xt, wt = torch.tensor(x_arr, requires_grad=True), torch.tensor(w_arr, requires_grad=True)
    if name == "3d_noncontig":  # (4, 2, 3) -> (2, 4, 3) view: not C-contiguous
        xin, xtin = x.permute(1, 0, 2), xt.permute(1, 0, 2)
        assert not xin.data.flags.c_contiguous
    else:
        xin, xtin = x, xt
    y = xin @ w.T
    yt = xtin @ wt.T
    assert_close_to_scale(y.data, xin.data @ w_arr.T, RTOL[dtype], "values vs numpy")
    seed = normal(*y.shape, dtype=dtype)
    y.backward(seed)
    yt.backward(torch.from_numpy(seed))
    assert w.grad.flags.c_contiguous and w.grad.dtype == dtype and w.grad.shape == (5, 3)
    assert x.grad.dtype == dtype and x.grad.shape == x_shape
    assert_close_to_scale(w.grad, wt.grad.numpy(), RTOL[dtype], "W.grad")
    assert_close_to_scale(x.grad, xt.grad.numpy(), RTOL[dtype], "x.grad")
    # a second backward through a fresh graph accumulates, still C-contiguous
    (xin.detach() @ w.T).backward(seed)
    assert w.grad.flags.c_contiguous
    assert_close_to_scale(w.grad, 2 * wt.grad.numpy(), RTOL[dtype], "W.grad twice")


def test_matmul_transposed_weight_used_twice_sums_gradients() -> None:
    torch = pytest.importorskip("torch")
    check_against_torch(lambda x, w: (x @ w.T) * (x @ w.T).tanh() + x @ w.T.T.T,
                        lambda x, w: (x @ w.T) * (x @ w.T).tanh() + x @ w.T.T.T,
                        [normal(4, 3), normal(5, 3)])
    check_against_torch(lambda a, b: a.T @ b.T, lambda a, b: a.T @ b.T, [normal(3, 4), normal(5, 3)])


PERMUTES = [
    ("permute_120", lambda a: a.permute(1, 2, 0)),
    ("permute_201", lambda a: a.permute(2, 0, 1)),
    ("permute_negative", lambda a: a.permute(-1, 0, -2)),
    ("transpose_02", lambda a: a.transpose(0, 2)),
    ("transpose_default", lambda a: a.transpose()),
    ("permute_twice", lambda a: a.permute(2, 0, 1).transpose(0, 1)),
]


@pytest.mark.parametrize("name, fn", PERMUTES, ids=[c[0] for c in PERMUTES])
def test_permute_gradcheck_and_gradient_values(name: str, fn: Callable) -> None:
    x = leaf(normal(2, 3, 4))
    assert gradcheck(lambda a: fn(a) * 1.0, [x])  # (* 1.0: gradcheck's weights see a fresh array)
    x.grad = None
    y = fn(x)
    seed = normal(*y.shape)
    y.backward(seed)
    # the gradient is the seed moved back to x's axes: x.grad[i, j, k] = seed at the permuted index
    index = np.arange(x.size).reshape(x.shape)
    moved = fn(Tensor(index)).data  # where each of x's elements went
    expected = np.empty(x.shape)
    expected.reshape(-1)[moved.reshape(-1)] = seed.reshape(-1)
    np.testing.assert_array_equal(x.grad, expected)
    assert x.grad.shape == x.shape


# ============================================================================ 3. sigmoid
SIGMOID_POINTS = [-1e4, -1e3, -745.0, -710.0, -100.0, -88.5, -87.5, -87.3, -50.0, -20.0, -1.0, -1e-8, -0.0, 0.0,
                  1e-8, 1.0, 20.0, 36.0, 50.0, 87.5, 88.5, 100.0, 710.0, 1e3, 1e4, np.inf, -np.inf]


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_sigmoid_matches_torch_over_a_wide_range(dtype: Any) -> None:
    """Few-ulp relative accuracy; below the smallest normal number (float32: x < -87.3) the
    documented contract allows 0, so the absolute floor is that number and no more."""
    torch = pytest.importorskip("torch")
    x = np.concatenate([np.array(SIGMOID_POINTS), np.linspace(-120, 120, 24001)]).astype(dtype)
    got = F.sigmoid(Tensor(x)).data
    want = torch.sigmoid(torch.from_numpy(x)).numpy()
    assert got.dtype == dtype and got.shape == x.shape
    assert np.all((got >= 0) & (got <= 1))
    np.testing.assert_allclose(got, want, rtol=4e-7 if dtype == np.float32 else 1e-15,
                               atol=np.finfo(dtype).tiny)
    assert np.all(got[x == 0.0] == 0.5)
    assert np.all(got[x >= 100] == 1) and np.all(got[x <= -1e3] == 0)
    # monotone (non-decreasing) over the sorted sweep
    sweep = got[len(SIGMOID_POINTS):]
    assert np.all(np.diff(sweep) >= 0)


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_sigmoid_propagates_nan_and_is_not_in_place(dtype: Any) -> None:
    x = np.array([[np.nan, 0.0, -np.nan], [1.0, np.nan, -1e4]], dtype)
    before = x.copy()
    t = Tensor(x, requires_grad=True)
    y = F.sigmoid(t)
    np.testing.assert_array_equal(np.isnan(y.data), np.isnan(x))
    np.testing.assert_array_equal(x, before)  # the input is untouched
    assert not np.shares_memory(y.data, x)
    y.backward(np.ones(x.shape, dtype))
    np.testing.assert_array_equal(np.isnan(t.grad), np.isnan(x))
    noncontig = normal(3, 4, dtype=dtype).T  # any strides
    np.testing.assert_allclose(F.sigmoid(Tensor(noncontig)).data, 1 / (1 + np.exp(-noncontig.astype(np.float64))),
                               rtol=4e-7 if dtype == np.float32 else 1e-15)


def test_sigmoid_gradcheck_float64() -> None:
    for scale in (1.0, 8.0):
        assert gradcheck(F.sigmoid, [leaf(normal(3, 4) * scale)])
    assert gradcheck(lambda a: a.sigmoid(), [leaf(normal(2, 3, 2))])


def test_sigmoid_gradient_matches_torch_including_saturation() -> None:
    torch = pytest.importorskip("torch")
    check_against_torch(F.sigmoid, torch.sigmoid, [np.array([-800.0, -40.0, -5.0, 0.0, 3.0, 40.0, 800.0])],
                        atol=0, rtol=1e-13)


# ============================================================================ 4. fused cells
I, H, B, T = 4, 5, 3, 4
KINDS = ("rnn_tanh", "rnn_relu", "lstm", "gru")


def make_cell(kind: str, dtype: Any, bias: bool = True, fused: bool = True, input_size: int = I,
              hidden_size: int = H) -> Any:
    if kind.startswith("rnn"):
        return nn.RNNCell(input_size, hidden_size, bias=bias, nonlinearity=kind[4:], dtype=dtype, fused=fused)
    return {"lstm": nn.LSTMCell, "gru": nn.GRUCell}[kind](input_size, hidden_size, bias=bias, dtype=dtype,
                                                         fused=fused)


def n_states(kind: str) -> int:
    return 2 if kind == "lstm" else 1


def run_minirnn(cell: Any, kind: str, x: np.ndarray, states: list[np.ndarray] | None,
                weights: list[np.ndarray], loss_on: str = "all") -> dict[str, np.ndarray]:
    """T steps of ``cell`` reading ``x[t]`` from one leaf; ``loss = sum_t <w_t, h_t>`` (+ <w_c, c_T>);
    ``loss_on="h"``/``"c"``: the last step's h' or c' only. Returns outputs and all gradients."""
    xl = leaf(x)
    sl = [leaf(s) for s in states] if states is not None else None
    hx = None if sl is None else (tuple(sl) if kind == "lstm" else sl[0])
    hs = []
    for t in range(x.shape[0]):
        out = cell(xl[t], hx)
        hx = out
        hs.append(out[0] if kind == "lstm" else out)
        if cell.fused:
            assert hs[-1].grad_fn.name == "FusedCellStep"
    c_last = hx[1] if kind == "lstm" else None
    cell_loss(hs, c_last, weights, loss_on).backward()
    result = {f"h{t}": h.data for t, h in enumerate(hs)}
    if c_last is not None:
        result["c_last"] = c_last.data
    result["dx"] = xl.grad
    for k, s in enumerate(sl or []):
        result[f"ds{k}"] = s.grad
    for name, p in cell.named_parameters():
        result[f"d{name}"] = p.grad
    return result


def cell_loss(hs: list, c_last: Any, weights: list, loss_on: str) -> Any:
    """The loss of a loop's states, for either framework's tensors: sum_t (h_t * w_t) (+ c_T * w),
    or only the last h (``"h"``), or only c_T (``"c"``)."""
    if loss_on == "all":
        loss = sum((h * w).sum() for h, w in zip(hs, weights))
        return loss if c_last is None else loss + (c_last * weights[-1]).sum()
    if loss_on == "h":
        return (hs[-1] * weights[0]).sum()
    return (c_last * weights[0]).sum()


def run_torch(kind: str, state: dict, bias: bool, dtype: Any, x: np.ndarray, states: list[np.ndarray] | None,
              weights: list[np.ndarray], loss_on: str = "all") -> dict[str, np.ndarray]:
    import torch
    cell = torch_rnn(kind, I, H, cell=True, bias=bias, dtype=dtype)
    cell.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    xt = torch.tensor(x, requires_grad=True)
    st = [torch.tensor(s, requires_grad=True) for s in states] if states is not None else None
    hx = None if st is None else (tuple(st) if kind == "lstm" else st[0])
    hs = []
    for t in range(x.shape[0]):
        hx = cell(xt[t], hx)
        hs.append(hx[0] if kind == "lstm" else hx)
    c_last = hx[1] if kind == "lstm" else None
    cell_loss(hs, c_last, [torch.from_numpy(a) for a in weights], loss_on).backward()
    result = {f"h{t}": h.detach().numpy() for t, h in enumerate(hs)}
    if c_last is not None:
        result["c_last"] = c_last.detach().numpy()
    result["dx"] = xt.grad.numpy()
    for k, s in enumerate(st or []):
        result[f"ds{k}"] = s.grad.numpy()
    for name, p in cell.named_parameters():
        result[f"d{name}"] = p.grad.numpy()
    return result


def cell_problem(kind: str, dtype: Any, batched: bool, hx: bool, loss_on: str, steps: int = T, seed: int = 0):
    rng = np.random.default_rng(seed)
    lead = (B,) if batched else ()
    x = rng.standard_normal((steps,) + lead + (I,)).astype(dtype)
    states = [rng.standard_normal(lead + (H,)).astype(dtype) for _ in range(n_states(kind))] if hx else None
    n_weights = steps + 1 if loss_on == "all" else 1
    weights = [rng.standard_normal(lead + (H,)).astype(dtype) for _ in range(n_weights)]
    return x, states, weights


def assert_same(got: dict, want: dict, rtol: float, what: str) -> None:
    assert got.keys() == want.keys(), (what, sorted(got), sorted(want))
    for key in want:
        assert got[key] is not None, f"{what}: {key} is None"
        assert got[key].dtype == want[key].dtype, f"{what}: {key} dtype {got[key].dtype} vs {want[key].dtype}"
        assert_close_to_scale(got[key], want[key], rtol, f"{what}: {key}")


CELL_CASES = list(itertools.product(KINDS, (True, False), (np.float64, np.float32), (True, False), (True, False)))


@pytest.mark.extension
@pytest.mark.parametrize("kind, bias, dtype, batched, hx", CELL_CASES,
                         ids=[f"{k}-{'bias' if b else 'nobias'}-{np.dtype(d).name}-{'B' if bt else 'unb'}-"
                              f"{'hx' if h else 'nohx'}" for k, b, d, bt, h in CELL_CASES])
def test_fused_steps_match_composed_and_torch(kind: str, bias: bool, dtype: Any, batched: bool, hx: bool) -> None:
    torch = pytest.importorskip("torch")  # noqa: F841
    fused = make_cell(kind, dtype, bias=bias)
    composed = make_cell(kind, dtype, bias=bias, fused=False)
    composed.load_state_dict(fused.state_dict())
    x, states, weights = cell_problem(kind, dtype, batched, hx, "all")
    rtol = 1e-9 if dtype == np.float64 else 1e-4
    got_fused = run_minirnn(fused, kind, x, states, weights)
    got_composed = run_minirnn(composed, kind, x, states, weights)
    want = run_torch(kind, fused.state_dict(), bias, dtype, x, states, weights)
    assert_same(got_fused, want, rtol, "fused vs torch")
    assert_same(got_composed, want, rtol, "composed vs torch")
    assert_same(got_fused, got_composed, rtol, "fused vs composed")


LOSS_ON_CASES = [("lstm", "c"), ("lstm", "h"), ("gru", "h"), ("rnn_tanh", "h")]


@pytest.mark.extension
@pytest.mark.parametrize("kind, loss_on", LOSS_ON_CASES, ids=[f"{k}-{o}" for k, o in LOSS_ON_CASES])
@pytest.mark.parametrize("steps", [1, T])
@pytest.mark.parametrize("batched", [True, False])
def test_loss_on_one_output_only(kind: str, loss_on: str, steps: int, batched: bool) -> None:
    """The last step's backward gets a gradient for h' only or c' only (None for the other:
    materialize_grads=False), and still gives every gradient right."""
    pytest.importorskip("torch")
    dtype = np.float64
    fused = make_cell(kind, dtype)
    composed = make_cell(kind, dtype, fused=False)
    composed.load_state_dict(fused.state_dict())
    x, states, weights = cell_problem(kind, dtype, batched, True, loss_on, steps=steps, seed=3)
    want = run_torch(kind, fused.state_dict(), True, dtype, x, states, weights, loss_on)
    assert_same(run_minirnn(fused, kind, x, states, weights, loss_on), want, 1e-9, "fused vs torch")
    assert_same(run_minirnn(composed, kind, x, states, weights, loss_on), want, 1e-9, "composed vs torch")


@pytest.mark.extension
def test_lstm_step_backward_gets_none_for_the_unused_output() -> None:
    """What FusedCellStep.backward receives: None for the output no loss depends on."""
    seen: list = []
    original = FusedCellStep.__dict__["backward"]  # the staticmethod itself, put back as it was

    def spy(ctx: Any, *grads: Any) -> Any:
        seen.append(tuple(g is None for g in grads))
        return original.__func__(ctx, *grads)

    cell = make_cell("lstm", np.float64)
    x = leaf(normal(B, I))
    try:
        FusedCellStep.backward = staticmethod(spy)
        h, c = cell(x)
        c.sum().backward()
        h, c = cell(x)
        h.sum().backward()
    finally:
        FusedCellStep.backward = original
    assert seen == [(True, False), (False, True)]


@pytest.mark.extension
@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("batched", [True, False])
def test_fused_step_gradcheck(kind: str, bias: bool, batched: bool) -> None:
    rng = np.random.default_rng(5)
    b, i, h = 2, 3, 2
    g = {"lstm": 4, "gru": 3}.get(kind, 1)
    lead = (b,) if batched else ()
    x = leaf(rng.standard_normal(lead + (i,)))
    hs = leaf(rng.standard_normal(lead + (h,)))
    cs = leaf(rng.standard_normal(lead + (h,))) if kind == "lstm" else None
    w_ih, w_hh = leaf(rng.standard_normal((g * h, i))), leaf(rng.standard_normal((g * h, h)))
    biases = [leaf(rng.standard_normal(g * h)), leaf(rng.standard_normal(g * h))] if bias else [None, None]
    if kind == "rnn_relu":  # keep the pre-activations away from relu's kink at 0
        for t in (x, hs, w_ih, w_hh):
            t.data[np.abs(t.data) < 0.1] = 0.5
    inputs = [t for t in (x, hs, cs, w_ih, w_hh, *biases) if t is not None]

    def step(*args: Tensor) -> Any:
        it = iter(args)
        xx, hh = next(it), next(it)
        cc = next(it) if kind == "lstm" else None
        wi, wh = next(it), next(it)
        bi, bh = (next(it), next(it)) if bias else (None, None)
        out, c_new = cell_step(kind, xx, hh, cc, wi, wh, bi, bh)
        assert out.grad_fn.name == "FusedCellStep"
        return (out, c_new) if kind == "lstm" else out

    if kind == "rnn_relu":
        pre = x.data @ w_ih.data.T + hs.data @ w_hh.data.T + (biases[0].data + biases[1].data if bias else 0)
        assert np.abs(pre).min() > 1e-3  # (the fixed inputs keep relu's kink outside the differences)
    assert gradcheck(step, inputs)


@pytest.mark.extension
@pytest.mark.parametrize("kind", KINDS)
def test_fused_step_is_one_node_per_step(kind: str) -> None:
    cell = make_cell(kind, np.float64)
    h0 = leaf(normal(B, H))
    hx: Any = (h0, Tensor(np.zeros((B, H)))) if kind == "lstm" else h0
    for t in range(T):
        hx = cell(normal(B, I), hx)
    out = hx[0] if kind == "lstm" else hx
    records = minirnn.graph.nodes(out)
    assert [r.name for r in records] == ["FusedCellStep"] * T
    assert out.grad_fn.name == "FusedCellStep"
    composed = make_cell(kind, np.float64, fused=False)
    h = composed(normal(B, I), (h0, h0) if kind == "lstm" else h0)
    assert len(minirnn.graph.nodes(h[0] if kind == "lstm" else h)) > 1


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fused", [True, False])
def test_no_grad_records_nothing(kind: str, fused: bool) -> None:
    cell = make_cell(kind, np.float64, fused=fused)
    x, h0 = leaf(normal(B, I)), leaf(normal(B, H))
    hx = (h0, h0) if kind == "lstm" else h0
    with_grad = cell(x, hx)
    with minirnn.no_grad():
        without = cell(x, hx)
    outs, refs = (without, with_grad) if kind == "lstm" else ((without,), (with_grad,))
    for o, r in zip(outs, refs):
        assert o.grad_fn is None and not o.requires_grad
        np.testing.assert_array_equal(o.data, r.data)
    with pytest.raises(RuntimeError, match="does not require grad"):
        outs[0].sum().backward()
    assert x.grad is None and all(p.grad is None for p in cell.parameters())


@pytest.mark.parametrize("kind", KINDS)
def test_weight_shared_by_two_cells(kind: str) -> None:
    """Two cells hold the same weight_ih and bias_hh Parameters: their gradients sum both uses."""
    torch = pytest.importorskip("torch")
    dtype = np.float64
    results = {}
    for fused in (True, False):
        a = make_cell(kind, dtype, fused=fused)
        b = make_cell(kind, dtype, fused=fused)
        if fused is False:
            a.load_state_dict(state_a)
            b.load_state_dict(state_b)
        b.weight_ih = a.weight_ih
        b.bias_hh = a.bias_hh
        assert b.weight_ih is a.weight_ih
        state_a, state_b = a.state_dict(), b.state_dict()
        x = leaf(np.random.default_rng(9).standard_normal((B, I)))
        h1 = a(x)
        h1 = h1[0] if kind == "lstm" else h1
        h2 = b(x, (h1, h1 * 0.5) if kind == "lstm" else h1)
        h2 = h2[0] if kind == "lstm" else h2
        (h2 * h2).sum().backward()
        results[fused] = (h2.data, x.grad, a.weight_ih.grad, a.bias_hh.grad, a.weight_hh.grad, b.weight_hh.grad)
    ta = torch_rnn(kind, I, H, cell=True, dtype=dtype)
    tb = torch_rnn(kind, I, H, cell=True, dtype=dtype)
    ta.load_state_dict({k: torch.from_numpy(v) for k, v in state_a.items()})
    tb.load_state_dict({k: torch.from_numpy(v) for k, v in state_b.items()})
    tb.weight_ih, tb.bias_hh = ta.weight_ih, ta.bias_hh
    xt = torch.tensor(np.random.default_rng(9).standard_normal((B, I)), requires_grad=True)
    t1 = ta(xt)
    t1 = t1[0] if kind == "lstm" else t1
    t2 = tb(xt, (t1, t1 * 0.5) if kind == "lstm" else t1)
    t2 = t2[0] if kind == "lstm" else t2
    (t2 * t2).sum().backward()
    want = (t2.detach().numpy(), xt.grad.numpy(), ta.weight_ih.grad.numpy(), ta.bias_hh.grad.numpy(),
            ta.weight_hh.grad.numpy(), tb.weight_hh.grad.numpy())
    for fused, got in results.items():
        for k, (g, w) in enumerate(zip(got, want)):
            assert_close_to_scale(g, w, 1e-9, f"fused={fused} item {k}")


def test_fused_step_reads_non_contiguous_inputs_and_gradients() -> None:
    """x[:, t] of a batch-first array and h given as a transposed view; a loss through h'.T."""
    rng = np.random.default_rng(4)
    cell = make_cell("lstm", np.float64)
    x_bt = rng.standard_normal((B, T, I))
    h_hb = rng.standard_normal((H, B))
    c0 = rng.standard_normal((B, H))
    w = rng.standard_normal((H, B))
    results = []
    for contiguous in (False, True):
        cell.zero_grad()
        x_in = x_bt[:, 1] if not contiguous else np.ascontiguousarray(x_bt[:, 1])
        h_in = leaf(h_hb)
        h0 = h_in.T if not contiguous else h_in.T * 1.0
        h, c = cell(x_in, (h0, c0))
        (h.T * w).sum().backward()
        results.append((h.data, c.data, h_in.grad, cell.weight_ih.grad.copy(), cell.weight_hh.grad.copy()))
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("name, kind, x, hx, error, message", [
    ("rank 3", "gru", np.ones((1, B, I)), None, ValueError, r"GRUCell: input: expected shape \(B, 4\) or \(4,\)"),
    ("features", "lstm", np.ones((B, I + 1)), None, ValueError, r"LSTMCell: input: expected shape"),
    ("float32 input", "rnn_tanh", np.ones((B, I), np.float32), None, TypeError,
     "RNNCell: input: expected dtype float64"),
    ("hx shape", "rnn_relu", np.ones((B, I)), np.ones((B + 1, H)), ValueError, r"hx: expected shape \(3, 5\)"),
    ("unbatched hx batched", "gru", np.ones(I), np.ones((1, H)), ValueError, r"hx: expected shape \(5,\)"),
    ("hx dtype", "gru", np.ones((B, I)), np.ones((B, H), np.float32), TypeError, "hx: expected dtype float64"),
    ("lstm c dtype", "lstm", np.ones((B, I)), (np.ones((B, H)), np.ones((B, H), np.float32)), TypeError,
     r"hx\[1\]: expected dtype float64"),
    ("lstm h shape", "lstm", np.ones((B, I)), (np.ones((B, H + 1)), np.ones((B, H))), ValueError,
     r"hx\[0\]: expected shape"),
])
def test_fused_and_composed_raise_the_same_errors(fused: bool, name: str, kind: str, x: Any, hx: Any,
                                                    error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        make_cell(kind, np.float64, fused=fused)(x, hx)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("value", ["yes", 1, 0, None, np.bool_(True)])
def test_fused_must_be_a_bool(kind: str, value: Any) -> None:
    with pytest.raises(TypeError, match=r"fused: expected True or False, got"):
        make_cell(kind, np.float64, fused=value)


# ============================================================================ 5. engine
def test_reading_every_step_of_a_leaf_gives_the_dense_gradient() -> None:
    x = leaf(normal(5, 3, 2))
    w = normal(5, 3, 2)
    loss = sum((x[t] * w[t]).sum() for t in range(5))
    loss.backward()
    np.testing.assert_array_equal(x.grad, w)
    assert x.grad.shape == x.shape and x.grad.dtype == np.float64


@pytest.mark.parametrize("dtype", DTYPES, ids=["f32", "f64"])
def test_slices_read_twice_and_dense_use_sum_up(dtype: Any) -> None:
    steps = 4
    x = leaf(normal(steps, 3, 2, dtype=dtype))
    w = normal(steps, 3, 2, dtype=dtype)
    terms = [(x[t] * w[t]).sum() for t in range(steps)]
    terms += [(x[1] * 3.0).sum(), (x[-1, :, ::-1] * w[0]).sum(), (x[None, 2, ..., 1] * 0.5).sum()]
    terms.append((x * 2).sum())  # dense use of the same leaf in the same graph
    loss = sum(terms[1:], terms[0])
    loss.backward()
    expected = w.astype(np.float64) + 2
    expected[1] += 3
    expected[-1] += w[0, :, ::-1]
    expected[2, :, 1] += 0.5
    assert x.grad.dtype == dtype
    np.testing.assert_allclose(x.grad, expected, rtol=RTOL[dtype] if dtype == np.float32 else 1e-14)


@pytest.mark.parametrize("order", ["dense_first", "dense_last"])
def test_dense_and_scattered_contributions_in_either_order(order: str) -> None:
    x = leaf(normal(3, 4))
    parts = [lambda: (x * 2).sum(), lambda: x[0].sum(), lambda: x[0, 1:].sum(), lambda: x[2].sum()]
    if order == "dense_last":
        parts = parts[1:] + parts[:1]
    loss = parts[0]()
    for p in parts[1:]:
        loss = loss + p()
    loss.backward()
    expected = np.full((3, 4), 2.0)
    expected[0] += 1
    expected[0, 1:] += 1
    expected[2] += 1
    np.testing.assert_array_equal(x.grad, expected)


def test_a_non_leaf_read_by_slices() -> None:
    x = leaf(normal(3, 4))
    y = x * 1
    w = normal(2, 4)
    (y[0] * w[0] + y[1] * w[1]).sum().backward()
    np.testing.assert_array_equal(x.grad, np.vstack([w, np.zeros((1, 4))]))
    x.grad = None
    z = x * 3
    (z[1] * 2 + z[1]).sum().backward()  # the same slice read twice
    np.testing.assert_array_equal(x.grad, np.vstack([np.zeros(4), np.full(4, 9.0), np.zeros(4)]))
    assert gradcheck(lambda a: (a * 1)[0] * (a * 1)[2] + (a * 2)[1:, ::2].sum(), [leaf(normal(3, 4))])


def test_a_single_slice_gradient_is_dense_and_fresh() -> None:
    x = leaf(normal(3, 4))
    x[1].sum().backward()
    np.testing.assert_array_equal(x.grad, np.vstack([np.zeros(4), np.ones(4), np.zeros(4)]))
    assert isinstance(x.grad, np.ndarray) and x.grad.flags.writeable
    x[2].sum().backward()  # accumulates
    np.testing.assert_array_equal(x.grad, np.vstack([np.zeros(4), np.ones(4), np.ones(4)]))


def test_hooks_on_a_leaf_that_only_gets_scattered_grads() -> None:
    x = leaf(normal(4, 3))
    seen: list = []
    x.register_hook(lambda g: seen.append(g.copy()))
    (x[0] * 2).sum().backward()
    (x[1].sum() + x[3].sum() + x[1].sum()).backward()
    assert len(seen) == 2
    for g in seen:
        assert type(g) is np.ndarray and g.shape == (4, 3) and g.dtype == np.float64
    np.testing.assert_array_equal(seen[0], np.vstack([np.full(3, 2.0), np.zeros((3, 3))]))
    np.testing.assert_array_equal(seen[1], np.vstack([np.zeros(3), np.full(3, 2.0), np.zeros(3), np.ones(3)]))
    np.testing.assert_array_equal(x.grad, seen[0] + seen[1])


def test_hook_replacing_a_scattered_gradient() -> None:
    x = leaf(normal(4, 3))
    x.register_hook(lambda g: g * 10)
    x[2].sum().backward()
    np.testing.assert_array_equal(x.grad, np.vstack([np.zeros((2, 3)), np.full(3, 10.0), np.zeros(3)]))


def test_hooks_on_a_non_leaf_that_only_gets_scattered_grads() -> None:
    x = leaf(normal(4, 3))
    y = x * 1
    seen: list = []
    y.register_hook(lambda g: seen.append(g.copy()) or g * 2)
    (y[0].sum() + y[2, 1:].sum()).backward()
    assert len(seen) == 1 and type(seen[0]) is np.ndarray and seen[0].shape == (4, 3)
    expected = np.zeros((4, 3))
    expected[0] = 1
    expected[2, 1:] = 1
    np.testing.assert_array_equal(seen[0], expected)
    np.testing.assert_array_equal(x.grad, 2 * expected)
    # an output of a multi-output op (split) read by a slice
    x.grad = None
    a, b = x.split([1, 3])
    seen_b: list = []
    b.register_hook(lambda g: seen_b.append(g.copy()))
    b[1].sum().backward()
    assert len(seen_b) == 1 and seen_b[0].shape == (3, 3)
    np.testing.assert_array_equal(x.grad, np.vstack([np.zeros((2, 3)), np.ones(3), np.zeros(3)]))


@pytest.mark.parametrize("build", [
    "mixed", "scattered", "linear", "fused_lstm", "fused_gru", "composed_lstm",
])
def test_retain_graph_twice_doubles_the_gradients(build: str) -> None:
    x = leaf(normal(T, B, I))
    cell = None
    if build == "mixed":
        y = (x * x).tanh().sum() + x[1].sum()
        params: list = []
    elif build == "scattered":
        y = sum((x[t] * (t + 1.0)).sum() for t in range(T))
        params = []
    elif build == "linear":
        w, b = leaf(normal(H, I)), leaf(normal(H))
        y = (F.linear(x, w, b) * F.linear(x, w.T.T)).sum()
        params = [w, b]
    else:
        kind = build.split("_")[1]
        cell = make_cell(kind, np.float64, fused=build.startswith("fused"))
        hx = None
        for t in range(T):
            hx = cell(x[t], hx)
        y = (hx[0] * hx[1]).sum() if kind == "lstm" else (hx * hx).sum()
        params = list(cell.parameters())
    y.backward(retain_graph=True)
    first = [x.grad.copy()] + [p.grad.copy() for p in params]
    y.backward(retain_graph=True)
    second = [x.grad.copy()] + [p.grad.copy() for p in params]
    for k, (a, b) in enumerate(zip(first, second)):
        np.testing.assert_allclose(b, 2 * a, rtol=1e-13, atol=1e-15, err_msg=f"item {k}")
    y.backward()  # the last one may free
    np.testing.assert_allclose(x.grad, 3 * first[0], rtol=1e-13, atol=1e-15)
    with pytest.raises(RuntimeError, match="backward through the graph a second time"):
        y.backward()


def test_split_with_an_unused_output() -> None:
    x = leaf(normal(5, 2))
    a, b, c = x.split([2, 1, 2])
    (a * 3).sum().backward()
    np.testing.assert_array_equal(x.grad, np.vstack([np.full((2, 2), 3.0), np.zeros((3, 2))]))
    x.grad = None
    a, b, c = minirnn.split(x, [2, 1, 2])
    (c[1] + b[0]).sum().backward()  # the first output unused, the others read by slices
    np.testing.assert_array_equal(x.grad, [[0, 0], [0, 0], [1, 1], [0, 0], [1, 1]])
    assert gradcheck(lambda t: t.split(2)[1] * 2, [leaf(normal(4, 3))])


# ---------------------------------------------------------------- a weight used at many steps
def test_a_weight_used_at_every_step_and_densely_matches_torch() -> None:
    """W and b in a linear at each of T steps (one gradient contribution per use), plus a dense
    penalty, a slice read and a transposed product: the summed gradients are torch's."""
    torch = pytest.importorskip("torch")

    def ours(x, w, b):
        total = sum((F.linear(x[t], w, b).tanh() * (t + 1.0)).sum() for t in range(x.shape[0]))
        return total + (w * w).sum() * 0.1 + w[1].sum() + (x[0] @ w.T).sum() + b[2:].sum()

    def theirs(x, w, b):
        total = sum((torch.nn.functional.linear(x[t], w, b).tanh() * (t + 1.0)).sum() for t in range(x.shape[0]))
        return total + (w * w).sum() * 0.1 + w[1].sum() + (x[0] @ w.T).sum() + b[2:].sum()

    check_against_torch(ours, theirs, [normal(6, B, I), normal(H, I), normal(H)])


@pytest.mark.parametrize("kind", KINDS)
def test_hooks_on_cell_weights_see_one_dense_gradient(kind: str) -> None:
    """A parameter used at T steps: its hook runs once, on an ndarray of its full shape, equal to
    the gradient it ends with (and a replacing hook replaces the whole sum)."""
    cell = make_cell(kind, np.float64)
    x = normal(T, B, I)
    seen: dict[str, list] = {}
    for name, p in cell.named_parameters():
        seen[name] = []
        p.register_hook(lambda g, name=name: seen[name].append(g.copy()))
    hx = None
    for t in range(T):
        hx = cell(x[t], hx)
    (hx[0] if kind == "lstm" else hx).sum().backward()
    for name, p in cell.named_parameters():
        assert len(seen[name]) == 1, name
        (g,) = seen[name]
        assert type(g) is np.ndarray and g.shape == p.shape and g.dtype == np.float64, name
        np.testing.assert_array_equal(g, p.grad)
    expected = cell.weight_hh.grad.copy()
    cell.zero_grad()
    cell.weight_hh.register_hook(lambda g: g * 3)
    hx = None
    for t in range(T):
        hx = cell(x[t], hx)
    (hx[0] if kind == "lstm" else hx).sum().backward()
    np.testing.assert_allclose(cell.weight_hh.grad, 3 * expected, rtol=1e-14, atol=1e-15)


@pytest.mark.parametrize("kind", ["lstm", "gru"])
def test_cell_weights_also_used_outside_the_cell(kind: str) -> None:
    """weight_ih read by the fused steps AND by a linear, a slice and a penalty; weight_hh
    through a non-leaf (a copy made on the tape): fused and composed agree with torch."""
    torch = pytest.importorskip("torch")
    fused = make_cell(kind, np.float64)
    composed = make_cell(kind, np.float64, fused=False)
    composed.load_state_dict(fused.state_dict())
    x_arr = normal(T, B, I)

    def loss_of(cell: Any, x: Any, lin: Callable, first_row: Callable) -> Any:
        hx = None
        for t in range(T):
            hx = cell(x[t], hx)
        h = hx[0] if kind == "lstm" else hx
        w = cell.weight_ih
        return (h * h).sum() + lin(x[0], w).sum() + first_row(w).sum() + (w * w).sum() * 0.5

    grads = []
    for cell in (fused, composed):
        x = leaf(x_arr)
        loss_of(cell, x, lambda a, w: F.linear(a, w), lambda w: w[0]).backward()
        grads.append([x.grad] + [p.grad for p in cell.parameters()])
    tc = torch_rnn(kind, I, H, cell=True, dtype=np.float64)
    tc.load_state_dict({k: torch.from_numpy(v) for k, v in fused.state_dict().items()})
    xt = torch.tensor(x_arr, requires_grad=True)
    loss_of(tc, xt, lambda a, w: torch.nn.functional.linear(a, w), lambda w: w[0]).backward()
    want = [xt.grad.numpy()] + [p.grad.numpy() for p in tc.parameters()]
    for which, got in zip(("fused", "composed"), grads):
        for k, (g, w) in enumerate(zip(got, want)):
            assert_close_to_scale(g, w, 1e-9, f"{which}: item {k}")


@pytest.mark.parametrize("kind", KINDS)
def test_fused_steps_with_megabyte_buffers_match_torch(kind: str) -> None:
    """B=64, H=512 in float64: each step's gate gradients are 1 MB or more, the size the kernels
    take from their reused scratch memory, while the weights' gradients wait for all T steps."""
    torch = pytest.importorskip("torch")
    b, i, h, steps = 64, 16, 512, 3
    cell = make_cell(kind, np.float64, input_size=i, hidden_size=h)
    rng = np.random.default_rng(8)
    x_arr, w = rng.standard_normal((steps, b, i)), rng.standard_normal((b, h))
    x = leaf(x_arr)
    hx = None
    for t in range(steps):
        hx = cell(x[t], hx)
    ((hx[0] if kind == "lstm" else hx) * w).sum().backward()
    tc = torch_rnn(kind, i, h, cell=True, dtype=np.float64)
    tc.load_state_dict({k: torch.from_numpy(v) for k, v in cell.state_dict().items()})
    xt = torch.tensor(x_arr, requires_grad=True)
    hx = None
    for t in range(steps):
        hx = tc(xt[t], hx)
    ((hx[0] if kind == "lstm" else hx) * torch.from_numpy(w)).sum().backward()
    assert_close_to_scale(x.grad, xt.grad.numpy(), 1e-9, "x.grad")
    for (name, p), q in zip(cell.named_parameters(), tc.parameters()):
        assert_close_to_scale(p.grad, q.grad.numpy(), 1e-9, name)


@pytest.mark.parametrize("limit", [0, 1 << 10])
def test_lazy_gradients_flushed_early_give_the_same_sums(monkeypatch: pytest.MonkeyPatch, limit: int) -> None:
    """The engine adds waiting lazy gradients (products, slices, rows) into their buffer once they
    hold MAX_PENDING_BYTES; flushing after every one (limit 0) or every few KiB must give the sums
    of flushing once at the end, for weights, a leaf read by slices and an embedding table."""
    from minirnn import autograd

    def run() -> dict[str, np.ndarray]:
        minirnn.manual_seed(3)
        cell, embed = nn.LSTMCell(I, H, dtype=np.float64), nn.Embedding(7, I, dtype=np.float64)
        rng = np.random.default_rng(5)
        x = leaf(rng.standard_normal((T, B, I)))
        ids = rng.integers(0, 7, size=(T, B))
        hx = None
        for t in range(T):
            hx = cell(x[t] + embed(ids[t]), hx)
        hx[0].sum().backward()
        return {"x": x.grad, "embed": embed.weight.grad, **{n: p.grad for n, p in cell.named_parameters()}}

    at_the_end = run()
    monkeypatch.setattr(autograd._Sum, "MAX_PENDING_BYTES", limit)
    flushed = run()
    for name, g in at_the_end.items():
        np.testing.assert_allclose(flushed[name], g, rtol=1e-12, atol=1e-14, err_msg=name)


@pytest.mark.parametrize("where", ["leaf", "non-leaf"])
def test_a_hook_returning_another_shape_raises(where: str) -> None:
    """A hook's replacement must have the gradient's shape: g.sum(0) on a (3, 4) leaf would be
    broadcast by an optimizer, and a same-size (4, 3) on a non-leaf would be reshaped, silently."""
    x = leaf(normal(3, 4))
    y = x * 2.0
    if where == "leaf":
        x.register_hook(lambda g: g.sum(0))
        expected = r"shape \(4,\), expected \(3, 4\)"
    else:
        y.register_hook(lambda g: g.reshape(4, 3))
        expected = r"shape \(4, 3\), expected \(3, 4\)"
    with pytest.raises(ValueError, match=expected):
        y.sum().backward()
