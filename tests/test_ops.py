"""Every tape op: gradcheck (float64 central differences) and the same values and grads as torch."""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st
from hypothesis.extra import numpy as hnp

import minirnn
from minirnn import Tensor, functional as F, ops

try:  # the gradchecks run without torch; only the comparisons with it skip
    import torch
except ImportError:
    torch = None
from torch_oracle import check_against_torch  # noqa: E402

R = np.random.default_rng(7)


def normal(*shape: int) -> np.ndarray:
    return R.standard_normal(shape)


def positive(*shape: int) -> np.ndarray:
    return R.uniform(0.5, 2.0, shape)


def away_from_zero(*shape: int) -> np.ndarray:
    """Values with |x| >= 0.1, so kinks at 0 (relu) are not inside a finite-difference step."""
    x = R.uniform(0.1, 2.0, shape)
    return x * R.choice([-1.0, 1.0], shape)


def distinct(*shape: int) -> np.ndarray:
    """A random permutation of well-separated values: no ties for max."""
    return R.permutation(np.arange(int(np.prod(shape)), dtype=np.float64)).reshape(shape) * 0.1


INT_IDX = np.array([[0, 2, 2], [1, 0, 3]])
MASK = np.array([[True, False, True, True], [False, False, True, False], [True, True, False, False]])
COND = R.random((3, 4)) > 0.5

