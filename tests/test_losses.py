"""Losses: gradcheck, torch comparison (every reduction), ignore_index, stability, errors."""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import minirnn
from minirnn import Tensor, functional as F

from conftest import leaf

try:  # gradchecks, stability and error tests run without torch; only the comparisons skip
    import torch
    TF = torch.nn.functional
except ImportError:
    torch = TF = None
from torch_oracle import check_against_torch  # noqa: E402

needs_torch = pytest.mark.skipif(torch is None, reason="torch is not installed")
REDUCTIONS = ["mean", "sum", "none"]


@needs_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_matches_torch(rng: np.random.Generator, reduction: str) -> None:
    target = np.array([0, 3, 2, 3, 1])
    check_against_torch(lambda x, t: F.cross_entropy(x, t, reduction=reduction),
                        lambda x, t: TF.cross_entropy(x, t, reduction=reduction),
                        [rng.standard_normal((5, 4)), target])


@needs_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_cross_entropy_ignore_index_matches_torch(rng: np.random.Generator, reduction: str) -> None:
    target = np.array([0, -100, 2, -100, 1, 2])  # 'mean' divides by the 4 kept targets
    check_against_torch(lambda x, t: F.cross_entropy(x, t, reduction=reduction),
                        lambda x, t: TF.cross_entropy(x, t, reduction=reduction),
                        [rng.standard_normal((6, 3)), target])
    check_against_torch(lambda x, t: F.cross_entropy(x, t, ignore_index=2, reduction=reduction),
                        lambda x, t: TF.cross_entropy(x, t, ignore_index=2, reduction=reduction),
                        [rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])])


@needs_torch
def test_cross_entropy_with_extra_dimensions_matches_torch(rng: np.random.Generator) -> None:
    target = np.array([[0, 1, -100], [2, 2, 0]])  # (N, T) targets for (N, C, T) logits
    check_against_torch(F.cross_entropy, TF.cross_entropy, [rng.standard_normal((2, 3, 3)), target])


def test_cross_entropy_gradcheck(rng: np.random.Generator) -> None:
    target = np.array([1, -100, 0, 2])
    assert minirnn.gradcheck(lambda x: F.cross_entropy(x, target), [leaf(rng.standard_normal((4, 3)))])
    assert minirnn.gradcheck(lambda x: F.cross_entropy(x, target[:2].reshape(1, 2), reduction="sum"),
                             [leaf(rng.standard_normal((1, 3, 2)))])


def test_cross_entropy_is_finite_for_huge_logits() -> None:
    logits = Tensor(np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4]]), requires_grad=True)
    loss = F.cross_entropy(logits, np.array([1, 2]))
    expected = (2e4 + np.log(2)) / 2  # row 0: log-sum-exp 1e4 minus -1e4; row 1: 1e4 + ln 2 minus 1e4
    np.testing.assert_allclose(loss.item(), expected)
    loss.backward()
    np.testing.assert_allclose(logits.grad, [[0.5, -0.5, 0], [0, 0.25, -0.25]])


def test_cross_entropy_all_ignored_mean_is_nan_like_torch() -> None:
    loss = F.cross_entropy(Tensor(np.ones((2, 3))), np.array([-100, -100]))
    assert np.isnan(loss.item())
    pytest.importorskip("torch")
    assert np.isnan(TF.cross_entropy(torch.ones(2, 3), torch.tensor([-100, -100])).item())


@needs_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_matches_torch(rng: np.random.Generator, reduction: str) -> None:
    check_against_torch(lambda a, b: F.mse_loss(a, b, reduction=reduction),
                        lambda a, b: TF.mse_loss(a, b, reduction=reduction),
                        [rng.standard_normal((3, 4)), rng.standard_normal((3, 4))])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_mse_loss_gradcheck(rng: np.random.Generator, reduction: str) -> None:
    assert minirnn.gradcheck(lambda a, b: F.mse_loss(a, b, reduction=reduction),
                             [leaf(rng.standard_normal((3, 2))), leaf(rng.standard_normal((3, 2)))])


@needs_torch
@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_matches_torch(rng: np.random.Generator, reduction: str) -> None:
    check_against_torch(lambda x, y: F.binary_cross_entropy_with_logits(x, y, reduction=reduction),
                        lambda x, y: TF.binary_cross_entropy_with_logits(x, y, reduction=reduction),
                        [rng.standard_normal((4, 3)) * 4, rng.random((4, 3))])


