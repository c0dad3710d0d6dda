"""Issue 24, item 1 (and two of item 10): ``.double()``, ``.float()`` and ``.to(dtype)`` leave every
module usable in the new dtype -- forward, backward and an optimizer step equal torch's after the
same conversion -- and the modules take big-endian and unbatched zero-length input."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

import minirnn
from minirnn import Tensor, nn
from minirnn.charlm import CharLM

torch = pytest.importorskip("torch")

# (our conversion, torch's, resulting dtype)
DOUBLE = (lambda m: m.double(), lambda m: m.double(), np.float64)
FLOAT = (lambda m: m.float(), lambda m: m.float(), np.float32)
TO_F64 = (lambda m: m.to(np.float64), lambda m: m.to(torch.float64), np.float64)
TO_F32 = (lambda m: m.to(np.float32), lambda m: m.to(torch.float32), np.float32)
# name -> (starting dtype, the conversions in turn; the module is used after each)
CONVERSIONS: dict[str, tuple[Any, list[tuple[Callable, Callable, Any]]]] = {
    "double": (np.float32, [DOUBLE]),
    "float": (np.float64, [FLOAT]),
    "to_float64": (np.float32, [TO_F64]),
    "to_float32": (np.float64, [TO_F32]),
    "float_double_float": (np.float32, [DOUBLE, FLOAT]),
}
TOL = {np.dtype(np.float64): 1e-9, np.dtype(np.float32): 1e-4}
I, H, T, B = 3, 4, 4, 2
RNN_KINDS = {"rnn_tanh": ("RNN", {"nonlinearity": "tanh"}), "rnn_relu": ("RNN", {"nonlinearity": "relu"}),
             "lstm": ("LSTM", {}), "gru": ("GRU", {})}
CELL_KINDS = {"rnn_tanh": ("RNNCell", {"nonlinearity": "tanh"}), "rnn_relu": ("RNNCell", {"nonlinearity": "relu"}),
              "lstm": ("LSTMCell", {}), "gru": ("GRUCell", {})}


class TorchCharLM(torch.nn.Module):
    """minirnn.charlm.CharLM in torch, with the same parameter names."""

    def __init__(self, vocab: int, embed: int, hidden: int, layers: int):
        super().__init__()
        self.embed = torch.nn.Embedding(vocab, embed)
        self.lstm = torch.nn.LSTM(embed, hidden, num_layers=layers)
        self.head = torch.nn.Linear(hidden, vocab)

    def forward(self, ids: Any, state: Any = None) -> Any:
        out, state = self.lstm(self.embed(ids), state)
        return self.head(out), state


# ---------------------------------------------------------------------------- the pairs
def _pair(kind: str, dtype: Any) -> tuple[Any, Any]:
    """(our module in ``dtype``, torch's with the same weights and dtype)."""
    if kind.startswith(("RNN:", "LSTM:", "GRU:")):
        name, rest = kind.split(":")
        mode, layers, bidirectional = rest.split("/")
        kwargs = dict(RNN_KINDS[mode][1], num_layers=int(layers), bidirectional=bidirectional == "bi")
        ours = getattr(nn, name)(I, H, dtype=dtype, **kwargs)
        theirs = getattr(torch.nn, name)(I, H, **kwargs)
    elif kind.startswith("Cell:"):
        mode, fused = kind.split(":")[1].split("/")
        name, kwargs = CELL_KINDS[mode]
        ours = getattr(nn, name)(I, H, dtype=dtype, fused=fused == "fused", **kwargs)
        theirs = getattr(torch.nn, name)(I, H, **kwargs)
    elif kind == "Linear":
        ours, theirs = nn.Linear(I, H, dtype=dtype), torch.nn.Linear(I, H)
    elif kind == "Embedding":
        ours, theirs = nn.Embedding(7, H, dtype=dtype), torch.nn.Embedding(7, H)
    elif kind == "Sequential":
        ours = nn.Sequential(nn.Linear(I, 5, dtype=dtype), nn.GRUCell(5, H, dtype=dtype), nn.Linear(H, 2, dtype=dtype))
        theirs = torch.nn.Sequential(torch.nn.Linear(I, 5), torch.nn.GRUCell(5, H), torch.nn.Linear(H, 2))
    else:
        assert kind == "CharLM"
        ours, theirs = CharLM(7, embed_dim=3, hidden_size=H, num_layers=2, dtype=dtype), TorchCharLM(7, 3, H, 2)
    theirs.to(torch.float64 if np.dtype(dtype) == np.float64 else torch.float32)
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    return ours, theirs


def _run(kind: str, module: Any, lib: str, inputs: list[np.ndarray]) -> tuple[list[Any], list[Any]]:
    """Forward ``inputs`` through ``module`` (minirnn's or torch's): (outputs, differentiable inputs)."""
    if lib == "minirnn":
        args = [Tensor(a, requires_grad=True) if a.dtype.kind == "f" else a for a in inputs]
    else:
        args = [torch.tensor(a, requires_grad=True) if a.dtype.kind == "f" else torch.from_numpy(a) for a in inputs]
    x = args[0]
    if kind.startswith(("RNN:", "LSTM:", "GRU:")):  # twice: zero state, then the first call's state
        out1, state = module(x)
        out2, state2 = module(x, state)
        states = list(state) + list(state2) if kind.startswith("LSTM") else [state, state2]
        outputs = [out1, out2] + states
    elif kind.startswith("Cell:"):  # two steps: zero state, then the first step's state
        s1 = module(x[0])
        s2 = module(x[1], s1)
        outputs = list(s1) + list(s2) if isinstance(s1, tuple) else [s1, s2]
    elif kind == "CharLM":
        logits, (h, c) = module(x)
        outputs = [logits, h, c]
    else:
        outputs = [module(x)]
    return outputs, [a for a in args if a.dtype in (np.float32, np.float64, torch.float32, torch.float64)]


def _inputs(kind: str, dtype: Any, rng: np.random.Generator) -> list[np.ndarray]:
    if kind in ("Embedding", "CharLM"):
        return [rng.integers(0, 7, size=(T, B))]
    shape = (2, B, I) if kind.startswith("Cell:") else (B, I) if kind in ("Linear", "Sequential") else (T, B, I)
    return [rng.standard_normal(shape).astype(dtype)]


def _compare(kind: str, ours: Any, theirs: Any, dtype: Any, rng: np.random.Generator) -> None:
    """Forward + backward of both; outputs, parameter and input gradients equal to the tolerance."""
    dt = np.dtype(dtype)
    tol = TOL[dt]
    inputs = _inputs(kind, dt, rng)
    out_ours, in_ours = _run(kind, ours, "minirnn", inputs)
    out_theirs, in_theirs = _run(kind, theirs, "torch", inputs)
    assert len(out_ours) == len(out_theirs)
    weights = []
    for k, (o, t) in enumerate(zip(out_ours, out_theirs)):
        assert o.data.dtype == dt, f"output {k}: dtype {o.data.dtype}, expected {dt}"
        np.testing.assert_allclose(o.data, t.detach().numpy(), atol=tol, rtol=tol, err_msg=f"output {k}")
        weights.append(rng.standard_normal(o.shape).astype(dt))
    for o, w in zip(out_ours, weights):
        o.backward(w, retain_graph=True)
    torch.autograd.backward(out_theirs, [torch.from_numpy(w) for w in weights])
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        assert p.data.dtype == dt and p.grad is not None and p.grad.dtype == dt, name
        np.testing.assert_allclose(p.grad, theirs_params[name].grad.numpy(), atol=tol, rtol=tol, err_msg=name)
    for k, (a, b) in enumerate(zip(in_ours, in_theirs)):
        assert a.grad.dtype == dt
        np.testing.assert_allclose(a.grad, b.grad.numpy(), atol=tol, rtol=tol, err_msg=f"input {k} grad")


MODULE_KINDS = ([f"{RNN_KINDS[m][0]}:{m}/{layers}" for m in RNN_KINDS for layers in ("1/uni", "2/bi")]
                + [f"Cell:{m}/{f}" for m in CELL_KINDS for f in ("fused", "composed")]
                + ["Linear", "Embedding", "Sequential", "CharLM"])


@pytest.mark.parametrize("conversion", list(CONVERSIONS))
@pytest.mark.parametrize("kind", MODULE_KINDS)
def test_conversion_forward_backward_matches_torch(kind: str, conversion: str) -> None:
    start, steps = CONVERSIONS[conversion]
    ours, theirs = _pair(kind, start)
    rng = np.random.default_rng(len(kind))
    for convert, convert_torch, result in steps:
        assert convert(ours) is ours
        convert_torch(theirs)
        if hasattr(ours, "mode"):  # the recurrent modules and cells report their (new) dtype
            assert ours.dtype == result
        ours.zero_grad()
        theirs.zero_grad()
        _compare(kind, ours, theirs, result, rng)


@pytest.mark.parametrize("kind", [k for k in MODULE_KINDS if k.startswith(("RNN", "LSTM", "GRU", "Cell"))])
def test_old_dtype_refused_after_conversion(kind: str) -> None:
    """After ``.double()`` a float32 input is refused by the module's own check, naming the new dtype
    (before: accepted by the check and refused, misleadingly, deeper down)."""
    ours, _ = _pair(kind, np.float32)
    ours.double()
    x = np.zeros((B, I) if kind.startswith("Cell") else (T, B, I), np.float32)
    with pytest.raises(TypeError, match=r"input: expected dtype float64 \(the module's parameters\), got float32"):
        ours(x)


def test_grad_and_dtype_follow_conversion_after_backward() -> None:
    """A conversion between backward and step converts the gradients too; the next forward works."""
    m = nn.LSTM(I, H)
    out, _ = m(np.ones((T, B, I), np.float32))
    out.sum().backward()
    m.double()
    assert m.dtype == np.float64 and all(p.grad.dtype == np.float64 for p in m.parameters())
    assert m(np.ones((T, B, I)))[0].dtype == np.float64


# ---------------------------------------------------------------------------- optimizers
OPTIMIZERS = {
    "Adam": (minirnn.optim.Adam, torch.optim.Adam, dict(lr=0.05, amsgrad=True)),
    "SGD": (minirnn.optim.SGD, torch.optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True)),
    "RMSprop": (minirnn.optim.RMSprop, torch.optim.RMSprop, dict(lr=0.01, momentum=0.5, centered=True)),
}


