"""_C.matmul (one 2-D GEMM on the kernels' OpenMP team) and the tape's MatMul dispatch to it."""
from __future__ import annotations

import numpy as np
import pytest

import minirnn
from minirnn import Tensor
from minirnn._extension import C as _C  # None without the extension: its tests skip (conftest)
from minirnn.ops import arithmetic

R = np.random.default_rng(11)
RTOL = {np.float32: 1e-5, np.float64: 1e-12}


def layout(x: np.ndarray, kind: str) -> np.ndarray:
    """x (same values) stored C-contiguous, F-contiguous (a transpose view), or strided."""
    if kind == "c":
        return np.ascontiguousarray(x)
    if kind == "f":
        return np.asfortranarray(x)
    wide = np.zeros((x.shape[0], 2 * x.shape[1]), x.dtype)
    wide[:, ::2] = x
    return wide[:, ::2]


@pytest.mark.extension
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("ta", [False, True])
@pytest.mark.parametrize("tb", [False, True])
@pytest.mark.parametrize("kind", ["c", "f", "strided"])
@pytest.mark.parametrize("M,K,N", [(7, 5, 9), (1, 6, 4), (2, 3, 8), (600, 300, 200)])
def test_matches_numpy(dtype, ta, tb, kind, M, K, N):
    """Every transpose combination and layout; (600, 300, 200) is big enough to use 2 threads."""
    a = R.standard_normal((K, M) if ta else (M, K)).astype(dtype)
    b = R.standard_normal((N, K) if tb else (K, N)).astype(dtype)
    out = _C.matmul(layout(a, kind), layout(b, kind), transpose_a=ta, transpose_b=tb)
    want = (a.T if ta else a).astype(np.float64) @ (b.T if tb else b).astype(np.float64)
    assert out.dtype == dtype and out.shape == (M, N) and out.flags.c_contiguous
    np.testing.assert_allclose(out, want, rtol=RTOL[dtype], atol=RTOL[dtype] * np.sqrt(K))


@pytest.mark.extension
def test_same_result_on_one_and_two_threads():
    a, b = R.standard_normal((512, 300)), R.standard_normal((300, 256))
    n = _C.num_threads()
    try:
        _C.set_num_threads(1)
        one = _C.matmul(a, b)
        _C.set_num_threads(2)
        two = _C.matmul(a, b)
    finally:
        _C.set_num_threads(n)
    np.testing.assert_allclose(one, two, rtol=1e-14)


@pytest.mark.extension
@pytest.mark.parametrize("M,K,N", [(3, 0, 4), (0, 5, 4), (3, 5, 0), (0, 0, 0)])
def test_empty_dims(M, K, N):
    out = _C.matmul(np.ones((M, K), np.float32), np.ones((K, N), np.float32))
    assert out.shape == (M, N) and out.dtype == np.float32
    assert not out.any()  # K = 0: zeros, never uninitialised memory


@pytest.mark.extension
@pytest.mark.parametrize("a,b,kwargs,exc,match", [
    (np.ones((2, 3), np.int64), np.ones((3, 2)), {}, TypeError, r"a: expected dtype float32 or float64, got int64"),
    (np.ones((2, 3)), np.ones((3, 2), np.float32), {}, TypeError,
     r"b: expected dtype float64 \(the dtype of a\), got float32"),
    (np.ones(3), np.ones((3, 2)), {}, ValueError, r"a: expected a 2-D array, got shape \(3,\)"),
    (np.ones((2, 3)), np.ones((2, 3, 2)), {}, ValueError, r"b: expected a 2-D array, got shape \(2, 3, 2\)"),
    (np.ones((2, 3)), np.ones((4, 2)), {}, ValueError, r"b: expected b.shape\[0\] == K = 3 \(a's columns\), got"),
    (np.ones((2, 3)), np.ones((2, 3)), {"transpose_a": True, "transpose_b": True}, ValueError,
     r"b: expected b.shape\[1\] == K = 2 \(a's rows\), got shape \(2, 3\)"),
    (None, np.ones((3, 2)), {}, TypeError, r"a: expected a float32 or float64 array, got None"),
    (np.ones((2, 3)), "x", {}, TypeError, r"b: expected dtype float64 \(the dtype of a\), got <U1"),
])
def test_bad_input(a, b, kwargs, exc, match):
    with pytest.raises(exc, match=match):
        _C.matmul(a, b, **kwargs)


@pytest.mark.extension
def test_byte_swapped_input():
    a, b = R.standard_normal((4, 3)), R.standard_normal((3, 5))
    np.testing.assert_allclose(_C.matmul(a.astype(">f8"), b), a @ b, rtol=1e-12)


# --- MatMul dispatch ---------------------------------------------------------------------

@pytest.fixture
def gemm_calls(monkeypatch):
    """The (a.shape, b.shape, transpose_a, transpose_b) of every _C.matmul call MatMul makes."""
    calls = []
    real = _C.matmul

    def spy(a, b, *, transpose_a=False, transpose_b=False):
        calls.append((a.shape, b.shape, transpose_a, transpose_b))
        return real(a, b, transpose_a=transpose_a, transpose_b=transpose_b)
    monkeypatch.setattr(arithmetic._C, "matmul", spy)
    return calls