# (id, minirnn fn, torch fn, inputs): float inputs require grad in both libraries.
CASES: list[tuple[str, Callable[..., Any], Callable[..., Any], list[np.ndarray]]] = [
    ("add_broadcast", lambda a, b: a + b, lambda a, b: a + b, [normal(3, 1, 4), normal(2, 4)]),
    ("add_scalar", lambda a: 2.5 + a, lambda a: 2.5 + a, [normal(3)]),
    ("sub_broadcast", lambda a, b: a - b, lambda a, b: a - b, [normal(4), normal(2, 3, 1)]),
    ("rsub_scalar", lambda a: 1 - a, lambda a: 1 - a, [normal(2, 2)]),
    ("mul_broadcast", lambda a, b: a * b, lambda a, b: a * b, [normal(2, 1, 3), normal(4, 1)]),
    ("div_broadcast", lambda a, b: a / b, lambda a, b: a / b, [normal(2, 3), positive(3)]),
    ("rdiv_scalar", lambda a: 3.0 / a, lambda a: 3.0 / a, [positive(2, 3)]),
    ("neg", lambda a: -a, lambda a: -a, [normal(2, 3)]),
    ("pow_int", lambda a: a ** 3, lambda a: a ** 3, [normal(2, 3)]),
    ("pow_negative_float", lambda a: a ** -1.5, lambda a: a ** -1.5, [positive(4)]),
    ("pow_tensor", lambda a, b: a ** b, lambda a, b: a ** b, [positive(2, 3), normal(3)]),
    ("rpow_scalar_base", lambda a: 2.0 ** a, lambda a: 2.0 ** a, [normal(2, 3)]),
    ("matmul_batched", lambda a, b: a @ b, lambda a, b: a @ b, [normal(2, 3, 4), normal(4, 5)]),
    ("matmul_broadcast_batch", lambda a, b: a @ b, lambda a, b: a @ b, [normal(2, 1, 3, 4), normal(5, 4, 2)]),
    ("matmul_vec_mat", lambda a, b: a @ b, lambda a, b: a @ b, [normal(4), normal(4, 5)]),
    ("matmul_mat_vec", lambda a, b: a @ b, lambda a, b: a @ b, [normal(3, 4), normal(4)]),
    ("matmul_vec_vec", lambda a, b: a @ b, lambda a, b: a @ b, [normal(4), normal(4)]),
    ("matmul_batched_vec", lambda a, b: a @ b, lambda a, b: a @ b, [normal(2, 3, 4), normal(4)]),
    ("matmul_vec_batched", lambda a, b: a @ b, lambda a, b: a @ b, [normal(4), normal(2, 4, 5)]),
    ("matmul_both_batched", lambda a, b: a @ b, lambda a, b: a @ b, [normal(2, 3, 4), normal(2, 4, 5)]),
    ("sum_all", lambda a: a.sum(), lambda a: a.sum(), [normal(2, 3, 4)]),
    ("sum_axis", lambda a: a.sum(1), lambda a: a.sum(1), [normal(2, 3, 4)]),
    ("sum_axes_keepdims", lambda a: a.sum((0, 2), keepdims=True), lambda a: a.sum((0, 2), keepdim=True),
     [normal(2, 3, 4)]),
    ("mean_all", lambda a: a.mean(), lambda a: a.mean(), [normal(2, 3, 4)]),
    ("mean_negative_axis", lambda a: a.mean(-1), lambda a: a.mean(-1), [normal(2, 3, 4)]),
    ("mean_axes_keepdims", lambda a: a.mean((0, 1), keepdims=True), lambda a: a.mean((0, 1), keepdim=True),
     [normal(2, 3, 4)]),
    ("max_all", lambda a: a.max(), lambda a: a.max(), [distinct(3, 4)]),
    ("max_axis", lambda a: a.max(1), lambda a: a.max(1).values, [distinct(3, 4, 2)]),
    ("max_axes_keepdims", lambda a: a.max((0, 2), keepdims=True), lambda a: torch.amax(a, (0, 2), keepdim=True),
     [distinct(3, 4, 2)]),
    ("reshape", lambda a: a.reshape(4, -1), lambda a: a.reshape(4, -1), [normal(2, 3, 4)]),
    ("transpose", lambda a: a.transpose(0, 2), lambda a: a.transpose(0, 2), [normal(2, 3, 4)]),
    ("permute", lambda a: a.permute(1, 2, 0), lambda a: a.permute(1, 2, 0), [normal(2, 3, 4)]),
    ("T", lambda a: a.T, lambda a: a.T, [normal(2, 3)]),
    ("getitem_slices", lambda a: a[1:, ::2], lambda a: a[1:, ::2], [normal(3, 5)]),
    ("getitem_none_ellipsis", lambda a: a[None, ..., 1], lambda a: a[None, ..., 1], [normal(2, 3, 4)]),
    ("getitem_negative_int", lambda a: a[-1], lambda a: a[-1], [normal(3, 4)]),
    ("getitem_repeated_ints", lambda a, i: a[i], lambda a, i: a[i], [normal(4, 3), INT_IDX]),
    ("getitem_two_arrays", lambda a: a[[0, 0, 2], :, [1, 1, 0]], lambda a: a[[0, 0, 2], :, [1, 1, 0]],
     [normal(3, 2, 2)]),
    ("getitem_bool_mask", lambda a, m: a[m], lambda a, m: a[m], [normal(3, 4), MASK]),
    ("cat", lambda a, b, c: minirnn.cat([a, b, c], axis=1), lambda a, b, c: torch.cat([a, b, c], 1),
     [normal(2, 1, 3), normal(2, 4, 3), normal(2, 2, 3)]),
    ("stack_last", lambda a, b: minirnn.stack([a, b], axis=-1), lambda a, b: torch.stack([a, b], -1),
     [normal(2, 3), normal(2, 3)]),
    ("split_size", lambda a: minirnn.split(a, 2, axis=1), lambda a: torch.split(a, 2, 1), [normal(3, 5)]),
    ("split_sections", lambda a: a.split([1, 3, 1], 0), lambda a: torch.split(a, [1, 3, 1], 0), [normal(5, 2)]),
    ("split_one_unused", lambda a: a.split(2)[1], lambda a: a.split(2)[1], [normal(4, 2)]),
    ("exp", lambda a: a.exp(), lambda a: torch.exp(a), [normal(2, 3)]),
    ("log", lambda a: a.log(), lambda a: torch.log(a), [positive(2, 3)]),
    ("tanh", F.tanh, lambda a: torch.tanh(a), [normal(2, 3)]),
    ("sigmoid", F.sigmoid, lambda a: torch.sigmoid(a), [normal(2, 3) * 5]),
    ("relu", F.relu, lambda a: torch.relu(a), [away_from_zero(3, 4)]),
    ("softplus", F.softplus, lambda a: torch.nn.functional.softplus(a), [normal(3, 4) * 5]),
    ("softmax_last", F.softmax, lambda a: torch.softmax(a, -1), [normal(3, 4)]),
    ("softmax_axis0", lambda a: F.softmax(a, 0), lambda a: torch.softmax(a, 0), [normal(3, 4, 2)]),
    ("log_softmax_last", F.log_softmax, lambda a: torch.log_softmax(a, -1), [normal(3, 4)]),
    ("log_softmax_axis1", lambda a: F.log_softmax(a, 1), lambda a: torch.log_softmax(a, 1), [normal(2, 3, 4)]),
    ("where", lambda a, b: minirnn.where(COND, a, b), lambda a, b: torch.where(torch.from_numpy(COND), a, b),
     [normal(3, 4), normal(4)]),
    ("where_broadcast_cond", lambda a, b: minirnn.where(COND[0], a, b),
     lambda a, b: torch.where(torch.from_numpy(COND[0]), a, b), [normal(3, 4), normal(3, 1)]),
    ("clip_both", lambda a: a.clip(-0.5, 0.5), lambda a: a.clamp(-0.5, 0.5), [away_from_zero(4, 5) * 0.7]),
    ("clip_min", lambda a: a.clip(min=0.3), lambda a: a.clamp(min=0.3), [away_from_zero(4, 5)]),
    ("embedding", lambda w, i: F.embedding(i, w), lambda w, i: torch.nn.functional.embedding(i, w),
     [normal(5, 3), INT_IDX]),
    ("embedding_padding", lambda w, i: F.embedding(i, w, padding_idx=2),
     lambda w, i: torch.nn.functional.embedding(i, w, padding_idx=2), [normal(5, 3), INT_IDX]),
]

