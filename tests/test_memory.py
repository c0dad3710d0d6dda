"""A long training loop on the tape must not grow memory: backward frees what forward saved."""
from __future__ import annotations

import gc
import tracemalloc

import numpy as np
import pytest

import minirnn
from minirnn import Tensor

# Time steps, batch, input size, hidden size.  T is short because tracemalloc makes every Python
# allocation ~5x slower; a step still records ~25 nodes and frees them all.
T, B, I, H = 5, 4, 3, 8


def _train_step(params: list[Tensor], opt: minirnn.optim.Optimizer, x: np.ndarray, y: np.ndarray) -> float:
    """One step of a tanh RNN cell unrolled over T steps, MSE on the last state, clipping, Adam."""
    w_ih, w_hh, b = params
    opt.zero_grad()
    h = Tensor(np.zeros((B, H)))
    for t in range(T):
        h = (Tensor(x[t]) @ w_ih + h @ w_hh + b).tanh()
    loss = minirnn.functional.mse_loss(h, y)
    loss.backward()
    minirnn.optim.clip_grad_norm_(params, 1.0)
    opt.step()
    return loss.item()


def test_thousand_training_steps_do_not_grow_memory() -> None:
    rng = np.random.default_rng(0)
    params = [Tensor(rng.standard_normal((I, H)) * 0.5, requires_grad=True),
              Tensor(rng.standard_normal((H, H)) * 0.3, requires_grad=True),
              Tensor(np.zeros(H), requires_grad=True)]
    opt = minirnn.optim.Adam(params, lr=0.01)
    x, y = rng.standard_normal((T, B, I)), np.tanh(rng.standard_normal((B, H)))
    first_loss = _train_step(params, opt, x, y)
    for _ in range(2, 101):  # warm-up, untraced: caches and free lists reach their steady size
        _train_step(params, opt, x, y)
    # A full collection also empties CPython's free lists (tuples, lists, floats), which tracemalloc
    # counts as allocated; without it they would show as slow "growth" while they fill up.
    gc.collect()
    tracemalloc.start()  # from here on, traced memory = what was allocated after step 100 and is alive
    try:
        for step in range(101, 1001):
            last_loss = _train_step(params, opt, x, y)
            if step == 200:
                _, peak_101_200 = tracemalloc.get_traced_memory()
            if step == 900:
                gc.collect()
                tracemalloc.reset_peak()
        _, peak_901_1000 = tracemalloc.get_traced_memory()
        gc.collect()
        growth, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert last_loss < first_loss  # it really trains
    # A step saves ~25 arrays of ~256 bytes plus their ndarray/Node/Context objects (~20 KiB in
    # all). Leaking even one 256-byte array per step would add 900 * ~370 B ~ 330 KiB, a whole
    # graph per step ~18 MiB. 16 KiB leaves room for interpreter noise (measured: under 1 KiB).
    # Checked by mutation: keeping every Node alive fails here with ~34 MB, appending one extra
    # 256-byte array per step fails with ~340 KB.
    assert growth < 16 * 1024, growth
    # One step's graph alive at a time: the peak late in training matches the peak early on.
    assert peak_901_1000 < peak_101_200 + 16 * 1024, (peak_101_200, peak_901_1000)


@pytest.mark.extension
def test_fused_training_gives_back_every_kernel_buffer() -> None:
    """The kernels' temporaries and large result arrays (workspace, y, dx: 1 MB and more) come from
    the extension's reuse cache (csrc/scratch.h), which tracemalloc does not see. Its own count of
    bytes in use must come back to the starting level once a step's arrays are gone, and the cache
    must stay bounded however many steps run."""
    from minirnn import _C
    rng = np.random.default_rng(0)
    lstm = minirnn.nn.LSTM(64, 256)
    x = Tensor(rng.standard_normal((50, 32, 64)).astype(np.float32), requires_grad=True)
    base = _C.scratch_bytes_in_use()
    _C.reset_scratch_peak()
    for _ in range(20):
        out, _ = lstm(x)
        out.sum().backward()
        del out
        x.grad = None
        assert _C.scratch_bytes_in_use() == base
    peak = _C.reset_scratch_peak() - base
    assert peak >= 4 * 7 * 50 * 32 * 256  # the workspace alone: the count does see the arrays
    assert _C.cached_scratch_bytes() <= 2 * peak
