"""One shared helper: run the same computation in minirnn and PyTorch and compare everything.

Usage::

    check_against_torch(lambda x, w: x @ w, lambda x, w: x @ w, [x_array, w_array])

``inputs`` are NumPy arrays (float arrays become float64 inputs that require grad in both
libraries; integer/bool arrays are passed as non-differentiable constants: minirnn gets the
array itself, torch gets ``torch.from_numpy``).  Both functions return a tensor or a
tuple/list of tensors.  The helper checks that the forward values agree, then back-propagates
the same random weights ``w_k`` through every output (``L = sum_k <w_k, out_k>``) and checks
that the gradient of every differentiable input agrees.  Failures raise AssertionError naming
the output or input.  Call it from tests that did ``pytest.importorskip("torch")``.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

import minirnn


def _as_list(out: Any) -> list:
    return list(out) if isinstance(out, (tuple, list)) else [out]


def check_against_torch(minirnn_fn: Callable[..., Any], torch_fn: Callable[..., Any],
                        inputs: Sequence[np.ndarray], atol: float = 1e-9, rtol: float = 1e-7,
                        seed: int = 0) -> None:
    """Assert that values and all input gradients of ``minirnn_fn`` and ``torch_fn`` agree (float64).

    Default tolerances (atol 1e-9, rtol 1e-7) are far tighter than 1e-6: both libraries compute
    in float64, so only summation order differs.
    """
    import torch

    arrays = [np.asarray(a) for a in inputs]
    ours = [minirnn.Tensor(a.astype(np.float64), requires_grad=True) if a.dtype.kind == "f"
            else minirnn.Tensor(a) for a in arrays]
    theirs = [torch.tensor(a.astype(np.float64), requires_grad=True) if a.dtype.kind == "f"
              else torch.from_numpy(a) for a in arrays]
    out_ours, out_theirs = _as_list(minirnn_fn(*ours)), _as_list(torch_fn(*theirs))
    if len(out_ours) != len(out_theirs):
        raise AssertionError(f"minirnn returned {len(out_ours)} outputs, torch {len(out_theirs)}")
    rng = np.random.default_rng(seed)
    weights = []
    for k, (o, t) in enumerate(zip(out_ours, out_theirs)):
        expected = t.detach().numpy()
        if o.shape != expected.shape:
            raise AssertionError(f"output {k}: minirnn shape {o.shape}, torch shape {expected.shape}")
        np.testing.assert_allclose(o.data, expected, atol=atol, rtol=rtol, err_msg=f"output {k} values")
        weights.append(rng.standard_normal(o.shape))
    differentiable = [(o, t, w) for o, t, w in zip(out_ours, out_theirs, weights) if t.requires_grad]
    if not differentiable:
        return
    for o, _, w in differentiable:
        o.backward(w, retain_graph=True)
    torch.autograd.backward([t for _, t, _ in differentiable],
                            [torch.from_numpy(w) for _, _, w in differentiable])
    for i, (x, tx) in enumerate(zip(ours, theirs)):
        if not tx.requires_grad:
            continue
        expected = np.zeros(tx.shape) if tx.grad is None else tx.grad.numpy()
        got = np.zeros(x.shape) if x.grad is None else x.grad
        np.testing.assert_allclose(got, expected, atol=atol, rtol=rtol, err_msg=f"gradient of input {i}")


def torch_rnn(mode: str, *args: Any, cell: bool = False, dtype: Any = np.float64, **kwargs: Any) -> Any:
    """The torch peer of minirnn's ``mode`` ("lstm", "gru", "rnn_tanh", "rnn_relu"):
    ``torch.nn.LSTM/GRU/RNN`` (their cells with ``cell=True``) in ``dtype``, made with
    ``args``/``kwargs`` (``nonlinearity`` is filled in for the Elman modes)."""
    import torch

    kind = getattr(torch.nn, {"lstm": "LSTM", "gru": "GRU"}.get(mode, "RNN") + ("Cell" if cell else ""))
    extra = {"nonlinearity": mode[4:]} if mode.startswith("rnn") else {}
    torch_dtype = torch.float64 if np.dtype(dtype) == np.float64 else torch.float32
    return kind(*args, dtype=torch_dtype, **extra, **kwargs)


def assert_close_to_scale(actual: np.ndarray, expected: np.ndarray, rtol: float, what: str) -> None:
    """Assert equal shapes and ``|actual - expected| <= rtol * max|expected|`` elementwise.

    A tolerance relative to the array's scale (its largest magnitude), for results computed
    differently in the two libraries (float32 kernels, other summation orders), where a
    per-element relative test would fail on entries that are near zero by cancellation. There is
    no absolute floor: an array of small values is held to the same relative accuracy, and an
    all-zero ``expected`` must be matched exactly. ``what`` names the array.
    """
    actual, expected = np.asarray(actual), np.asarray(expected)
    if actual.shape != expected.shape:
        raise AssertionError(f"{what}: shape {actual.shape}, expected {expected.shape}")
    scale = float(np.abs(expected).max()) if expected.size else 0.0
    np.testing.assert_allclose(actual, expected, rtol=0, atol=rtol * scale, err_msg=what)