def forward_backward(a: np.ndarray, b: np.ndarray) -> tuple[Tensor, Tensor, Tensor]:
    ta, tb = Tensor(a, requires_grad=True), Tensor(b, requires_grad=True)
    z = ta @ tb
    z.backward(np.ones(z.shape, z.data.dtype))
    return z, ta, tb


@pytest.mark.extension
@pytest.mark.parametrize("a_shape", [(6, 4), (2, 3, 4), (2, 0, 4)])
def test_dispatch_one_gemm(gemm_calls, a_shape):
    """2-D @ 2-D and contiguous (..., K) @ (K, N): forward, dA and dB all on _C.matmul, same values."""
    a, b = R.standard_normal(a_shape), R.standard_normal((4, 5))
    z, ta, tb = forward_backward(a, b)
    m = int(np.prod(a_shape[:-1]))
    assert gemm_calls == [((m, 4), (4, 5), False, False), ((m, 5), (4, 5), False, True),
                          ((m, 4), (m, 5), True, False)]
    g = np.ones(z.shape)
    np.testing.assert_allclose(z.data, a @ b, rtol=1e-12)
    np.testing.assert_allclose(ta.grad, g @ b.T, rtol=1e-12)
    np.testing.assert_allclose(tb.grad, (a.reshape(-1, 4).T @ g.reshape(-1, 5)), rtol=1e-12, atol=1e-12)


@pytest.mark.extension
@pytest.mark.parametrize("a,b", [
    (R.standard_normal((2, 3, 4)), R.standard_normal((2, 4, 5))),          # batched @ batched
    (R.standard_normal(4), R.standard_normal((4, 5))),                     # vector @ matrix
    (R.standard_normal((3, 4)), R.standard_normal(4)),                     # matrix @ vector
    (R.standard_normal((3, 2, 4)).transpose(1, 0, 2), R.standard_normal((4, 5))),  # non-contiguous 3-D
    (R.standard_normal((3, 4)).astype(np.float32), R.standard_normal((4, 5))),     # mixed dtypes
])
def test_dispatch_keeps_numpy(gemm_calls, a, b):
    z, ta, tb = forward_backward(a, b)
    assert gemm_calls == []
    np.testing.assert_allclose(z.data, a @ b, rtol=1e-6)


@pytest.mark.extension
def test_dispatch_integer_operands_stay_numpy(gemm_calls):
    a, b = np.arange(6).reshape(2, 3), np.arange(12).reshape(3, 4)
    assert np.array_equal((Tensor(a) @ Tensor(b)).data, a @ b) and gemm_calls == []


@pytest.mark.extension
def test_flag_forces_numpy(gemm_calls, monkeypatch):
    monkeypatch.setattr(arithmetic, "USE_KERNEL_GEMM", False)
    forward_backward(R.standard_normal((3, 4)), R.standard_normal((4, 5)))
    assert gemm_calls == []


@pytest.mark.parametrize("a_shape,b_view", [((3, 4), False), ((2, 3, 4), True)])
def test_gradcheck_kernel_path(a_shape, b_view):
    """float64 central differences through the kernel path; b as a transpose view (as in Linear)."""
    a = Tensor(R.standard_normal(a_shape), requires_grad=True)
    b = Tensor(R.standard_normal((5, 4)) if b_view else R.standard_normal((4, 5)), requires_grad=True)
    assert minirnn.gradcheck(lambda x, w: x @ (w.T if b_view else w), [a, b])


def test_float32_matches_torch():
    torch = pytest.importorskip("torch")
    x, w = R.standard_normal((3, 10, 16)).astype(np.float32), R.standard_normal((8, 16)).astype(np.float32)
    g = R.standard_normal((3, 10, 8)).astype(np.float32)
    tx, tw = Tensor(x, requires_grad=True), Tensor(w, requires_grad=True)
    z = tx @ tw.T
    z.backward(g)
    px, pw = torch.tensor(x, requires_grad=True), torch.tensor(w, requires_grad=True)
    pz = px @ pw.T
    pz.backward(torch.tensor(g))
    np.testing.assert_allclose(z.data, pz.detach().numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tx.grad, px.grad.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(tw.grad, pw.grad.numpy(), rtol=1e-5, atol=1e-5)


@pytest.mark.extension
def test_large_products_come_from_the_kernels_reuse_cache():
    """A product of 1 MB or more is allocated like the kernels' other large results (csrc/scratch.h):
    counted in use while the array lives, back in the cache once it is gone, same values."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((512, 64)), rng.standard_normal((64, 512))  # float64 (512, 512): 2 MiB
    base = _C.scratch_bytes_in_use()
    c = _C.matmul(a, b)
    assert _C.scratch_bytes_in_use() - base >= c.nbytes
    np.testing.assert_allclose(c, a @ b, rtol=1e-12, atol=1e-12)
    del c
    assert _C.scratch_bytes_in_use() == base
