"""The tape engine: accumulation, hooks, no_grad, detach, retain_graph, deep graphs, isolation."""
from __future__ import annotations

import gc
import sys
import weakref

import numpy as np
import pytest

import minirnn
from minirnn import Function, Tensor, functional as F, ops

from conftest import leaf


def test_fan_out_accumulates_every_path() -> None:
    x = leaf([1.5, -2.0])
    y = x * x + x  # x reaches the output along three paths: dy/dx = 2x + 1
    y.sum().backward()
    np.testing.assert_allclose(x.grad, 2 * x.data + 1)


def test_fan_out_of_a_non_leaf_sums_before_its_backward() -> None:
    x = leaf([0.3, 0.7])
    h = x.tanh()
    (h * 2 + h * h).sum().backward()  # d/dh = 2 + 2h, then tanh' = 1 - h^2
    np.testing.assert_allclose(x.grad, (2 + 2 * h.data) * (1 - h.data ** 2))


def test_a_leaf_on_many_paths_sums_them_without_writing_into_the_seed() -> None:
    # Add's backward hands the incoming gradient itself to both inputs, so the leaf's first two
    # contributions are the caller's seed array; the sum must go into a buffer of its own, and the
    # third and fourth paths then add into that buffer, never into the seed.
    x = leaf([1.0, -2.0])
    seed = np.array([0.5, 3.0], np.float32)
    kept = seed.copy()
    (x + x + x + x).backward(seed)
    np.testing.assert_array_equal(seed, kept)
    np.testing.assert_allclose(x.grad, 4 * kept)


def test_leaf_grad_accumulates_across_backward_calls() -> None:
    x = leaf([1.0, 2.0])
    (x * 3).sum().backward()
    (x * x).sum().backward()
    np.testing.assert_allclose(x.grad, [3 + 2, 3 + 4])


def test_leaf_hook_sees_the_total_and_can_replace_it() -> None:
    x = leaf([1.0, 2.0])
    seen = []
    x.register_hook(lambda g: seen.append(g.copy()))
    x.register_hook(lambda g: g * 10)
    (x * x + x).sum().backward()
    np.testing.assert_allclose(seen[0], [3, 5])  # one call with the summed gradient, not one per path
    assert len(seen) == 1
    np.testing.assert_allclose(x.grad, [30, 50])


def test_non_leaf_hook_replaces_the_gradient_flowing_upstream() -> None:
    x = leaf([1.0, 2.0])
    h = x * 2
    seen = []
    h.register_hook(lambda g: seen.append(g.copy()))
    h.register_hook(lambda g: np.zeros_like(g) + 1)
    (h * h).sum().backward()
    np.testing.assert_allclose(seen[0], 2 * h.data)
    np.testing.assert_allclose(x.grad, [2, 2])  # replaced grad 1, times dh/dx = 2
    assert h.grad is None  # non-leaves do not keep .grad


def test_no_grad_records_nothing_and_enable_grad_nests() -> None:
    x = leaf([1.0])
    with minirnn.no_grad():
        y = x * 2
        with minirnn.enable_grad():
            z = x * 2
    assert not y.requires_grad and y.grad_fn is None
    assert z.requires_grad and z.grad_fn is not None
    assert minirnn.is_grad_enabled()
    with pytest.raises(RuntimeError, match="does not require grad"):
        y.backward()


def test_detach_shares_memory_and_stops_gradients() -> None:
    x = leaf([1.0, 2.0])
    d = (x * 3).detach()
    assert not d.requires_grad and d.is_leaf
    (x * d).sum().backward()
    np.testing.assert_allclose(x.grad, d.data)  # d is a constant: no path through it
    h = x * 1
    assert np.shares_memory(h.detach().data, h.data)


def test_retain_graph_allows_a_second_backward() -> None:
    x = leaf([1.0, 2.0])
    y = (x * x).sum()
    y.backward(retain_graph=True)
    y.backward()
    np.testing.assert_allclose(x.grad, 2 * 2 * x.data)


def test_second_backward_without_retain_graph_raises() -> None:
    x = leaf([1.0, 2.0])
    y = (x * x).tanh().sum()
    y.backward()
    assert y.grad_fn.freed
    with pytest.raises(RuntimeError, match="backward through the graph a second time.*retain_graph=True"):
        y.backward()


def test_ten_thousand_step_chain_does_not_hit_the_recursion_limit() -> None:
    assert sys.getrecursionlimit() < 10_000
    x = leaf([0.5])
    w = leaf([1.0])
    h = x
    for _ in range(10_000):
        h = h * w + x  # h_t = h_{t-1} w + x: with w = 1, dh/dx = t + 1 and dh/dw = sum_{k<t} h_k
    h.sum().backward()
    np.testing.assert_allclose(x.grad, [10_001])
    np.testing.assert_allclose(w.grad, [0.5 * sum(range(1, 10_001))])