@pytest.mark.parametrize("reduction", REDUCTIONS)
def test_bce_with_logits_gradcheck(rng: np.random.Generator, reduction: str) -> None:
    pos_weight = leaf(rng.uniform(0.5, 2.0, 3))
    assert minirnn.gradcheck(lambda x, y, w: F.binary_cross_entropy_with_logits(x, y, reduction=reduction,
                                                                                pos_weight=w),
                             [leaf(rng.standard_normal((2, 3)) * 3), leaf(rng.random((2, 3))), pos_weight])


@needs_torch
def test_bce_with_logits_pos_weight_matches_torch(rng: np.random.Generator) -> None:
    pos_weight = np.array([0.5, 2.0, 3.0])
    check_against_torch(
        lambda x, y: F.binary_cross_entropy_with_logits(x, y, pos_weight=pos_weight),
        lambda x, y: TF.binary_cross_entropy_with_logits(x, y, pos_weight=torch.from_numpy(pos_weight)),
        [rng.standard_normal((4, 3)), (rng.random((4, 3)) > 0.5).astype(np.float64)])


def test_bce_with_logits_is_finite_for_huge_logits() -> None:
    x = Tensor(np.array([1e4, -1e4, 1e4, -1e4]), requires_grad=True)
    loss = F.binary_cross_entropy_with_logits(x, np.array([1.0, 0.0, 0.0, 1.0]), reduction="none")
    np.testing.assert_allclose(loss.data, [0, 0, 1e4, 1e4])
    loss.sum().backward()
    np.testing.assert_allclose(x.grad, [0, 0, 1, -1])


def test_float32_losses_stay_float32(rng: np.random.Generator) -> None:
    x = Tensor(rng.standard_normal((3, 4)).astype(np.float32), requires_grad=True)
    for loss in (F.cross_entropy(x, np.array([0, 1, 2])), F.mse_loss(x, np.zeros((3, 4))),
                 F.binary_cross_entropy_with_logits(x, np.ones((3, 4)))):
        assert loss.dtype == np.float32
        loss.backward()
        assert x.grad.dtype == np.float32


@pytest.mark.parametrize("call, error, message", [
    (lambda: F.cross_entropy(Tensor(np.ones((2, 3))), np.array([0, 3])), IndexError,
     r"expected target values in \[0, 3\) \(C = 3 classes\).*got 3"),
    (lambda: F.cross_entropy(Tensor(np.ones((2, 3))), np.array([0, -1])), IndexError, "target values.*got -1"),
    (lambda: F.cross_entropy(Tensor(np.ones((2, 3))), np.array([0.0, 1.0])), TypeError,
     "expected target to hold integer class indices, got dtype float64"),
    (lambda: F.cross_entropy(Tensor(np.ones((2, 3))), np.array([0, 1, 2])), ValueError,
     r"expected logits \(N, C, ...\) and target \(N, ...\), got logits \(2, 3\) and target \(3,\)"),
    (lambda: F.cross_entropy(Tensor(np.ones((2, 3))), np.array([0, 1]), reduction="avg"), ValueError,
     "expected reduction to be one of .* got 'avg'"),
    (lambda: F.mse_loss(Tensor(np.ones((2, 3))), np.ones(3)), ValueError,
     r"expected target of shape \(2, 3\) \(the input's\), got \(3,\)"),
    (lambda: F.binary_cross_entropy_with_logits(Tensor(np.ones(2)), np.ones(3)), ValueError,
     r"expected target of shape \(2,\)"),
])
def test_bad_loss_input_raises_a_clear_error(call: Any, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        call()


def test_float32_losses_are_exact_at_the_edge_of_the_float32_range() -> None:
    """Logits of 1e38 (near float32's max): log-sum-exp and softplus keep every term finite."""
    x = Tensor(np.array([[1e38, -1e38], [-1e38, 1e38]], dtype=np.float32), requires_grad=True)
    ce = F.cross_entropy(x, np.array([0, 0]), reduction="none")
    np.testing.assert_array_equal(ce.data, np.float32([0, 2e38]))
    ce.sum().backward()
    np.testing.assert_array_equal(x.grad, [[0, 0], [-1, 1]])
    bce = F.binary_cross_entropy_with_logits(x, np.array([[1, 0], [0, 0]]), reduction="none")
    np.testing.assert_array_equal(bce.data, np.float32([[0, 0], [0, 1e38]]))