# relu/clip inputs are continuous random values: the chance that one lies within gradcheck's 1e-6
# step of a kink (0 or a clip bound) is about 1e-6 per element, and the seed is fixed.
IDS = [c[0] for c in CASES]
# padding_idx blocks the gradient of its row on purpose (torch's contract), so it is not the true
# derivative that finite differences measure; the torch comparison covers it.
GRADCHECK_CASES = [c for c in CASES if c[0] != "embedding_padding"]


def _tensors(arrays: list[np.ndarray]) -> list[Tensor]:
    return [Tensor(a.astype(np.float64), requires_grad=True) if a.dtype.kind == "f" else Tensor(a)
            for a in arrays]


@pytest.mark.parametrize("name, fn, torch_fn, inputs", GRADCHECK_CASES, ids=[c[0] for c in GRADCHECK_CASES])
def test_gradcheck(name: str, fn: Callable[..., Any], torch_fn: Callable[..., Any], inputs: list) -> None:
    assert minirnn.gradcheck(fn, _tensors(inputs))


@pytest.mark.parametrize("name, fn, torch_fn, inputs", CASES, ids=IDS)
def test_matches_torch(name: str, fn: Callable[..., Any], torch_fn: Callable[..., Any], inputs: list) -> None:
    pytest.importorskip("torch")
    check_against_torch(fn, torch_fn, inputs)


def test_cast_keeps_gradient_dtype() -> None:
    x = Tensor(np.arange(3, dtype=np.float32), requires_grad=True)
    y = x.double()
    assert y.dtype == np.float64
    (y * y).sum().backward()
    assert x.grad.dtype == np.float32
    np.testing.assert_array_equal(x.grad, [0, 2, 4])
    assert minirnn.gradcheck(lambda a: ops.cast(a, np.float64) * 2, [Tensor(normal(3), requires_grad=True)])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("op", [lambda x: x * 2, lambda x: 1.5 + x, lambda x: x / 3, lambda x: x ** 2,
                                lambda x: 1 - x, F.tanh, F.sigmoid, F.softmax, lambda x: x.mean(0),
                                lambda x: x.max(), lambda x: minirnn.where(x.data > 0, x, 0.0),
                                lambda x: x.clip(0, 1), lambda x: F.dropout(x, 0.5)])
def test_dtype_is_kept_and_scalars_never_promote(dtype: type, op: Callable[[Tensor], Tensor]) -> None:
    x = Tensor(normal(2, 3).astype(dtype), requires_grad=True)
    y = op(x)
    assert y.dtype == dtype
    y.backward(np.ones(y.shape, dtype=dtype))
    assert x.grad.dtype == dtype


@settings(max_examples=25, deadline=None)
@given(shapes=hnp.mutually_broadcastable_shapes(num_shapes=2, min_dims=0, max_dims=3, max_side=3),
       op=st.sampled_from(["add", "sub", "mul", "div", "pow", "where"]))
def test_broadcasting_binary_ops_gradcheck(shapes: Any, op: str) -> None:
    a_shape, b_shape = shapes.input_shapes
    rng = np.random.default_rng(0)
    a = Tensor(rng.standard_normal(a_shape), requires_grad=True)
    b = Tensor(rng.uniform(0.5, 2.0, b_shape), requires_grad=True)
    fn = {"pow": lambda a, b: ops.pow(b, a),  # a positive base: b ** a is defined for every a
          "where": lambda a, b: ops.where(a.data > 0, a, b)}.get(op, getattr(ops, op))
    out = fn(a, b)
    assert out.shape == shapes.result_shape
    assert minirnn.gradcheck(fn, [a, b])


