"""minirnn.reference (NumPy BPTT) and minirnn.fused (the one-node layer): torch oracle, finite
differences, C kernels vs reference, argument checks."""
from __future__ import annotations

import itertools
import threading

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from lecture_oracle import LECTURE_MODES
from torch_oracle import assert_close_to_scale, torch_rnn

import minirnn
from minirnn import Tensor, gradcheck
from minirnn import _extension, fused, graph, modes, reference
from minirnn.fused import reverse_within_lengths, rnn_layer

MODES = ("rnn_tanh", "rnn_relu", "lstm", "gru")
ALL_MODES = MODES + LECTURE_MODES  # with the modes torch lacks, for the tests that need no torch
T, B, I, H = 5, 4, 3, 3


#: The fused layers' two backends as a test parameter; "c" is marked `extension` (skipped where the
#: compiled extension is absent or hidden: MINIRNN_NO_EXTENSION=1).
BACKENDS = [pytest.param("c", marks=pytest.mark.extension), "reference"]


def make_args(mode: str, dtype: type, bias: bool, lengths: bool, seed: int = 0,
              sizes: tuple[int, int, int] = (T, I, H)) -> tuple:
    """Random (x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths) for one layer of B sequences with
    ``sizes`` = (steps, inputs, hidden); the lengths include 0 and the full length."""
    steps, inputs, hidden = sizes
    rng = np.random.default_rng(seed)
    gh = modes.NUM_GATES[mode] * hidden

    def draw(*shape: int) -> np.ndarray:
        return rng.uniform(-1, 1, shape).astype(dtype)

    b_ih, b_hh = (draw(gh), draw(gh)) if bias else (None, None)
    c0 = draw(B, hidden) if mode == "lstm" else None
    lens = np.array([steps, 0, 2, steps - 1], dtype=np.int64) if lengths else None
    return draw(steps, B, inputs), draw(gh, inputs), draw(gh, hidden), b_ih, b_hh, draw(B, hidden), c0, lens


def output_grads(mode: str, dtype: type, lengths: np.ndarray | None, seed: int = 1) -> tuple:
    """Random dy (zero past each length, where y does not depend on anything), dh_n, dc_n."""
    rng = np.random.default_rng(seed)
    dy = rng.standard_normal((T, B, H)).astype(dtype)
    dy *= reference.step_mask(lengths, T, B)
    dc_n = rng.standard_normal((B, H)).astype(dtype) if mode == "lstm" else None
    return dy, rng.standard_normal((B, H)).astype(dtype), dc_n


def torch_layer(mode: str, args: tuple, grads: tuple) -> tuple:
    """The same layer in torch (packed when lengths are given): outputs and every input gradient."""
    torch = pytest.importorskip("torch")
    x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths = args
    layer = torch_rnn(mode, I, H, bias=b_ih is not None, dtype=x.dtype)
    layer.load_state_dict({k: torch.from_numpy(v) for k, v in
                           zip(["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"], (w_ih, w_hh, b_ih, b_hh))
                           if v is not None})
    tx = torch.tensor(x, requires_grad=True)
    states = [torch.tensor(s[None], requires_grad=True) for s in (h0, c0) if s is not None]
    hx = tuple(states) if mode == "lstm" else states[0]
    keep = lengths is None or lengths.min() > 0  # torch cannot pack empty sequences
    if lengths is None:
        y, final = layer(tx, hx)
    else:
        idx = torch.from_numpy(np.flatnonzero(lengths > 0)) if not keep else torch.arange(B)
        packed = torch.nn.utils.rnn.pack_padded_sequence(
            tx[:, idx], torch.from_numpy(lengths)[idx], enforce_sorted=False)
        sub_hx = tuple(s[:, idx] for s in states) if mode == "lstm" else states[0][:, idx]
        y_sub, final_sub = layer(packed, sub_hx)
        y_sub, _ = torch.nn.utils.rnn.pad_packed_sequence(y_sub, total_length=T)
        y = torch.zeros(T, B, H, dtype=y_sub.dtype).index_copy(1, idx, y_sub)
        finals = final_sub if mode == "lstm" else (final_sub,)
        finals = tuple(s.clone().index_copy(1, idx, f) for s, f in zip(states, finals))
        final = finals if mode == "lstm" else finals[0]
    finals = final if mode == "lstm" else (final,)
    loss = (y * torch.from_numpy(grads[0])).sum()
    for f, g in zip(finals, grads[1:]):
        loss = loss + (f[0] * torch.from_numpy(g)).sum()
    loss.backward()
    params = [layer.weight_ih_l0, layer.weight_hh_l0]
    params += [layer.bias_ih_l0, layer.bias_hh_l0] if b_ih is not None else []
    outs = [y] + [f[0] for f in finals]
    input_grads = [tx.grad] + [p.grad for p in params] + [s.grad[0] for s in states]
    return [o.detach().numpy() for o in outs], [g.numpy() for g in input_grads]



