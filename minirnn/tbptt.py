"""Truncated backpropagation through time, TBPTT(k1, k2) (Williams & Peng, 1990).

A long sequence ``x_0 .. x_{T-1}`` is processed in order; every ``k1`` steps the parameters are
updated, and that update back-propagates through the last ``k2`` steps only:

* **k1** -- forward steps between updates. The loss of an update covers the ``k1`` new steps
  ``[a, b)`` (``b = a + k1``, or ``T`` for the last, shorter chunk).
* **k2** -- steps back-propagated (``k2 >= k1``). The update runs the model from the state at
  ``b - k2`` (detached: no gradient flows further back) over ``[b - k2, b)``, so the loss at
  every new step sees up to ``k2`` steps of history through the recurrence.

``k1 = k2 = k`` is the usual "split into chunks of k and carry the detached hidden state". With
``k2 > k1`` the overlapping ``k2 - k1`` steps are recomputed on each update (cost ``k2/k1`` of a
forward pass), which is the price for gradients reaching further back than one chunk. The hidden
state is carried across chunks and across calls (pass the returned ``state`` back in), always
detached, so the tape of one update never grows with the length of the sequence.

**Non-finite updates.** An update whose loss or joint gradient norm is inf or NaN is skipped (no
``optimizer.step()``: one bad batch must not leave every parameter NaN for ever) and counted by a
:class:`NonFiniteGuard`; after ``max_in_a_row`` skipped updates in a row, or as soon as a skip
finds the parameters themselves non-finite (skipping cannot repair them), the guard raises
:class:`NonFiniteError`. Pass one guard to every call to count across calls.

**Resuming.** ``tbptt`` keeps nothing between calls: to resume a run bit for bit, a caller saves
the model's and the optimizer's ``state_dict()``, the carried ``state`` (its arrays), its own
position in the data, the random generators it uses (``bit_generator.state`` of each, including
:func:`minirnn.random.default_generator` when the model has dropout) and ``guard.state_dict()``;
``python -m minirnn train charlm`` does exactly that (:mod:`minirnn.cli`).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Iterable, Mapping, NamedTuple, Protocol

import numpy as np

from .optim import clip_grad_norm_
from .optim.clip import grad_norm
from .tensor import Tensor

State = Any  # None, a Tensor, or a (nested) tuple of Tensors, e.g. LSTM's (h, c)
Model = Callable[[Any, State], tuple[Tensor, State]]
LossFn = Callable[[Tensor, Any], Tensor]


class Optimizer(Protocol):
    def zero_grad(self) -> None: ...
    def step(self) -> None: ...


class TBPTTResult(NamedTuple):
    losses: list[float]  # the loss of each update, in order (inf/NaN for a skipped one)
    state: State  # the detached state after the last step, to carry into the next call
    skipped: int = 0  # updates of this call skipped for a non-finite loss or gradient norm


class NonFiniteError(FloatingPointError):
    """Training stopped: too many updates in a row were non-finite, or the parameters are."""


class NonFiniteGuard:
    """Decides whether an update may be applied; counts the skipped ones (``skipped`` in all,
    ``in_a_row`` since the last applied one) and raises :class:`NonFiniteError` after
    ``max_in_a_row`` in a row."""

    def __init__(self, max_in_a_row: int = 5):
        self.max_in_a_row = _check_k("max_in_a_row", max_in_a_row)
        self.skipped = 0
        self.in_a_row = 0

    def check(self, loss: float, grad_norm: float, parameters: Iterable[Tensor] = ()) -> bool:
        """True: apply the update. False: skip it (counted). Raises NonFiniteError when this is
        the ``max_in_a_row``-th skip in a row or ``parameters`` hold inf/NaN."""
        if math.isfinite(loss) and math.isfinite(grad_norm):
            self.in_a_row = 0
            return True
        self.skipped += 1
        self.in_a_row += 1
        what = f"loss {loss}, gradient norm {grad_norm}"
        params = list(parameters)
        broken = sum(not np.isfinite(p.data).all() for p in params)
        if broken:
            raise NonFiniteError(f"the parameters are not finite ({broken} of {len(params)} hold inf or NaN): "
                                 f"an earlier update made them so (learning rate too high?); last {what}")
        if self.in_a_row >= self.max_in_a_row:
            raise NonFiniteError(f"{self.in_a_row} updates in a row had a non-finite loss or gradient norm "
                                 f"(last: {what}); stopping after {self.skipped} skipped in all")
        return False

    def state_dict(self) -> dict[str, int]:
        return {"max_in_a_row": self.max_in_a_row, "skipped": self.skipped, "in_a_row": self.in_a_row}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        if not isinstance(state, Mapping) or set(state) != {"max_in_a_row", "skipped", "in_a_row"}:
            raise ValueError(f"guard: expected keys max_in_a_row, skipped, in_a_row, got {state!r}")
        values = {k: int(v) for k, v in state.items() if isinstance(v, (int, np.integer)) and v >= 0}
        if len(values) != 3:
            raise ValueError(f"guard: expected ints >= 0, got {dict(state)!r}")
        self.max_in_a_row = _check_k("max_in_a_row", values["max_in_a_row"])
        self.skipped, self.in_a_row = values["skipped"], values["in_a_row"]


def detach_state(state: State) -> State:
    """``state`` with every Tensor detached (None, Tensors and nested tuples/lists allowed)."""
    if state is None:
        return None
    if isinstance(state, Tensor):
        return state.detach()
    if isinstance(state, (tuple, list)):
        return type(state)(detach_state(s) for s in state)
    raise TypeError(f"state: expected None, a Tensor or a tuple of Tensors, got {type(state).__name__}")


def _check_k(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def clipped_grad_norm(params: list[Tensor], max_norm: float | None) -> float:
    """The joint gradient norm, clipping the gradients to ``max_norm`` (None: not) when it is finite."""
    if max_norm is None:
        return grad_norm(params)
    try:
        return clip_grad_norm_(params, max_norm, error_if_nonfinite=True)
    except RuntimeError:  # non-finite: the update will be skipped; measure it for the report
        return grad_norm(params)


def tbptt(model: Model, loss_fn: LossFn, optimizer: Optimizer, inputs: Any, targets: Any, k1: int,
          k2: int | None = None, state: State = None, max_norm: float | None = None,
          parameters: Iterable[Tensor] | None = None, guard: NonFiniteGuard | None = None) -> TBPTTResult:
    """Train on one long sequence with TBPTT(k1, k2); returns the per-update losses and the state.

    Args:
        model: ``model(x, state) -> (output, new_state)`` for a time-major slice ``x`` (t, ...)
            of ``inputs``; ``state=None`` means the model's initial state.
        loss_fn: ``loss_fn(output, target) -> scalar Tensor``, the MEAN loss over the slice's
            steps (the slices of one update are weighted by their number of steps).
        optimizer: anything with ``zero_grad()`` and ``step()``.
        inputs, targets: arrays (or Tensors) indexed by time on axis 0, same length T.
        k1, k2: see the module doc; ``k2`` defaults to ``k1`` and must be ``>= k1``.
        state: the state before ``inputs[0]`` (carried from a previous call), or None.
        max_norm: clip the joint gradient norm of ``parameters`` to this before each step.
        parameters: the parameters whose gradient norm is clipped and checked (default: those of
            ``optimizer.param_groups`` if it has them; else only the loss is checked).
        guard: counts skipped (non-finite) updates across calls; default: a new
            ``NonFiniteGuard()`` for this call (5 in a row raise NonFiniteError).
    """
    k1 = _check_k("k1", k1)
    k2 = k1 if k2 is None else _check_k("k2", k2)
    if k2 < k1:
        raise ValueError(f"k2: expected k2 >= k1 = {k1} (steps back-propagated >= steps per update), got {k2}")
    inputs = inputs.data if isinstance(inputs, Tensor) else inputs
    targets = targets.data if isinstance(targets, Tensor) else targets
    T = len(inputs)
    if len(targets) != T:
        raise ValueError(f"targets: expected {T} steps (as inputs), got {len(targets)}")
    if max_norm is not None and parameters is None:
        raise ValueError("parameters: expected the model's parameters when max_norm is given, got None")
    if parameters is None:
        parameters = [p for g in getattr(optimizer, "param_groups", ()) for p in g["params"]]
    params = list(parameters)
    guard = NonFiniteGuard() if guard is None else guard
    skipped_before = guard.skipped
    split = k1 - k2 % k1  # offset in each chunk where a later update's window starts (k1: none)
    states = {0: detach_state(state)}  # detached states at the positions windows start from
    losses = []
    for a in range(0, T, k1):
        b = min(a + k1, T)
        start = max(0, a + k1 - k2)
        s = states[start]
        if start < a:  # history: gradients flow through it into the state, not into a loss
            _, s = model(inputs[start:a], s)
        cuts = [a, a + split, b] if a + split < b else [a, b]
        loss: Any = None  # (a Tensor after the loop: there is at least one cut)
        for lo, hi in zip(cuts, cuts[1:]):
            out, s = model(inputs[lo:hi], s)
            part = loss_fn(out, targets[lo:hi]) * ((hi - lo) / (b - a))
            loss = part if loss is None else loss + part
            states[hi] = detach_state(s)
        optimizer.zero_grad()
        value, norm = float(loss.item()), math.nan
        if math.isfinite(value):  # (a non-finite loss: no backward, the update is skipped)
            loss.backward()
            norm = clipped_grad_norm(params, max_norm)
        if guard.check(value, norm, params):
            optimizer.step()
        losses.append(value)
        for key in [k for k in states if k < b + k1 - k2]:  # no later window starts before here
            del states[key]
    return TBPTTResult(losses, states[T], guard.skipped - skipped_before)