def _sync_after_conversion(ours: Any, opt_ours: Any, theirs: Any, opt_theirs: Any, dtype: Any) -> None:
    """Start torch's model and optimizer from exactly ours after a conversion (so the steps after
    it are compared at the new dtype's tolerance, not the old one's rounding), the state converted
    as 'the state follows its parameter' means. Torch itself leaves the state as it was: Adam and
    RMSprop then fail, SGD computes its momentum in the old dtype."""
    theirs.load_state_dict({k: torch.from_numpy(v) for k, v in ours.state_dict().items()})
    theirs_params = dict(theirs.named_parameters())
    for name, p in ours.named_parameters():
        state = opt_theirs.state[theirs_params[name]]
        for key, value in opt_ours.state[id(p)].items():
            if isinstance(value, np.ndarray):
                state[key] = torch.from_numpy(value.astype(dtype))


@pytest.mark.parametrize("conversion", list(CONVERSIONS))
@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_step_after_conversion_matches_torch(name: str, conversion: str) -> None:
    start, conversions = CONVERSIONS[conversion]
    ours_cls, torch_cls, options = OPTIMIZERS[name]
    ours, theirs = _pair("CharLM", start)
    opt_ours, opt_theirs = ours_cls(ours.parameters(), **options), torch_cls(theirs.parameters(), **options)
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 7, size=(T, B))

    def step(dtype: Any) -> None:
        w = rng.standard_normal((T, B, 7)).astype(dtype)
        opt_ours.zero_grad()
        opt_theirs.zero_grad()
        ours(ids)[0].backward(w)
        theirs(torch.from_numpy(ids))[0].backward(torch.from_numpy(w))
        opt_ours.step()
        opt_theirs.step()
        tol = 10 * TOL[np.dtype(dtype)]
        theirs_params = dict(theirs.named_parameters())
        for pname, p in ours.named_parameters():
            assert p.data.dtype == dtype, pname
            np.testing.assert_allclose(p.data, theirs_params[pname].detach().numpy(), atol=tol, rtol=tol,
                                       err_msg=pname)
            for key, value in opt_ours.state[id(p)].items():
                if isinstance(value, np.ndarray):
                    assert value.dtype == dtype, f"{pname}: state {key!r} is {value.dtype}, expected {dtype}"

    step(start)
    step(start)
    for convert, convert_torch, result in conversions:
        convert(ours)
        convert_torch(theirs)
        _sync_after_conversion(ours, opt_ours, theirs, opt_theirs, result)
        step(result)
        step(result)
    # the state saved after the conversion is in the new dtype and loads back
    saved = opt_ours.state_dict()
    assert all(v.dtype == result for s in saved["state"].values() for v in s.values() if isinstance(v, np.ndarray))
    opt_ours.load_state_dict(saved)