@pytest.mark.parametrize("mode,dtype,bias,lengths",
                         list(itertools.product(MODES, (np.float32, np.float64), (True, False), (False, True))))
def test_reference_matches_torch(mode: str, dtype: type, bias: bool, lengths: bool) -> None:
    args = make_args(mode, dtype, bias, lengths)
    y, h_n, c_n, saved = reference.rnn_forward(mode, *args)
    grads = output_grads(mode, dtype, args[-1])
    ours = reference.rnn_backward(saved, *grads)
    expected_outs, expected_grads = torch_layer(mode, args, grads)
    rtol = 1e-9 if dtype == np.float64 else 1e-4
    for name, a, e in zip(("y", "h_n", "c_n"), (y, h_n, c_n), expected_outs):
        assert a.dtype == dtype
        assert_close_to_scale(a, e, rtol, name)
    names = ("dx", "dw_ih", "dw_hh", "db_ih", "db_hh", "dh0", "dc0")
    present = [(n, g) for n, g in zip(names, ours) if g is not None]
    assert len(present) == len(expected_grads)
    for (name, a), e in zip(present, expected_grads):
        assert_close_to_scale(a, e, rtol, name)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("mode", ALL_MODES)
def test_gradcheck_through_fused_layer(backend: str, mode: str) -> None:
    """Central differences through the whole node: lengths (incl. 0) and the reverse gather."""
    x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths = make_args(mode, np.float64, True, True, seed=3, sizes=(3, 2, 2))
    if mode == "rnn_relu":  # keep pre-activations away from the kink at 0
        w_hh *= 0.1
    tensors = [None if a is None else Tensor(a, requires_grad=True) for a in (x, w_ih, w_hh, b_ih, b_hh, h0, c0)]
    assert gradcheck(lambda *a: rnn_layer(mode, *a, lengths=lengths, reverse=True, backend=backend), tensors)


@pytest.mark.extension
@pytest.mark.parametrize("mode,dtype,bias", list(itertools.product(ALL_MODES, (np.float32, np.float64), (True, False))))
def test_c_kernels_match_reference(mode: str, dtype: type, bias: bool) -> None:
    c_module = fused.get_backend("c")
    args = make_args(mode, dtype, bias, lengths=True, seed=5)
    grads = output_grads(mode, dtype, args[-1])
    results = []
    for module in (reference, c_module):
        y, h_n, c_n, saved = module.rnn_forward(mode, *args)
        results.append((y, h_n, c_n) + tuple(module.rnn_backward(saved, *grads)))
    rtol = 1e-12 if dtype == np.float64 else 1e-5
    for name, a, e in zip(("y", "h_n", "c_n", "dx", "dw_ih", "dw_hh", "db_ih", "db_hh", "dh0", "dc0"), *results):
        assert (a is None) == (e is None), name
        if e is not None:
            assert_close_to_scale(a, e, rtol, name)


def test_needs_input_grad_limits_gradients() -> None:
    x, w_ih, w_hh, b_ih, b_hh, h0, _, lengths = make_args("gru", np.float64, True, True)
    wx = Tensor(w_ih, requires_grad=True)
    xt = Tensor(x)
    y, h_n = rnn_layer("gru", xt, wx, Tensor(w_hh), Tensor(b_ih), Tensor(b_hh), h0, lengths=lengths,
                       backend="reference")
    h_n.backward(np.ones_like(h_n.data))  # y unused: its gradient is zero-filled
    assert wx.grad is not None and xt.grad is None
    dy = np.zeros((T, B, H))
    saved = reference.rnn_forward("gru", x, w_ih, w_hh, b_ih, b_hh, h0, None, lengths)[3]
    expected = reference.rnn_backward(saved, dy, np.ones((B, H)), None)[1]
    # rnn_layer runs the batch longest first, so dW sums the rows in another order: equal to rounding
    np.testing.assert_allclose(wx.grad, expected, rtol=1e-12, atol=0)