def test_two_independent_graphs_do_not_interfere() -> None:
    a, b = leaf([1.0, 2.0]), leaf([3.0])
    ya = (a * a).sum()
    yb = (b * 5).sum()
    yb.backward()
    assert a.grad is None
    ya.backward()
    np.testing.assert_allclose(a.grad, [2, 4])
    np.testing.assert_allclose(b.grad, [5])


def test_shared_leaf_in_two_graphs_gets_both_contributions_only_when_both_run() -> None:
    x = leaf([2.0])
    y1, y2 = (x * 3).sum(), (x * x).sum()
    y1.backward()
    np.testing.assert_allclose(x.grad, [3])
    y2.backward()
    np.testing.assert_allclose(x.grad, [3 + 4])


def test_unused_output_of_a_multi_output_op_gets_zero_gradient() -> None:
    x = leaf(np.arange(6.0).reshape(3, 2))
    first, _, last = ops.split(x, 1)
    (first * 2 + last).sum().backward()
    np.testing.assert_allclose(x.grad, [[2, 2], [0, 0], [1, 1]])


def test_backward_checks_the_seed_shape_and_implicit_seed() -> None:
    y = leaf([1.0, 2.0]) * 2
    with pytest.raises(RuntimeError, match="grad can be implicit only for a one-element tensor"):
        y.backward()
    with pytest.raises(ValueError, match=r"grad has shape \(3,\), expected \(2,\)"):
        y.backward(np.ones(3))


def test_a_function_returning_the_wrong_number_of_gradients_is_reported() -> None:
    class Broken(Function):
        @staticmethod
        def forward(ctx, a, b):  # type: ignore[no-untyped-def]
            return a + b

        @staticmethod
        def backward(ctx, grad):  # type: ignore[no-untyped-def]
            return grad

    with pytest.raises(RuntimeError, match="Broken.backward returned 1 gradients, expected 2"):
        Broken.apply(leaf([1.0]), leaf([2.0])).backward()


def test_constants_get_no_grad_and_leaves_keep_their_dtype() -> None:
    x = Tensor(np.ones(2, dtype=np.float32), requires_grad=True)
    c = Tensor(np.ones(2, dtype=np.float64))
    (x * c).sum().backward()
    assert c.grad is None
    assert x.grad.dtype == np.float32


# ---------------------------------------------------------------------------- Tensor()
@pytest.mark.parametrize("value, dtype", [
    ([1, 2], np.float32), ([[1.5], [2.5]], np.float32), (3, np.float32), (2.5, np.float32), ([], np.float32),
    (np.ones(2, np.float64), np.float64), (np.ones(2, np.float32), np.float32), (np.float64(1.5), np.float64),
    (np.arange(3), np.int64), ([True, False], np.bool_),
])
def test_tensor_dtype_rules(value, dtype) -> None:
    """Lists and Python scalars become float32; arrays keep their dtype (ints and bools for indices)."""
    t = Tensor(value)
    assert t.dtype == dtype
    np.testing.assert_array_equal(t.numpy(), np.asarray(value))


def test_array_like_keeps_float64() -> None:
    torch = pytest.importorskip("torch")
    assert Tensor(torch.ones(2, dtype=torch.float64)).dtype == np.float64


def test_numpy_is_the_data_and_item_is_a_python_number() -> None:
    a = np.array([[2.5]])
    t = Tensor(a)
    assert t.numpy() is a and t.data is a
    assert t.item() == 2.5 and type(t.item()) is float
    with pytest.raises(ValueError, match=r"item\(\): only one-element tensors .* got shape \(2,\)"):
        Tensor([1.0, 2.0]).item()