# ---------------------------------------------------------------------------- item 10
def _be(a: np.ndarray) -> np.ndarray:
    """``a`` with the same values in non-native byte order (big-endian on a little-endian machine)."""
    return a.astype(a.dtype.newbyteorder("S"))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kind", [k for k in MODULE_KINDS if k.startswith(("RNN", "LSTM", "GRU", "Cell"))]
                         + ["Linear", "Sequential"])
def test_non_native_byte_order_input_is_accepted(kind: str, dtype: Any) -> None:
    """Big-endian (non-native) input, as an ndarray or a Tensor, gives the native input's results."""
    ours, _ = _pair(kind, dtype)
    rng = np.random.default_rng(3)
    x = _inputs(kind, dtype, rng)[0]
    assert not _be(x).dtype.isnative and np.array_equal(_be(x), x)

    def run(x: np.ndarray, wrap: bool) -> list[np.ndarray]:
        arg = Tensor(x) if wrap or kind in ("Linear", "Sequential") else x
        if kind.startswith("Cell"):
            first = ours(arg[0] if wrap else x[0])
            hx = tuple(_be(s.data) for s in first) if isinstance(first, tuple) else _be(first.data)
            out = ours(arg[1] if wrap else x[1], hx)  # a big-endian state too
            return [s.data for s in (out if isinstance(out, tuple) else (out,))]
        if kind.startswith(("RNN", "LSTM", "GRU")):
            out, state = ours(arg)
            hx = tuple(_be(s.data) for s in state) if isinstance(state, tuple) else _be(state.data)
            out2, _ = ours(arg, hx)
            return [out.data, out2.data]
        return [ours(arg).data]

    for wrap in (False, True):
        for got, want in zip(run(_be(x), wrap), run(x, wrap)):
            assert got.dtype == dtype and got.dtype.isnative
            np.testing.assert_array_equal(got, want)