def test_lengths_semantics() -> None:
    """Zero outputs past each length, the final state at each sequence's own end, h0 for length 0."""
    args = make_args("lstm", np.float64, True, lengths=True)
    lengths = args[-1]
    y, h_n, c_n, _ = reference.rnn_forward("lstm", *args)
    full_y, _, _, _ = reference.rnn_forward("lstm", *args[:-1], None)
    for b, n in enumerate(lengths):
        np.testing.assert_array_equal(y[n:, b], 0)
        np.testing.assert_array_equal(y[:n, b], full_y[:n, b])
        np.testing.assert_array_equal(h_n[b], full_y[n - 1, b] if n else args[5][b])
    np.testing.assert_array_equal(c_n[1], args[6][1])


def test_reverse_within_lengths_is_an_involution() -> None:
    a = np.arange(4 * 3 * 2).reshape(4, 3, 2)
    lengths = np.array([4, 0, 2])
    r = reverse_within_lengths(a, lengths)
    np.testing.assert_array_equal(r[:, 0], a[::-1, 0])
    np.testing.assert_array_equal(r[:, 1], a[:, 1])
    np.testing.assert_array_equal(r[:, 2], a[[1, 0, 2, 3], 2])
    np.testing.assert_array_equal(reverse_within_lengths(r, lengths), a)
    np.testing.assert_array_equal(reverse_within_lengths(a, None), a[::-1])


@pytest.mark.extension
def test_use_backend_is_per_thread() -> None:
    """Inside one thread's use_backend("reference") block another thread still gets "c", and two
    threads' overlapping blocks leave the default "c" everywhere afterwards (issue 24, item 7)."""
    inside, leave = threading.Event(), threading.Event()
    seen: dict[str, object] = {}

    def in_block() -> None:
        with fused.use_backend("reference"):
            seen["inside"] = fused.get_backend()
            inside.set()
            leave.wait(10)

    worker = threading.Thread(target=in_block)
    worker.start()
    assert inside.wait(10)
    seen["other"] = fused.get_backend()
    with fused.use_backend("reference"):  # overlapping with the worker's block
        leave.set()
        worker.join(10)
    assert seen["inside"] is reference
    assert seen["other"] is fused.get_backend("c")
    assert fused.get_backend() is fused.get_backend("c")


def test_use_backend_switches_and_restores() -> None:
    with fused.use_backend("reference"):
        assert fused.get_backend() is reference
    with pytest.raises(ValueError, match="expected one of"):
        with fused.use_backend("cuda"):
            pass  # pragma: no cover
    with pytest.raises(ValueError, match="backend: expected one of"):
        fused.get_backend("nope")


def test_fused_backward_twice_raises() -> None:
    args = make_args("rnn_tanh", np.float64, True, False)
    w = Tensor(args[1], requires_grad=True)
    y, _ = rnn_layer("rnn_tanh", args[0], w, *args[2:6], backend="reference")
    y.backward(np.ones_like(y.data))
    with pytest.raises(RuntimeError, match="second time"):
        y.backward(np.ones_like(y.data))
    assert fused.FusedRNNLayer.differentiable_backward is False


