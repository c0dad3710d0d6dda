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


class Counting(minirnn.optim.SGD):
    """SGD that counts its steps."""

    def __init__(self, params, lr):
        super().__init__(params, lr=lr)
        self.steps = 0

    def step(self):
        self.steps += 1
        super().step()


def test_non_finite_updates_are_skipped_and_counted():
    """A NaN target makes that update's loss NaN: it is skipped (the parameters stay finite and
    the later updates still train); a guard counts across calls (issue 24, item 2)."""
    from minirnn.tbptt import NonFiniteGuard
    x, y = data()
    y = y.copy()
    y[4] = np.nan  # the second update of k1 = 3 (steps 3..5)
    model, params = make_rnn()
    opt = Counting(params, 0.1)
    guard = NonFiniteGuard()
    result = tbptt(model, loss_fn, opt, x, y, 3, max_norm=1.0, parameters=params, guard=guard)
    assert result.skipped == 1 and opt.steps == 3 and np.isnan(result.losses[1]) and guard.skipped == 1
    assert guard.in_a_row == 0 and all(np.isfinite(p.data).all() for p in params)
    y[:] = np.inf  # without max_norm (the gradient norm is still checked) and parameters from the optimizer
    with pytest.raises(FloatingPointError, match="5 updates in a row had a non-finite loss"):
        tbptt(model, loss_fn, opt, np.concatenate([x] * 2), np.concatenate([y] * 2), 3, guard=guard)
    assert guard.skipped == 6 and opt.steps == 3 and all(np.isfinite(p.data).all() for p in params)


def test_a_non_finite_gradient_norm_is_skipped_and_broken_parameters_stop_at_once():
    from minirnn.tbptt import NonFiniteError, NonFiniteGuard
    x, y = data()
    model, params = make_rnn()
    opt = Counting(params, 0.1)
    guard = NonFiniteGuard(max_in_a_row=2)
    assert guard.check(1.0, float("inf")) is False and guard.check(1.0, 2.0) is True and guard.skipped == 1
    params[0].data[0, 0] = np.nan
    with pytest.raises(NonFiniteError, match="the parameters are not finite .1 of 2 hold inf or NaN"):
        tbptt(model, loss_fn, opt, x, y, 3, guard=guard)
    assert opt.steps == 0
    with pytest.raises(ValueError, match="max_in_a_row: expected a positive int"):
        NonFiniteGuard(0)
    restored = NonFiniteGuard()
    restored.load_state_dict(guard.state_dict())
    assert restored.state_dict() == {"max_in_a_row": 2, "skipped": 2, "in_a_row": 1}
    with pytest.raises(ValueError, match="guard: expected ints >= 0"):
        restored.load_state_dict({"max_in_a_row": 2, "skipped": -1, "in_a_row": 0})