def test_non_native_tensor_that_requires_grad_is_refused_clearly() -> None:
    x = Tensor(_be(np.ones((T, B, I), np.float32)))
    x.requires_grad = True  # (requires_grad_ refuses it; forced here)
    with pytest.raises(TypeError, match="byte order"):
        nn.LSTM(I, H)(x)


@pytest.mark.parametrize("bidirectional", [False, True])
@pytest.mark.parametrize("name", ["RNN", "LSTM", "GRU"])
def test_unbatched_zero_length_input(name: str, bidirectional: bool) -> None:
    """Unbatched (0, I): torch refuses every T = 0 ("Expected sequence length to be larger than 0");
    minirnn documents T = 0 for batched input (empty output, h_n = h0) and unbatched input now
    gives the same: output (0, D*H), h_n = hx (L*D, H), gradients flowing from h_n to hx."""
    m = getattr(nn, name)(I, H, num_layers=2, bidirectional=bidirectional, dtype=np.float64)
    D = 2 if bidirectional else 1
    with pytest.raises(RuntimeError, match="sequence length"):
        getattr(torch.nn, name)(I, H, num_layers=2, bidirectional=bidirectional)(torch.zeros(0, I))
    out, state = m(np.zeros((0, I)))
    states = state if name == "LSTM" else (state,)
    assert out.shape == (0, D * H) and all(s.shape == (2 * D, H) and not s.data.any() for s in states)
    rng = np.random.default_rng(0)
    hx = [Tensor(rng.standard_normal((2 * D, H)), requires_grad=True) for _ in states]
    out, state = m(np.zeros((0, I)), tuple(hx) if name == "LSTM" else hx[0])
    states = state if name == "LSTM" else (state,)
    assert out.shape == (0, D * H)
    for s, h in zip(states, hx):
        np.testing.assert_array_equal(s.data, h.data)
        s.backward(np.full(s.shape, 2.0), retain_graph=True)
        np.testing.assert_array_equal(h.grad, np.full(h.shape, 2.0))


@pytest.mark.parametrize("fused", [True, False])
@pytest.mark.parametrize("name", ["RNNCell", "LSTMCell", "GRUCell"])
def test_cell_empty_batch_matches_torch(name: str, fused: bool) -> None:
    """A batch of 0, (0, I): torch returns (0, H) states; so does minirnn, and backward runs."""
    theirs = getattr(torch.nn, name)(I, H)(torch.zeros(0, I))
    m = getattr(nn, name)(I, H, fused=fused)
    ours = m(Tensor(np.zeros((0, I), np.float32), requires_grad=True))
    pairs = zip(ours, theirs) if isinstance(ours, tuple) else [(ours, theirs)]
    for o, t in pairs:
        assert o.shape == tuple(t.shape) == (0, H) and o.dtype == np.float32
        o.backward(np.zeros(o.shape, np.float32), retain_graph=True)
    assert all(p.grad is None or not p.grad.any() for p in m.parameters())


@pytest.mark.parametrize("name", list(OPTIMIZERS))
def test_optimizer_state_dict_right_after_conversion_has_the_new_dtype(name: str) -> None:
    """A checkpoint taken between the conversion and the next step holds the state as its parameter."""
    m = nn.Linear(I, H)
    opt = OPTIMIZERS[name][0](m.parameters(), **OPTIMIZERS[name][2])
    m(Tensor(np.ones((B, I), np.float32))).sum().backward()
    opt.step()
    m.double()
    arrays = [v for s in opt.state_dict()["state"].values() for v in s.values() if isinstance(v, np.ndarray)]
    assert arrays and all(a.dtype == np.float64 for a in arrays)