@settings(max_examples=20, deadline=None)
@given(shape=hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), data=st.data())
def test_reductions_over_any_axes_gradcheck(shape: tuple[int, ...], data: Any) -> None:
    axes = data.draw(st.lists(st.integers(0, len(shape) - 1), unique=True, max_size=len(shape)).map(tuple)
                     | st.none())
    keepdims = data.draw(st.booleans())
    x = Tensor(distinct(*shape), requires_grad=True)
    for fn in (ops.sum, ops.mean, ops.max):
        assert minirnn.gradcheck(lambda t: fn(t, axes, keepdims), [x])


def test_max_ties_split_the_gradient_evenly() -> None:
    x = Tensor(np.array([[1.0, 3.0, 3.0], [2.0, 2.0, 2.0]]), requires_grad=True)
    x.max(1).sum().backward()
    np.testing.assert_allclose(x.grad, [[0, 0.5, 0.5], [1 / 3, 1 / 3, 1 / 3]])
    pytest.importorskip("torch")
    tx = torch.tensor(x.data, requires_grad=True)
    torch.amax(tx, 1).sum().backward()
    np.testing.assert_allclose(x.grad, tx.grad.numpy())


def test_softmax_and_log_softmax_are_finite_for_huge_logits() -> None:
    x = Tensor(np.array([[1e4, -1e4, 0.0], [1e4, 1e4, 1e4]]), requires_grad=True)
    assert np.isfinite(F.log_softmax(x).data).all()
    np.testing.assert_allclose(F.softmax(x).data, [[1, 0, 0], [1 / 3, 1 / 3, 1 / 3]])
    F.log_softmax(x).sum().backward()
    assert np.isfinite(x.grad).all()


def test_sigmoid_is_stable_at_extremes() -> None:
    y = F.sigmoid(Tensor(np.array([-1e4, -50.0, 0.0, 50.0, 1e4], dtype=np.float32)))
    np.testing.assert_allclose(y.data, [0, 1.9287498e-22, 0.5, 1, 1], rtol=1e-6)


class TestDropout:
    def test_gradcheck_with_a_fixed_mask(self) -> None:
        """A fresh generator with the same seed on every call: the mask is the same each time."""
        x = Tensor(normal(4, 5), requires_grad=True)
        assert minirnn.gradcheck(lambda a: F.dropout(a, 0.3, generator=np.random.default_rng(0)), [x])

    def test_eval_and_p0_are_identity(self) -> None:
        x = Tensor(normal(4, 5), requires_grad=True)
        assert F.dropout(x, 0.5, training=False) is x
        assert F.dropout(x, 0.0) is x

    def test_inverted_scaling_and_gradient_follow_the_mask(self) -> None:
        x = Tensor(np.ones((200, 50)), requires_grad=True)
        y = F.dropout(x, 0.25, generator=np.random.default_rng(0))
        kept = y.data != 0
        np.testing.assert_allclose(y.data[kept], 1 / 0.75)
        assert abs(kept.mean() - 0.75) < 0.01  # 10,000 Bernoulli(0.75): std 0.0043
        y.sum().backward()
        np.testing.assert_allclose(x.grad, y.data)

    def test_manual_seed_makes_it_reproducible(self) -> None:
        x = Tensor(np.ones(100))
        minirnn.manual_seed(3)
        first = F.dropout(x, 0.5).data
        minirnn.manual_seed(3)
        np.testing.assert_array_equal(F.dropout(x, 0.5).data, first)

    @pytest.mark.parametrize("p", [-0.1, 1.0, 1.5])
    def test_p_outside_unit_interval_raises(self, p: float) -> None:
        with pytest.raises(ValueError, match=r"dropout\(\): expected p in \[0, 1\), got"):
            F.dropout(Tensor(np.ones(3)), p)


