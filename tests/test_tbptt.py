"""Truncated BPTT: the gradient of each update equals full backprop over its k2-step window."""
import numpy as np
import pytest

import minirnn
from minirnn import Tensor
from minirnn.tbptt import detach_state, tbptt

T, B, I, H = 11, 2, 3, 4


class Recorder:
    """An 'optimizer' that records the gradient at each step instead of updating."""

    def __init__(self, params):
        self.params, self.grads = params, []

    def zero_grad(self):
        for p in self.params:
            p.grad = None

    def step(self):
        self.grads.append([p.grad.copy() for p in self.params])


def make_rnn(seed=0):
    rng = np.random.default_rng(seed)
    w_ih = Tensor(rng.normal(size=(I, H)) * 0.5, requires_grad=True)
    w_hh = Tensor(rng.normal(size=(H, H)) * 0.5, requires_grad=True)

    def model(x, h):
        h = Tensor(np.zeros((B, H))) if h is None else h
        outs = []
        for t in range(len(x)):
            h = (Tensor(x[t]) @ w_ih + h @ w_hh).tanh()
            outs.append(h)
        return minirnn.stack(outs), h
    return model, [w_ih, w_hh]


def make_fused_lstm(seed=0):
    """The fused nn.LSTM (one tape node per call) with its (h, c) state: a tuple to carry."""
    minirnn.manual_seed(seed)
    lstm = minirnn.nn.LSTM(I, H, dtype=np.float64)

    def model(x, state):
        return lstm(np.asarray(x), state)
    return model, list(lstm.parameters())


def states_of(state):
    return [s.data for s in (state if isinstance(state, tuple) else (state,))]


def loss_fn(out, y):
    return ((out - Tensor(y)) ** 2).mean()


def data():
    rng = np.random.default_rng(1)
    return rng.normal(size=(T, B, I)), rng.normal(size=(T, B, H))


def window_grad(model, params, x, y, start, a, b):
    """Reference: full BPTT from a zero state at 0, cut at `start`, loss mean over [a, b)."""
    with minirnn.no_grad():
        _, h = model(x[:start], None) if start else (None, None)
    out, _ = model(x[start:b], h)
    for p in params:
        p.grad = None
    loss_fn(out[a - start:], y[a:b]).backward()
    return [p.grad.copy() for p in params]


@pytest.mark.parametrize("make", [make_rnn, make_fused_lstm])
@pytest.mark.parametrize("k1,k2", [(3, 3), (2, 5), (4, 6), (11, 11), (20, 30)])
def test_each_update_matches_bptt_over_its_window(k1, k2, make):
    x, y = data()
    model, params = make()
    rec = Recorder(params)
    result = tbptt(model, loss_fn, rec, x, y, k1, k2)
    starts = list(range(0, T, k1))
    assert len(result.losses) == len(rec.grads) == len(starts)
    for a, got in zip(starts, rec.grads):
        want = window_grad(model, params, x, y, max(0, a + k1 - k2), a, min(a + k1, T))
        for g, w in zip(got, want):
            np.testing.assert_allclose(g, w, rtol=1e-10, atol=1e-12)
    _, full = model(x, None)
    for got, want in zip(states_of(result.state), states_of(full)):  # the state is carried
        np.testing.assert_allclose(got, want, rtol=1e-12)
    assert all(s.grad_fn is None for s in (result.state if isinstance(result.state, tuple) else (result.state,)))


@pytest.mark.parametrize("make", [make_rnn, make_fused_lstm])
def test_state_carries_across_calls(make):
    x, y = data()
    model, params = make()
    first = tbptt(model, loss_fn, Recorder(params), x[:5], y[:5], 2)
    second = tbptt(model, loss_fn, Recorder(params), x[5:], y[5:], 2, state=first.state)
    _, full = model(x, None)
    for got, want in zip(states_of(second.state), states_of(full)):
        np.testing.assert_allclose(got, want, rtol=1e-12)


def test_training_with_sgd_and_clipping_lowers_the_loss():
    x, y = data()
    model, params = make_rnn()
    opt = minirnn.optim.SGD(params, lr=0.1)
    losses = [np.mean(tbptt(model, loss_fn, opt, x, y, 4, 6, max_norm=1.0, parameters=params).losses)
              for _ in range(15)]
    assert losses[-1] < 0.8 * losses[0]


def test_arguments_are_checked():
    x, y = data()
    model, params = make_rnn()
    rec = Recorder(params)
    with pytest.raises(ValueError, match="k1: expected a positive int, got 0"):
        tbptt(model, loss_fn, rec, x, y, 0)
    with pytest.raises(ValueError, match="k2: expected k2 >= k1 = 3"):
        tbptt(model, loss_fn, rec, x, y, 3, 2)
    with pytest.raises(ValueError, match="targets: expected 11 steps"):
        tbptt(model, loss_fn, rec, x, y[:4], 3)
    with pytest.raises(ValueError, match="parameters: expected"):
        tbptt(model, loss_fn, rec, x, y, 3, max_norm=1.0)
    with pytest.raises(TypeError, match="state: expected None, a Tensor"):
        detach_state(3)
    assert detach_state((Tensor(np.ones(2), requires_grad=True) * 2, None))[0].grad_fn is None