@pytest.mark.parametrize("call, error, message", [
    (lambda: Tensor(np.arange(3), requires_grad=True), TypeError,
     "only float32/float64 tensors can require gradients, got dtype int64"),
    (lambda: Tensor([True], requires_grad=True), TypeError, "got dtype bool"),
    (lambda: Tensor(np.arange(3)).requires_grad_(), TypeError, "got dtype int64"),
    (lambda: Tensor(["a"]), TypeError, r"Tensor\(\): expected numbers.*got list"),
    (lambda: Tensor(None), TypeError, r"Tensor\(\): expected numbers.*got NoneType"),
    (lambda: Tensor([[1, 2], [3]]), ValueError, r"Tensor\(\): expected a rectangular nested list"),
    (lambda: (leaf([1.0]) * 2).backward("a"), TypeError, r"backward\(\): expected grad to be numbers of shape"),
    (lambda: Tensor([1.0]).register_hook(print), RuntimeError, "does not require grad"),
])
def test_tensor_bad_input(call, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()


# ---------------------------------------------------------------------------- freeing
def _all_nodes(t: Tensor) -> list:
    from minirnn.autograd import topological_order
    return topological_order(t.grad_fn)


def test_backward_frees_what_every_node_saved_unless_retain_graph() -> None:
    x = leaf(np.linspace(0.1, 1.0, 6).reshape(2, 3))
    w = leaf(np.ones((3, 2)))
    y = F.log_softmax((x @ w).tanh() * x[:, [0, 0]], axis=1)[np.array([0, 1]), np.array([1, 1])].sum()
    nodes = _all_nodes(y)
    assert sum(n.saved_nbytes() for n in nodes) > 0
    y.backward(retain_graph=True)
    assert not any(n.freed for n in nodes)
    y.backward()
    assert all(n.freed and n.saved_nbytes() == 0 for n in nodes)
    assert all(n._saved is None for n in nodes)  # the arrays themselves are released


def test_second_backward_through_a_shared_freed_subgraph_raises() -> None:
    x = leaf([1.0, 2.0])
    h = x * x
    h.sum().backward()
    with pytest.raises(RuntimeError, match="second time"):
        (h * 2).sum().backward()


# ---------------------------------------------------------------------------- gradcheck itself
class _WrongSquare(Function):
    """y = x^2 with a wrong derivative (x instead of 2x): gradcheck must catch it."""

    @staticmethod
    def forward(ctx, x):  # type: ignore[no-untyped-def]
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):  # type: ignore[no-untyped-def]
        (x,) = ctx.saved_tensors
        return grad * x


def test_gradcheck_catches_a_wrong_backward() -> None:
    with pytest.raises(AssertionError, match=r"gradcheck: input 0 \(shape \(3,\)\) element \(0,\): analytic"):
        minirnn.gradcheck(_WrongSquare.apply, [leaf([1.0, 2.0, 3.0])])


def test_gradcheck_perturbs_non_contiguous_inputs() -> None:
    x = Tensor(np.arange(12.0).reshape(3, 4)[:, ::2], requires_grad=True)
    assert not x.data.flags.c_contiguous
    assert minirnn.gradcheck(lambda a: (a * a).sum(), [x])


def test_gradcheck_leaves_its_input_unperturbed_when_fn_raises() -> None:
    """fn works on the unperturbed input (the analytic pass) and raises on a perturbed one."""
    x = leaf([1.0, 2.0, 3.0])
    original = x.data.copy()

    def fn(a: Tensor) -> Tensor:
        if not np.array_equal(a.data, original):
            raise RuntimeError("perturbed")
        return a * a

    with pytest.raises(RuntimeError, match="perturbed"):
        minirnn.gradcheck(fn, [x])
    np.testing.assert_array_equal(x.data, original)


def test_gradcheck_wants_float64() -> None:
    with pytest.raises(TypeError, match="input 0 has dtype float32, expected float64"):
        minirnn.gradcheck(lambda a: a * 2, [Tensor(np.ones(2, np.float32), requires_grad=True)])


def test_a_loss_kept_after_backward_does_not_keep_the_activations() -> None:
    """After backward (no retain_graph) nodes let go of their inputs' arrays: a kept ``loss`` (say,
    appended to a list) holds the graph's skeleton, not every intermediate array."""
    x, w = leaf(np.ones((3, 4))), leaf(np.full((4, 5), 0.1))
    h = (x @ w).tanh()
    mask = np.ones((3, 5), dtype=bool)
    loss = ops.where(mask, h, 0.0)[np.array([0, 2])].sum()
    h_alive, mask_alive = weakref.ref(h.data), weakref.ref(mask)
    del h, mask
    loss.backward()
    gc.collect()
    assert h_alive() is None and mask_alive() is None
    kept = [x for n in _all_nodes(loss) for x in n.inputs if isinstance(x, (Tensor, np.ndarray))]
    assert all(t.is_leaf and t.requires_grad for t in kept) and len(kept) == 2  # x and w


def test_retain_graph_keeps_the_inputs() -> None:
    x = leaf(np.ones(3))
    h = x * 2
    loss = (h * h).sum()
    h_alive = weakref.ref(h.data)
    del h
    loss.backward(retain_graph=True)
    gc.collect()
    assert h_alive() is not None
    loss.backward()
    np.testing.assert_allclose(x.grad, 2 * 8 * x.data)


def test_forward_is_told_whether_it_is_recorded() -> None:
    seen = []

    class Spy(Function):
        @staticmethod
        def forward(ctx, a):
            seen.append(ctx.recording)
            return a * 2

        @staticmethod
        def backward(ctx, grad):
            return grad * 2

    x = leaf(np.ones(3))
    Spy.apply(x)
    Spy.apply(Tensor(np.ones(3)))  # no input requires grad
    with minirnn.no_grad():
        Spy.apply(x)
    y = Spy.apply(x)
    with minirnn.no_grad(), minirnn.enable_grad():
        Spy.apply(x)
    assert seen == [True, False, False, True, True]
    assert y.grad_fn is not None