@pytest.mark.parametrize("call, error, message", [
    (lambda: Tensor(np.ones((2, 3))) @ Tensor(np.ones((4, 2))), ValueError, r"matmul: shapes \(2, 3\) and \(4, 2\)"),
    (lambda: Tensor(np.arange(3), requires_grad=True), TypeError, "only float32/float64 tensors can require"),
    (lambda: F.tanh(np.ones(3)), TypeError, r"tanh\(\): expected x to be a minirnn.Tensor, got ndarray"),
    (lambda: F.sigmoid(Tensor(np.arange(3))), TypeError, "expected x to be a float32 or float64 tensor, got dtype int"),
    (lambda: F.embedding(np.array([0, 5]), Tensor(np.ones((5, 2)))), IndexError,
     r"expected indices in \[0, 5\).*got 5"),
    (lambda: F.embedding(np.array([0.0]), Tensor(np.ones((5, 2)))), TypeError,
     "expected integer indices, got dtype float"),
    (lambda: Tensor(np.ones((2, 3))).sum(2), IndexError, "axis 2 is out of range for a tensor with 2 dimensions"),
    (lambda: Tensor(np.ones((2, 3))).reshape(4, 2), ValueError, r"cannot reshape a tensor of shape \(2, 3\)"),
    (lambda: Tensor(np.ones((2, 3)))[5], IndexError,
     r"getitem\(\): invalid index for a tensor of shape \(2, 3\).*out of bounds"),
    (lambda: Tensor(np.ones((2, 3))).split([1, 2]), ValueError, r"sections adding up to 2 .*got \[1, 2\]"),
    (lambda: minirnn.cat([Tensor(np.ones((2, 3))), Tensor(np.ones((2, 4)))]), ValueError,
     r"tensors\[1\] to match shape \(2, 3\) except on axis 0, got \(2, 4\)"),
    (lambda: minirnn.stack(Tensor(np.ones(2))), TypeError, "expected a non-empty list or tuple of Tensors"),
    (lambda: minirnn.where(np.ones(2), Tensor(np.ones(2)), 0.0), TypeError, "expected cond to have dtype bool"),
    (lambda: Tensor(np.ones(3)) + Tensor(np.ones(4)), ValueError,
     r"add\(\): expected shapes that broadcast together, got \(3,\) and \(4,\)"),
    (lambda: 2.0 ** Tensor(np.ones((2, 3))) * np.ones(2), ValueError, r"mul\(\): .*got \(2, 3\) and \(2,\)"),
    (lambda: minirnn.where(np.ones(3, bool), Tensor(np.ones(4)), 0.0), ValueError,
     r"where\(\): expected shapes that broadcast together, got \(3,\) and \(4,\) and \(\)"),
    (lambda: Tensor(np.ones(2)).clip(), ValueError, "expected at least one of min and max"),
    (lambda: Tensor(np.ones((2, 3))).permute(0, 0), ValueError, r"expected a permutation of range\(2\)"),
    (lambda: ops.cast(Tensor(np.ones(2), requires_grad=True), np.int64), TypeError, "can only be cast to a float"),
])
def test_bad_input_raises_a_clear_error(call: Callable[[], Any], error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()


@settings(max_examples=25, deadline=None)
@given(rows=st.integers(1, 4), data=st.data())
def test_integer_array_indexing_accumulates_repeats(rows: int, data: Any) -> None:
    """x[idx] reads a row once per occurrence in idx, so its gradient is that count times dy."""
    idx = data.draw(st.lists(st.integers(-rows, rows - 1), min_size=1, max_size=8))
    x = Tensor(normal(rows, 3), requires_grad=True)
    ops.getitem(x, np.array(idx)).sum().backward()
    counts = np.bincount(np.array(idx) % rows, minlength=rows)
    np.testing.assert_array_equal(x.grad, np.repeat(counts[:, None], 3, axis=1))
    assert minirnn.gradcheck(lambda a: a[np.array(idx)], [Tensor(normal(rows, 3), requires_grad=True)])


@pytest.mark.parametrize("shape, index_shape", [((7, 3), (20,)), ((5,), (4, 6)), ((6, 2, 3), (3, 4)), ((4, 3), (0,))])
def test_scatter_add_of_one_integer_array_sums_like_np_add_at(shape, index_shape) -> None:
    """The sorted path of one integer array (embedding lookups): repeated and negative indices,
    indices of any shape, none at all; the same sums as np.add.at (up to rounding order)."""
    rng = np.random.default_rng(len(index_shape))
    index = rng.integers(-shape[0], shape[0], index_shape)
    grad = rng.standard_normal(index_shape + shape[1:])
    expected = np.zeros(shape)
    np.add.at(expected, index, grad)
    got = ops.indexing.scatter_add(shape, np.float64, index, grad)
    assert got.dtype == np.float64 and got.shape == shape
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-12)
