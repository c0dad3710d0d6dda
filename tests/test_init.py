"""init: orthogonality, xavier/uniform/normal statistics with fixed seeds, gains, validation."""
from __future__ import annotations

import math
import threading

import numpy as np
import pytest

import minirnn
from minirnn import init, nn
from minirnn.nn import Parameter


@pytest.mark.parametrize("shape", [(6, 6), (4, 10), (10, 4), (3, 2, 4)])
@pytest.mark.parametrize("gain", [1.0, 0.5])
def test_orthogonal(shape: tuple[int, ...], gain: float) -> None:
    p = Parameter(np.empty(shape, dtype=np.float64))
    assert init.orthogonal_(p, gain, generator=np.random.default_rng(0)) is p
    w = p.data.reshape(shape[0], -1)
    rows, cols = w.shape
    gram = w @ w.T if rows <= cols else w.T @ w
    np.testing.assert_allclose(gram, gain ** 2 * np.eye(min(rows, cols)), atol=1e-12)


def test_orthogonal_is_haar_distributed() -> None:
    """With the sign correction diag(R) > 0, E[W] = 0; without it the diagonal would be biased."""
    rng = np.random.default_rng(1)
    mean = sum(init.orthogonal_(np.empty((3, 3)), generator=rng) for _ in range(2000)) / 2000
    assert np.abs(mean).max() < 0.06


def test_orthogonal_float32_matches_float64_draw() -> None:
    a = init.orthogonal_(np.empty((5, 5), np.float32), generator=np.random.default_rng(3))
    b = init.orthogonal_(np.empty((5, 5)), generator=np.random.default_rng(3))
    assert a.dtype == np.float32
    np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_xavier_uniform_bounds_and_std() -> None:
    w = init.xavier_uniform_(np.empty((200, 300)), gain=2.0, generator=np.random.default_rng(0))
    bound = 2.0 * math.sqrt(6 / 500)
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.99 * bound
    assert w.std() == pytest.approx(bound / math.sqrt(3), rel=0.01)  # std of U(-a, a) is a / sqrt(3)
    assert abs(w.mean()) < 0.01 * bound


def test_xavier_normal_std_with_receptive_field() -> None:
    w = init.xavier_normal_(np.empty((40, 30, 5)), generator=np.random.default_rng(0))
    assert w.std() == pytest.approx(math.sqrt(2 / (30 * 5 + 40 * 5)), rel=0.02)


def test_uniform_normal_constant() -> None:
    rng = np.random.default_rng(0)
    u = init.uniform_(np.empty(100000), -2.0, 3.0, generator=rng)
    assert u.min() >= -2 and u.max() < 3 and u.mean() == pytest.approx(0.5, abs=0.02)
    n = init.normal_(np.empty(100000), 1.5, 0.5, generator=rng)
    assert n.mean() == pytest.approx(1.5, abs=0.01) and n.std() == pytest.approx(0.5, rel=0.01)
    t = minirnn.Tensor(np.empty((2, 3), np.float32))
    assert (init.zeros_(t).data == 0).all() and (init.ones_(t).data == 1).all()
    assert (init.constant_(t, 2.5).data == 2.5).all() and t.data.dtype == np.float32


def test_manual_seed_makes_default_draws_reproducible() -> None:
    minirnn.manual_seed(42)
    a = init.normal_(np.empty(5))
    minirnn.manual_seed(42)
    b = init.normal_(np.empty(5))
    np.testing.assert_array_equal(a, b)


def test_calculate_gain_matches_torch() -> None:
    torch = pytest.importorskip("torch")
    for name in ("linear", "sigmoid", "tanh", "relu", "selu", "conv1d"):
        assert init.calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name), rel=1e-15)
    assert init.calculate_gain("leaky_relu", 0.2) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", 0.2), rel=1e-15)


@pytest.mark.parametrize("call,error,match", [
    (lambda: init.calculate_gain("swish"), ValueError, "nonlinearity"),
    (lambda: init.xavier_uniform_(np.empty(5)), ValueError, "at least 2 dimensions"),
    (lambda: init.orthogonal_(np.empty(5)), ValueError, "at least 2 dimensions"),
    (lambda: init.uniform_(np.empty(5), 2.0, 1.0), ValueError, "a <= b"),
    (lambda: init.normal_(np.empty(5), std=-1.0), ValueError, "std >= 0"),
    (lambda: init.zeros_(np.empty(5, dtype=np.int64)), TypeError, "got dtype int64"),
    (lambda: init.ones_([1.0, 2.0]), TypeError, "got list"),
    (lambda: init.normal_(np.empty(2), generator=np.random.RandomState(0)), TypeError, "Generator"),
    (lambda: minirnn.manual_seed(-1), TypeError, "seed"),
])
def test_bad_arguments(call, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()


def _weights(module) -> list:
    return [p.data.copy() for p in module.parameters()]


def test_threads_that_seed_themselves_build_the_same_weights_however_they_interleave() -> None:
    """Each thread's manual_seed seeds its own default generator (issue 24, item 7): two threads
    building layers step by step in lockstep get what each gets alone."""
    def build(seed: int, barrier: threading.Barrier | None = None) -> list:
        minirnn.manual_seed(seed)
        layers = []
        for size in (3, 5, 7):  # several draws each, the threads alternating between them
            if barrier is not None:
                barrier.wait(10)
            layers += _weights(nn.LSTM(size, 4))
        return layers

    alone = {seed: build(seed) for seed in (1, 2)}
    barrier, together = threading.Barrier(2), {}
    threads = [threading.Thread(target=lambda s=s: together.__setitem__(s, build(s, barrier))) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    for seed in (1, 2):
        assert len(together[seed]) == len(alone[seed])
        for a, b in zip(together[seed], alone[seed]):
            np.testing.assert_array_equal(a, b)


def test_a_thread_that_never_seeds_draws_from_the_main_threads_generator() -> None:
    minirnn.manual_seed(5)
    expected = _weights(nn.Linear(3, 2))
    minirnn.manual_seed(5)
    result = {}
    worker = threading.Thread(target=lambda: result.setdefault("w", _weights(nn.Linear(3, 2))))
    worker.start()
    worker.join(30)
    for a, b in zip(result["w"], expected):
        np.testing.assert_array_equal(a, b)