BAD_ARGS = [  # (id, how to spoil (mode, x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths), error, argument named)
    ("mode", lambda a: ("lstm2",) + a[1:], ValueError, "mode"),
    ("x rank", lambda a: (a[0], a[1][0]) + a[2:], ValueError, "x"),
    ("x dtype", lambda a: (a[0], a[1].astype(np.float16)) + a[2:], TypeError, "x"),
    ("w_ih shape", lambda a: (a[0], a[1], a[2][:, :2]) + a[3:], ValueError, "w_ih"),
    ("w_hh dtype", lambda a: a[:3] + (a[3].astype(np.float32),) + a[4:], TypeError, "w_hh"),
    ("one bias", lambda a: a[:5] + (None,) + a[6:], ValueError, "b_ih, b_hh"),
    ("h0 shape", lambda a: a[:6] + (a[6][:2],) + a[7:], ValueError, "h0"),
    ("c0 missing", lambda a: a[:7] + (None, a[8]), ValueError, "c0"),
    ("lengths high", lambda a: a[:8] + (np.array([T + 1, 0, 1, 1]),), ValueError, "lengths"),
    ("lengths negative", lambda a: a[:8] + (np.array([-1, 0, 1, 1]),), ValueError, "lengths"),
    ("lengths dtype", lambda a: a[:8] + (np.array([1.0, 0, 1, 1]),), TypeError, "lengths"),
    ("lengths shape", lambda a: a[:8] + (np.array([1, 1]),), ValueError, "lengths"),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("name,mutate,error,argument", BAD_ARGS, ids=[b[0] for b in BAD_ARGS])
def test_bad_arguments_raise(backend: str, name: str, mutate, error: type, argument: str) -> None:
    """Both backends reject bad arguments with an "<argument>: expected X, got Y" message."""
    args = mutate(("lstm",) + make_args("lstm", np.float64, True, True))
    with pytest.raises(error, match=f"{argument}: expected .*got"):
        fused.get_backend(backend).rnn_forward(*args)


def test_reference_rejects_non_arrays() -> None:
    args = make_args("gru", np.float64, True, False)
    with pytest.raises(TypeError, match="x: expected an ndarray, got list"):
        reference.rnn_forward("gru", args[0].tolist(), *args[1:])


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("steps,batch", [(0, 4), (5, 0), (0, 0)])
def test_empty_shapes(backend: str, steps: int, batch: int) -> None:
    """T = 0 returns the initial state; B = 0 returns empty arrays; backward works on both."""
    rng = np.random.default_rng(0)
    x = Tensor(rng.standard_normal((steps, batch, I)), requires_grad=True)
    w_ih, w_hh = (Tensor(rng.standard_normal(s), requires_grad=True) for s in ((4 * H, I), (4 * H, H)))
    h0, c0 = (Tensor(rng.standard_normal((batch, H)), requires_grad=True) for _ in range(2))
    y, h_n, c_n = rnn_layer("lstm", x, w_ih, w_hh, None, None, h0, c0, backend=backend)
    assert y.shape == (steps, batch, H) and h_n.shape == c_n.shape == (batch, H)
    if steps == 0:
        np.testing.assert_array_equal(h_n.data, h0.data)
        np.testing.assert_array_equal(c_n.data, c0.data)
    h_n.backward(np.ones_like(h_n.data))
    np.testing.assert_array_equal(w_ih.grad, 0)
    if steps == 0:
        np.testing.assert_array_equal(h0.grad, 1)


@pytest.mark.extension
@settings(max_examples=40, deadline=None)
@given(mode=st.sampled_from(MODES), steps=st.integers(0, 4), batch=st.integers(0, 3), inputs=st.integers(1, 3),
       hidden=st.integers(1, 3), bias=st.booleans(), seed=st.integers(0, 2**16))
def test_c_kernels_match_reference_on_random_shapes(mode: str, steps: int, batch: int, inputs: int, hidden: int,
                                                    bias: bool, seed: int) -> None:
    # Weights as PyTorch initialises them, U(-1/sqrt(H), 1/sqrt(H)), and inputs of scale 0.5: with
    # standard normal weights a unit saturates (tanh(12): 1 - h^2 = 8e-11) and the two correct
    # implementations' 1-ulp differences in h (FMA or not) became 5e-7 relative differences in dx.
    rng = np.random.default_rng(seed)
    gh = modes.NUM_GATES[mode] * hidden

    def weights(*shape: int) -> np.ndarray:
        return rng.uniform(-1, 1, shape) / np.sqrt(hidden)

    biases = (weights(gh), weights(gh)) if bias else (None, None)
    args = (0.5 * rng.standard_normal((steps, batch, inputs)), weights(gh, inputs), weights(gh, hidden), *biases,
            0.5 * rng.standard_normal((batch, hidden)),
            0.5 * rng.standard_normal((batch, hidden)) if mode == "lstm" else None, rng.integers(0, steps + 1, batch))
    grads = (rng.standard_normal((steps, batch, hidden)) * reference.step_mask(args[-1], steps, batch),
             rng.standard_normal((batch, hidden)), rng.standard_normal((batch, hidden)) if mode == "lstm" else None)
    results = []
    for module in (reference, fused.get_backend("c")):
        y, h_n, c_n, saved = module.rnn_forward(mode, *args)
        results.append((y, h_n, c_n) + tuple(module.rnn_backward(saved, *grads)))
    for k, (a, e) in enumerate(zip(*results)):
        assert (a is None) == (e is None), k
        if e is not None:
            assert a.shape == e.shape, k
            assert_close_to_scale(a, e, 1e-12, f"result {k}")


def test_tolerance_helper_is_relative_to_the_array_scale() -> None:
    """assert_close_to_scale: |a - e| <= rtol * max|e|, no absolute floor, shapes must agree."""
    e = np.array([1e-3, -2e-3, 0.0])
    assert_close_to_scale(e + 0.9e-9 * 2e-3, e, 1e-9, "within")
    with pytest.raises(AssertionError, match="beyond"):
        assert_close_to_scale(e + 1.1e-9 * 2e-3, e, 1e-9, "beyond")  # a floor of 1 would accept this
    assert_close_to_scale(np.zeros(2), np.zeros(2), 1e-4, "zeros")
    with pytest.raises(AssertionError, match="not zero"):
        assert_close_to_scale(np.array([0.0, 1e-30]), np.zeros(2), 1e-4, "not zero")
    with pytest.raises(AssertionError, match=r"shape \(3,\), expected \(1, 3\)"):
        assert_close_to_scale(e, e[None], 1e-9, "shape")


# ---------------------------------------------------------------------------- one backend interface
def _stub_parameters(name: str) -> list[tuple[str, object]]:
    """(name, default or inspect.Parameter.empty) of each parameter ``minirnn/_C.pyi`` declares for ``name``."""
    import ast
    import inspect
    from pathlib import Path
    tree = ast.parse((Path(fused.__file__).parent / "_C.pyi").read_text())
    fn = next(node for node in tree.body if isinstance(node, ast.FunctionDef) and node.name == name)
    names = [a.arg for a in fn.args.args]
    defaults = [inspect.Parameter.empty] * (len(names) - len(fn.args.defaults))
    defaults += [ast.literal_eval(d) for d in fn.args.defaults]
    return list(zip(names, defaults))


@pytest.mark.parametrize("name", ["rnn_forward", "rnn_backward", "lstm_proj_forward", "lstm_proj_backward"])
def test_reference_takes_the_kernels_arguments(name: str) -> None:
    import inspect
    ours = [(p.name, p.default) for p in inspect.signature(getattr(reference, name)).parameters.values()]
    assert ours == _stub_parameters(name)


@pytest.mark.parametrize("mode", ALL_MODES)
def test_reference_backward_takes_only_what_forward_saved(mode: str) -> None:
    """Backward needs only the saved state and the output gradients (absent ones are zeros); one
    saved state serves two backwards alike; need_workspace=False keeps none."""
    args = make_args(mode, np.float64, True, lengths=True, seed=3)
    dy, dh_n, dc_n = output_grads(mode, np.float64, args[-1])
    y, h_n, c_n, saved = reference.rnn_forward(mode, *args)
    full = reference.rnn_backward(saved, dy, dh_n, dc_n)
    for a, e in zip(reference.rnn_backward(saved, dy, dh_n, dc_n), full):
        assert (a is None) == (e is None)
        if e is not None:
            np.testing.assert_array_equal(a, e)
    zeros = reference.rnn_backward(saved, np.zeros_like(dy), np.zeros_like(dh_n),
                                   None if dc_n is None else np.zeros_like(dc_n))
    for a, e in zip(reference.rnn_backward(saved, None, None, None), zeros):
        assert (a is None) == (e is None)
        if e is not None:
            np.testing.assert_array_equal(a, e)
    y2, h_n2, c_n2, none = reference.rnn_forward(mode, *args, False)
    assert none is None
    np.testing.assert_array_equal(y2, y)
    np.testing.assert_array_equal(h_n2, h_n)


@pytest.mark.parametrize("backend", BACKENDS)
def test_backward_refuses_what_no_forward_saved(backend: str) -> None:
    module = fused.get_backend(backend)
    args = make_args("lstm", np.float64, True, lengths=False)
    saved = module.rnn_forward("lstm", *args)[3]
    with pytest.raises(TypeError, match="saved: expected the SavedLayer returned by rnn_forward"):
        module.rnn_backward(saved.workspace, None, None, None)
    with pytest.raises(TypeError, match="saved: expected the SavedLayer returned by lstm_proj_forward"):
        module.lstm_proj_backward(None, None, None, None)
    with pytest.raises(ValueError, match="saved: expected the SavedLayer returned by lstm_proj_forward, got one "
                                         "returned by rnn_forward"):
        module.lstm_proj_backward(saved, None, None, None)
    with pytest.raises(ValueError, match=r"dh_n: expected .*\(4, 3\), got \(4, 4\)"):
        module.rnn_backward(saved, None, np.zeros((B, H + 1)), None)


@pytest.mark.parametrize("backend", BACKENDS)
def test_saved_state_counts_the_arrays_it_holds(backend: str) -> None:
    """``nbytes``: the arrays forward checked (not lengths) and the workspace, what the tape reports."""
    module = fused.get_backend(backend)
    x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths = make_args("lstm", np.float64, True, lengths=True)
    saved = module.rnn_forward("lstm", x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths)[3]
    held = sum(a.nbytes for a in (x, w_ih, w_hh, b_ih, b_hh, h0, c0))
    assert saved.nbytes == held + saved.workspace.nbytes == sum(a.nbytes for a in saved.arrays)
    assert saved.workspace.ndim == 1 and saved.workspace.nbytes > 0
    layer = rnn_layer("lstm", Tensor(x, requires_grad=True), Tensor(w_ih), Tensor(w_hh), Tensor(b_ih),
                      Tensor(b_hh), h0, c0, None, backend=backend)[0]
    assert graph.nodes(layer)[0].saved_bytes == saved.nbytes  # (without lengths: the same arrays)


@pytest.mark.parametrize("mode", [m for m in ALL_MODES if m != "gru_reset_before"])
def test_reference_gate_grads_are_the_factors_of_the_weight_gradients(mode: str) -> None:
    x, w_ih, w_hh, b_ih, b_hh, h0, c0, _ = make_args(mode, np.float64, True, lengths=False, seed=4)
    args = (x, w_ih, w_hh, b_ih, b_hh, h0, c0, None)
    dy, dh_n, dc_n = output_grads(mode, np.float64, None)
    y, _, _, saved = reference.rnn_forward(mode, *args)
    dx, dw_ih, dw_hh, *rest = reference.rnn_backward(saved, dy, dh_n, dc_n)
    gx, dg_ih, dg_hh, *g_rest = reference.rnn_backward(saved, dy, dh_n, dc_n, True)
    assert (dg_hh is None) == (mode != "gru")
    h_prev = np.concatenate([h0[None], y[:-1]]).reshape(T * B, H)  # lengths None: y holds every state
    np.testing.assert_allclose(dg_ih.T @ x.reshape(T * B, I), dw_ih, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose((dg_ih if dg_hh is None else dg_hh).T @ h_prev, dw_hh, rtol=1e-12, atol=1e-14)
    for a, e in zip((gx, *g_rest), (dx, *rest)):
        np.testing.assert_array_equal(a, e)
    if _extension.C is not None:  # the kernels' gate gradients are the same
        kernels = fused.get_backend("c")
        c_grads = kernels.rnn_backward(kernels.rnn_forward(mode, *args)[3], dy, dh_n, dc_n, True)
        for name, a, e in zip(("dx", "dg_ih", "dg_hh", "db_ih", "db_hh", "dh0", "dc0"), c_grads,
                              (gx, dg_ih, dg_hh, *g_rest)):
            assert (a is None) == (e is None), name
            if e is not None:
                assert_close_to_scale(a, e, 1e-12, name)


@pytest.mark.parametrize("backend", BACKENDS)
def test_gate_grads_refuse_lengths_and_gru_reset_before(backend: str) -> None:
    module = fused.get_backend(backend)
    for mode, lengths in (("gru", True), ("gru_reset_before", False)):
        args = make_args(mode, np.float64, True, lengths=lengths)
        saved = module.rnn_forward(mode, *args)[3]
        with pytest.raises(ValueError, match="lengths|gate_grads"):
            module.rnn_backward(saved, None, None, None, True)


@pytest.mark.parametrize("backend", BACKENDS)
def test_fused_layer_asks_for_a_workspace_only_when_recorded(backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    module = fused.get_backend(backend)
    asked = []

    def spy(*args):
        asked.append(args[-1])
        return forward(*args)

    forward = module.rnn_forward
    monkeypatch.setattr(module, "rnn_forward", spy)
    x, w_ih, w_hh, b_ih, b_hh, h0, c0, lengths = make_args("lstm", np.float64, True, lengths=True)
    w = Tensor(w_ih, requires_grad=True)
    rnn_layer("lstm", Tensor(x), w, Tensor(w_hh), Tensor(b_ih), Tensor(b_hh), h0, c0, lengths, backend=backend)
    with minirnn.no_grad():
        rnn_layer("lstm", Tensor(x), w, Tensor(w_hh), Tensor(b_ih), Tensor(b_hh), h0, c0, lengths, backend=backend)
    rnn_layer("lstm", Tensor(x), Tensor(w_ih), Tensor(w_hh), None, None, h0, c0, lengths, backend=backend)
    assert asked == [True, False, False]
