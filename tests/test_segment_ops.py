"""The graph ops gather_rows and segment_sum: gradcheck, torch parity (index_select, index_add_,
scatter_add), message passing composed from them, and bad input."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import minirnn
from minirnn import Tensor, gather_rows, segment_sum
from minirnn.ops.segment import RANKS, stable_order

try:  # the gradchecks run without torch; only the comparisons with it skip
    import torch
except ImportError:
    torch = None
from torch_oracle import check_against_torch  # noqa: E402

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")


def _graph(rng: np.random.Generator, nodes: int, edges: int) -> tuple[np.ndarray, np.ndarray]:
    """Random directed edges src -> dst (repeats and self-loops included: they must add up)."""
    return rng.integers(0, nodes, edges), rng.integers(0, nodes, edges)


@settings(max_examples=20, deadline=None)
@given(nodes=st.integers(1, 6), edges=st.integers(0, 12), feature=st.sampled_from([(), (3,), (2, 2)]),
       seed=st.integers(0, 100))
def test_gradcheck(nodes: int, edges: int, feature: tuple[int, ...], seed: int) -> None:
    rng = np.random.default_rng(seed)
    src, dst = _graph(rng, nodes, edges)
    x = Tensor(rng.standard_normal((nodes, *feature)), requires_grad=True)
    e = Tensor(rng.standard_normal((edges, *feature)), requires_grad=True)
    assert minirnn.gradcheck(lambda a: gather_rows(a, src), [x])
    assert minirnn.gradcheck(lambda a: segment_sum(a, dst, nodes + 1), [e])  # the last segment is empty
    assert minirnn.gradcheck(lambda a: segment_sum(gather_rows(a, src) * 2.0, dst, nodes), [x])


@pytest.mark.parametrize("edges", [40, 400])  # 400: segments longer than RANKS rows (hubs)
def test_values_against_a_loop(edges: int) -> None:
    rng = np.random.default_rng(0)
    src, dst = _graph(rng, 5, edges)
    x = rng.standard_normal((5, 3))
    np.testing.assert_array_equal(gather_rows(Tensor(x), src).data, np.stack([x[s] for s in src]))
    expected = np.zeros((7, 3))
    for e, d in enumerate(dst):
        expected[d] += x[src[e]]
    np.testing.assert_allclose(segment_sum(Tensor(x[src]), dst, 7).data, expected, rtol=1e-12, atol=1e-12)
    assert np.bincount(dst).max() > RANKS or edges < 100
    assert segment_sum(Tensor(np.zeros((0, 3))), np.zeros(0, dtype=np.int64), 4).data.tolist() == [[0.0] * 3] * 4


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_dtype_is_kept(dtype: type) -> None:
    x = Tensor(np.ones((3, 2), dtype=dtype), requires_grad=True)
    y = segment_sum(gather_rows(x, [0, 0, 2]), np.array([1, 1, 0]), 2)
    y.sum().backward()
    assert y.dtype == dtype and x.grad.dtype == dtype
    np.testing.assert_array_equal(x.grad, [[2, 2], [0, 0], [1, 1]])


@needs_torch
def test_gather_rows_matches_index_select() -> None:
    rng = np.random.default_rng(1)
    src, _ = _graph(rng, 6, 50)
    check_against_torch(lambda x, i: gather_rows(x, i), lambda x, i: torch.index_select(x, 0, i),
                        [rng.standard_normal((6, 4, 2)), src])


@needs_torch
@pytest.mark.parametrize("peer", ["index_add_", "scatter_add"])
def test_segment_sum_matches_torch(peer: str) -> None:
    rng = np.random.default_rng(2)
    _, dst = _graph(rng, 8, 300)

    def theirs(x, i):
        if peer == "index_add_":
            return torch.zeros(9, 5, dtype=x.dtype).index_add_(0, i, x)
        return torch.zeros(9, 5, dtype=x.dtype).scatter_add(0, i[:, None].expand(-1, 5), x)

    check_against_torch(lambda x, i: segment_sum(x, i, 9), theirs, [rng.standard_normal((300, 5)), dst],
                        atol=1e-12, rtol=1e-10)


@needs_torch
def test_message_passing_round_matches_torch() -> None:
    """m = A h W^T as gather -> linear -> segment sum, against torch over thousands of edges."""
    rng = np.random.default_rng(3)
    src, dst = _graph(rng, 500, 4000)

    def ours(h, w, s, d):
        return minirnn.ops.tanh(segment_sum(minirnn.functional.linear(gather_rows(h, s), w), d, 500))

    def theirs(h, w, s, d):
        return torch.tanh(torch.zeros(500, 8, dtype=h.dtype).index_add_(0, d, h[s] @ w.T))

    check_against_torch(ours, theirs, [rng.standard_normal((500, 8)), rng.standard_normal((8, 8)), src, dst],
                        atol=1e-10, rtol=1e-8)


@pytest.mark.parametrize("call, error, message", [
    (lambda: gather_rows(Tensor(np.ones((3, 2))), [0, 3]), IndexError, r"index in \[0, 3\)"),
    (lambda: gather_rows(Tensor(np.ones((3, 2))), [-1]), IndexError, r"index in \[0, 3\)"),
    (lambda: gather_rows(Tensor(np.ones((3, 2))), [[0]]), TypeError, "1-D integer array"),
    (lambda: gather_rows(Tensor(np.ones((3, 2))), [0.5]), TypeError, "1-D integer array"),
    (lambda: gather_rows(np.ones((3, 2)), [0]), TypeError, "minirnn.Tensor"),
    (lambda: gather_rows(Tensor(np.float64(1.0)), [0]), ValueError, "at least 1 dimension"),
    (lambda: segment_sum(Tensor(np.ones((2, 2))), [0, 1, 1], 2), ValueError, r"shape \(3, ...\)"),
    (lambda: segment_sum(Tensor(np.ones((2, 2))), [0, 2], 2), IndexError, "segment_ids in"),
    (lambda: segment_sum(Tensor(np.ones((2, 2))), [0, 1], -1), ValueError, "num_segments"),
    (lambda: segment_sum(Tensor(np.ones((2, 2))), [0, 1], 2.0), ValueError, "num_segments"),
])
def test_bad_input_raises_a_clear_error(call, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()


@pytest.mark.parametrize("num_segments", [5, 1 << 16, (1 << 16) + 1, 1 << 20])
def test_stable_order_is_numpys_stable_argsort(num_segments: int) -> None:
    ids = np.random.default_rng(4).integers(0, num_segments, 3000)
    ids[:10] = num_segments - 1  # the largest id, repeated: ties keep their order
    np.testing.assert_array_equal(stable_order(ids, num_segments), np.argsort(ids, kind="stable"))


def test_many_segments() -> None:
    """More segments than 2^16 (the two-pass sort) give the same sums as np.add.at."""
    rng = np.random.default_rng(5)
    dst = rng.integers(0, 70000, 5000)
    x = rng.standard_normal((5000, 2))
    expected = np.zeros((70000, 2))
    np.add.at(expected, dst, x)
    np.testing.assert_allclose(segment_sum(Tensor(x), dst, 70000).data, expected, rtol=1e-12, atol=1e-12)
