"""minirnn.profile: call counts, times and saved-array bytes per op kind."""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest

import minirnn
from minirnn import autograd, ops
from minirnn.autograd import Context, Function
from minirnn.tensor import Tensor

N = 100                 # vectors of N float64: 800 bytes each
VEC = N * 8


class Slow(Function):
    """y = 2 x, taking at least 20 ms forward and 30 ms backward (timings must show up)."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        time.sleep(0.02)
        return 2 * a

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        time.sleep(0.03)
        return 2 * grad


class KeepViews(Function):
    """y = copy of x; saves two views of x and x itself (one buffer)."""

    @staticmethod
    def forward(ctx: Context, a: np.ndarray) -> np.ndarray:
        ctx.save_for_backward(a[::2], a.reshape(2, -1).T, a)
        return a.copy()

    @staticmethod
    def backward(ctx: Context, grad: np.ndarray) -> np.ndarray:
        return grad


def vec(grad: bool = True) -> Tensor:
    return Tensor(np.linspace(0.0, 1.0, N), requires_grad=grad)


@pytest.fixture(autouse=True)
def no_profile_left_open():
    yield
    assert autograd._profiler_hook is None, "a test left a profiler installed"


def test_counts_match_the_ops_run():
    x, c = vec(), vec(grad=False)
    with minirnn.profile() as p:
        y = ops.mul(x, x)              # Mul 1
        y = ops.add(y, c)              # Add 1
        y = ops.mul(y, x)              # Mul 2
        y = ops.add(y, y)              # Add 2
        z = ops.mul(c, c)              # Mul 3: constants only, not recorded
        loss = ops.matmul(y, c)        # MatMul 1
        loss.backward()
    assert set(p.stats) == {"Mul", "Add", "MatMul"}
    assert (p.stats["Mul"].forward_calls, p.stats["Mul"].backward_calls) == (3, 2)
    assert (p.stats["Add"].forward_calls, p.stats["Add"].backward_calls) == (2, 2)
    assert (p.stats["MatMul"].forward_calls, p.stats["MatMul"].backward_calls) == (1, 1)
    assert z.grad_fn is None


def test_times_are_measured():
    x = vec()
    with minirnn.profile() as p:
        Slow.apply(Slow.apply(x)).backward(np.ones(N))
    s = p.stats["Slow"]
    assert (s.forward_calls, s.backward_calls) == (2, 2)
    assert 0.04 <= s.forward_seconds < 1.0
    assert 0.06 <= s.backward_seconds < 1.0


def test_peak_saved_bytes_and_share_per_kind():
    x, w = vec(), vec()
    with minirnn.profile() as p:
        a = ops.mul(x, w)              # saves x, w: 2 vectors
        b = ops.mul(a, x)              # saves a (new) and x (already held): 3 vectors
        loss = ops.matmul(b, w)        # saves b (new) and w (already held): 4 vectors at the peak
        loss.backward()                # frees everything
        c = ops.mul(x, w)              # 2 vectors again: below the peak
    assert p.peak_saved_bytes == 4 * VEC
    assert p.stats["Mul"].saved_bytes_at_peak == 3 * VEC
    assert p.stats["MatMul"].saved_bytes_at_peak == VEC
    assert c.grad_fn is not None


def test_views_count_as_the_buffer_they_share():
    x = Tensor(np.linspace(0.0, 1.0, 2 * N), requires_grad=True)
    with minirnn.profile() as p:
        y = KeepViews.apply(x)
        z = KeepViews.apply(x)         # the same buffer again: not counted twice
    assert p.peak_saved_bytes == 2 * VEC
    assert y.grad_fn is not None and z.grad_fn is not None


def test_dropped_graph_releases_its_bytes():
    x, w = vec(), vec()
    with minirnn.profile() as p:
        y = ops.mul(ops.add(x, w), w)  # saves the sum (new) and w
        del y                          # the graph dies without backward
        z = ops.mul(ops.add(x, w), w)  # a new sum and w: still 2 vectors
    assert p.peak_saved_bytes == 2 * VEC
    assert z.grad_fn is not None


def test_retained_graph_keeps_its_bytes():
    x, w = vec(), vec()
    with minirnn.profile() as p:
        y = ops.matmul(ops.mul(x, w), x)   # x, w, the product: 3 vectors
        y.backward(retain_graph=True)      # kept
        z = ops.mul(ops.add(x, w), w)      # + a new sum: 4 vectors
    assert p.peak_saved_bytes == 4 * VEC
    assert z.grad_fn is not None and y.grad_fn is not None


def test_no_grad_counts_forward_only():
    x = vec()
    with minirnn.profile() as p, minirnn.no_grad():
        ops.mul(x, x)
    assert (p.stats["Mul"].forward_calls, p.stats["Mul"].backward_calls) == (1, 0)
    assert p.peak_saved_bytes == 0


def test_nested_profiles_feed_the_outer_one():
    x, w = vec(), vec()
    with minirnn.profile() as outer:
        ops.add(x, x)
        with minirnn.profile() as inner:
            y = ops.mul(x, w)
        y.backward(np.ones(N))
    assert set(inner.stats) == {"Mul"}
    assert (inner.stats["Mul"].forward_calls, inner.stats["Mul"].backward_calls) == (1, 0)
    assert inner.peak_saved_bytes == 2 * VEC
    assert (outer.stats["Mul"].forward_calls, outer.stats["Mul"].backward_calls) == (1, 1)
    assert outer.stats["Add"].forward_calls == 1
    assert outer.peak_saved_bytes == 2 * VEC


def test_closing_out_of_order_raises():
    outer, inner = minirnn.profile(), minirnn.profile()
    outer.__enter__()
    inner.__enter__()
    with pytest.raises(RuntimeError, match="reverse order"):
        outer.__exit__(None, None, None)
    inner.__exit__(None, None, None)
    outer.__exit__(None, None, None)


def test_a_profile_is_single_use():
    p = minirnn.profile()
    with p:
        pass
    with pytest.raises(RuntimeError, match="already used"):
        p.__enter__()


def test_exception_inside_closes_the_profile():
    with pytest.raises(ValueError, match="do not align"):
        with minirnn.profile():
            ops.matmul(vec(), Tensor(np.ones((3, 2))))


def test_other_threads_are_not_counted_and_cannot_open_a_second_profile():
    x = vec()
    errors: list[BaseException] = []

    def worker() -> None:
        ops.mul(x, x).backward(np.ones(N))
        try:
            with minirnn.profile():
                pass
        except RuntimeError as exc:
            errors.append(exc)

    with minirnn.profile() as p:
        thread = threading.Thread(target=worker)
        thread.start()
        thread.join()
        ops.add(x, x)
    assert set(p.stats) == {"Add"}
    assert len(errors) == 1 and "another thread" in str(errors[0])


def test_table():
    x, w = vec(), vec()
    with minirnn.profile() as p:
        ops.matmul(ops.mul(x, w), x).backward()
    lines = str(p).splitlines()
    assert str(p) == p.table()
    assert lines[0].split() == ["op", "fwd", "calls", "fwd", "ms", "bwd", "calls", "bwd", "ms", "saved", "at", "peak"]
    assert set(lines[1]) == {"-"} and set(lines[-2]) == {"-"}
    rows = {line.split()[0]: line.split() for line in lines[2:-2]}
    assert set(rows) == {"Mul", "MatMul"}
    assert rows["Mul"][1] == "1" and rows["Mul"][3] == "1" and rows["Mul"][5:] == ["1.6", "KiB"]
    assert rows["MatMul"][5:] == ["800", "B"]
    total = lines[-1].split()
    assert total[0] == "total" and total[1] == "2" and total[3] == "2" and total[5:] == ["2.3", "KiB"]
    assert "peak saved 2.3 KiB" in repr(p)


def test_counts_match_the_graph_of_an_unrolled_composed_lstm_cell():
    """Every op recorded is counted once forward and once backward: the profiler's per-kind counts
    equal the node kinds graph.nodes lists (x requires grad, so no op runs unrecorded)."""
    from collections import Counter

    from minirnn import graph, nn

    cell = nn.LSTMCell(3, 4, dtype=np.float64, fused=False)  # the composed step: many ops per step
    x = Tensor(np.random.default_rng(0).standard_normal((3, 2, 3)), requires_grad=True)
    with minirnn.profile() as p:
        h = c = Tensor(np.zeros((2, 4)))
        for t in range(3):
            h, c = cell(x[t], (h, c))
        loss = ops.sum(h)
        kinds = Counter(r.name for r in graph.nodes(loss))
        loss.backward()
    assert sum(kinds.values()) > 30
    assert {name: s.forward_calls for name, s in p.stats.items()} == dict(kinds)
    assert {name: s.backward_calls for name, s in p.stats.items()} == dict(kinds)


def test_fused_lstm_is_one_forward_and_one_backward_call():
    lstm = minirnn.nn.LSTM(3, 4, dtype=np.float64)
    x = Tensor(np.random.default_rng(0).standard_normal((5, 2, 3)))
    with minirnn.profile() as p:
        y, _ = lstm(x)
        ops.sum(y).backward()
    s = p.stats["FusedRNNLayer"]
    assert (s.forward_calls, s.backward_calls) == (1, 1)
    assert s.saved_bytes_at_peak > 0 and s.forward_seconds > 0 and s.backward_seconds > 0
