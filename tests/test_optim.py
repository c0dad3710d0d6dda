"""Optimizers and gradient clipping: trajectories against torch.optim, state round trips, validation."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest

from minirnn import optim
from minirnn.nn import Parameter

SHAPES = [(3, 4), (5,)]


def _grad_fn(t: int) -> Callable[[np.ndarray], np.ndarray]:
    """A gradient that depends on the current parameters, so the whole trajectory is compared."""
    rng = np.random.default_rng(100 + t)
    return lambda p: np.sin(3 * p) + p ** 3 + rng.standard_normal(p.shape)


def _initial(seed: int = 0) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s) for s in SHAPES]


def _run_minirnn(cls: type, kwargs: dict[str, Any], steps: int = 20) -> list[np.ndarray]:
    params = [Parameter(a.copy()) for a in _initial()]
    opt = cls(params, **kwargs)
    for t in range(steps):
        opt.zero_grad()
        for i, p in enumerate(params):
            p.grad = _grad_fn(t * 10 + i)(p.data)
        opt.step()
    return [p.data for p in params]


def _run_torch(name: str, kwargs: dict[str, Any], steps: int = 20) -> list[np.ndarray]:
    torch = pytest.importorskip("torch")
    params = [torch.tensor(a, requires_grad=True) for a in _initial()]
    opt = getattr(torch.optim, name)(params, foreach=False, **kwargs)
    for t in range(steps):
        opt.zero_grad()
        for i, p in enumerate(params):
            p.grad = torch.from_numpy(_grad_fn(t * 10 + i)(p.detach().numpy()))
        opt.step()
    return [p.detach().numpy() for p in params]


CASES = [
    ("SGD", dict(lr=0.05)),
    ("SGD", dict(lr=0.05, weight_decay=0.1)),
    ("SGD", dict(lr=0.05, momentum=0.9)),
    ("SGD", dict(lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01)),
    ("SGD", dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    ("Adam", dict(lr=0.01)),
    ("Adam", dict(lr=0.01, betas=(0.8, 0.95), eps=1e-6, weight_decay=0.1)),
    ("Adam", dict(lr=0.01, weight_decay=0.05, amsgrad=True)),
    ("RMSprop", dict(lr=0.01)),
    ("RMSprop", dict(lr=0.01, alpha=0.9, centered=True, momentum=0.8, weight_decay=0.02)),
    ("RMSprop", dict(lr=0.005, momentum=0.5)),
    ("RMSprop", dict(lr=0.01, centered=True, eps=1e-4)),
]


@pytest.mark.parametrize("name,kwargs", CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_trajectory_matches_torch(name: str, kwargs: dict[str, Any]) -> None:
    expected = _run_torch(name, kwargs)
    got = _run_minirnn(getattr(optim, name), kwargs)
    start = _initial()
    for e, g, s in zip(expected, got, start):
        assert not np.allclose(e, s)  # the parameters really moved
        np.testing.assert_allclose(g, e, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("cls", [optim.SGD, optim.Adam, optim.RMSprop])
def test_step_keeps_dtype_and_array(cls: type) -> None:
    p = Parameter(np.ones((2, 3), dtype=np.float32))
    array = p.data
    opt = cls([p], lr=0.1)
    p.grad = np.full((2, 3), 0.5, dtype=np.float32)
    opt.step()
    assert p.data is array and p.data.dtype == np.float32
    assert (p.data < 1).all()


def test_skips_params_without_grad_and_zero_grad() -> None:
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    opt = optim.SGD([a, b], lr=1.0)
    a.grad = np.ones(2)
    opt.step()
    np.testing.assert_array_equal(a.data, [0, 0])
    np.testing.assert_array_equal(b.data, [1, 1])
    opt.zero_grad()
    assert a.grad is None


def test_param_groups_override_defaults() -> None:
    a, b = Parameter(np.ones(2)), Parameter(np.ones(2))
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 0.5}], lr=0.1)
    a.grad, b.grad = np.ones(2), np.ones(2)
    opt.step()
    np.testing.assert_allclose(a.data, 0.9)
    np.testing.assert_allclose(b.data, 0.5)


@pytest.mark.parametrize("cls,kwargs", [(optim.Adam, dict(lr=0.01, amsgrad=True)),
                                        (optim.RMSprop, dict(centered=True, momentum=0.9)),
                                        (optim.SGD, dict(lr=0.1, momentum=0.9))])
def test_state_dict_round_trip_continues_identically(cls: type, kwargs: dict[str, Any]) -> None:
    def make() -> tuple[list[Parameter], Any]:
        ps = [Parameter(a.copy()) for a in _initial()]
        return ps, cls(ps, **kwargs)

    def step(ps: list[Parameter], opt: Any, t: int) -> None:
        for i, p in enumerate(ps):
            p.grad = _grad_fn(t * 10 + i)(p.data)
        opt.step()

    ps1, opt1 = make()
    for t in range(3):
        step(ps1, opt1, t)
    saved, params_saved = opt1.state_dict(), [p.data.copy() for p in ps1]
    ps2, opt2 = make()
    for p, v in zip(ps2, params_saved):
        p.data[...] = v
    opt2.load_state_dict(saved)
    for t in range(3, 6):
        step(ps1, opt1, t)
        step(ps2, opt2, t)
    for p1, p2 in zip(ps1, ps2):
        np.testing.assert_array_equal(p1.data, p2.data)


def test_load_state_dict_rejects_wrong_shapes() -> None:
    p = Parameter(np.ones(3))
    opt = optim.Adam([p])
    p.grad = np.ones(3)
    opt.step()
    state = opt.state_dict()
    other = optim.Adam([Parameter(np.ones(4))])
    with pytest.raises(ValueError, match="expected shape"):
        other.load_state_dict(state)
    with pytest.raises(ValueError, match="param groups of sizes"):
        optim.Adam([Parameter(np.ones(3)), Parameter(np.ones(3))]).load_state_dict(state)


@pytest.mark.parametrize("cls,kwargs,word", [
    (optim.SGD, dict(lr=-0.1), "lr"),
    (optim.SGD, dict(lr=0.1, momentum=-1), "momentum"),
    (optim.SGD, dict(lr=0.1, nesterov=True), "Nesterov"),
    (optim.Adam, dict(betas=(0.9, 1.0)), "beta2"),
    (optim.Adam, dict(eps=-1e-8), "eps"),
    (optim.Adam, dict(weight_decay=-1), "weight_decay"),
    (optim.RMSprop, dict(alpha=1.5), "alpha"),
    (optim.RMSprop, dict(lr=-1), "lr"),
])
def test_invalid_hyper_parameters(cls: type, kwargs: dict[str, Any], word: str) -> None:
    with pytest.raises(ValueError, match=word):
        cls([Parameter(np.ones(2))], **kwargs)


def test_invalid_params() -> None:
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(TypeError, match="expected a Tensor"):
        optim.SGD([np.ones(2)], lr=0.1)
    p = Parameter(np.ones(2))
    with pytest.raises(ValueError, match="more than one place"):
        optim.SGD([p, p], lr=0.1)
    with pytest.raises(ValueError, match="unknown options"):
        optim.SGD([{"params": [p], "betas": (0.9, 0.9)}], lr=0.1)
    with pytest.raises(TypeError, match="expected a number"):
        optim.SGD([p], lr="0.1")


# ---------------------------------------------------------------------------- clipping
def _grads_pair(seed: int) -> tuple[list[Parameter], list[Any]]:
    torch = pytest.importorskip("torch")
    rng = np.random.default_rng(seed)
    grads = [rng.standard_normal(s) * 3 for s in SHAPES]
    ours = [Parameter(np.zeros(s)) for s in SHAPES]
    theirs = [torch.zeros(s, dtype=torch.float64, requires_grad=True) for s in SHAPES]
    for p, q, g in zip(ours, theirs, grads):
        p.grad, q.grad = g.copy(), torch.from_numpy(g.copy())
    return ours, theirs


@pytest.mark.parametrize("max_norm,norm_type", [(1.0, 2.0), (100.0, 2.0), (0.5, 1.0), (2.0, 3.0),
                                                (0.7, float("inf"))])
def test_clip_grad_norm_matches_torch(max_norm: float, norm_type: float) -> None:
    torch = pytest.importorskip("torch")
    ours, theirs = _grads_pair(1)
    total = optim.clip_grad_norm_(ours, max_norm, norm_type)
    expected = torch.nn.utils.clip_grad_norm_(theirs, max_norm, norm_type, foreach=False)
    assert total == pytest.approx(float(expected), rel=1e-12)
    for p, q in zip(ours, theirs):
        np.testing.assert_allclose(p.grad, q.grad.numpy(), rtol=1e-12, atol=1e-14)


def test_clip_grad_norm_scales_to_max_norm() -> None:
    p = Parameter(np.zeros(2))
    p.grad = np.array([3.0, 4.0])
    assert optim.clip_grad_norm_(p, 1.0) == pytest.approx(5.0)
    assert np.linalg.norm(p.grad) == pytest.approx(1.0, rel=1e-5)
    assert optim.clip_grad_norm_([Parameter(np.zeros(2))], 1.0) == 0.0
    with pytest.raises(ValueError, match="max_norm"):
        optim.clip_grad_norm_(p, -1.0)
    p.grad = np.array([np.nan, 1.0])
    with pytest.raises(RuntimeError, match="nan"):
        optim.clip_grad_norm_(p, 1.0, error_if_nonfinite=True)


def test_clip_grad_value_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    ours, theirs = _grads_pair(2)
    optim.clip_grad_value_(ours, 0.8)
    torch.nn.utils.clip_grad_value_(theirs, 0.8, foreach=False)
    for p, q in zip(ours, theirs):
        np.testing.assert_array_equal(p.grad, q.grad.numpy())
    assert max(np.abs(p.grad).max() for p in ours) == 0.8
    with pytest.raises(ValueError, match="clip_value"):
        optim.clip_grad_value_(ours, -1.0)


def test_clip_grad_norm_inf_norm_sees_a_nan_in_any_gradient() -> None:
    """A NaN in a later gradient used to be lost by max() (issue 24, item 2): the norm is NaN,
    error_if_nonfinite=True raises naming it, grad_norm measures without changing anything."""
    p, q = Parameter(np.zeros(2)), Parameter(np.zeros(2))
    p.grad, q.grad = np.array([1.0, 2.0]), np.array([np.nan, 0.0])
    assert np.isnan(optim.clip.grad_norm([p, q], np.inf)) and p.grad.tolist() == [1.0, 2.0]
    with pytest.raises(RuntimeError, match=r"total norm of order inf of the gradients is non-finite \(nan\)"):
        optim.clip_grad_norm_([p, q], 1.0, np.inf, error_if_nonfinite=True)
    q.grad = np.array([np.inf, 0.0])
    with pytest.raises(RuntimeError, match=r"non-finite \(inf\)"):
        optim.clip_grad_norm_([p, q], 1.0, error_if_nonfinite=True)
    with np.errstate(invalid="ignore"):
        assert np.isinf(optim.clip_grad_norm_([p, q], 1.0))  # the default clips anyway, as torch does
    p.grad = np.array([1.0, 2.0])
    assert optim.clip.grad_norm([p], 2.0) == pytest.approx(np.sqrt(5)) and optim.clip.grad_norm([]) == 0.0
