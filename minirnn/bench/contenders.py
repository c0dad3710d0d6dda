"""minirnn's contenders on a :class:`Problem`: the fused layer, the same layer unrolled with
cells on the tape, and the NumPy reference forward + BPTT.

Each builder does its set-up once (layer made, weights loaded, inputs wrapped) and returns a
zero-argument callable doing one step: training (forward, then backward of ``sum(y * dy)``
giving the gradients of every weight and of x) or inference (forward under ``no_grad``).
"""
from __future__ import annotations

from typing import Any, Callable, cast

import numpy as np

from .. import nn, ops, reference
from ..autograd import no_grad
from ..modes import FAMILY
from ..tensor import Tensor
from .problem import Problem

Step = Callable[[], None]


def make_module(problem: Problem, cell: bool, **options: Any) -> Any:
    """A minirnn layer (or cell) of ``problem``'s mode and size holding ``problem.weights``;
    ``options`` go to its constructor."""
    s, mode = problem.shape, problem.mode
    module: Any
    if mode == "lstm" and problem.proj_size:
        module = nn.LSTM(s.I, s.H, proj_size=problem.proj_size, **options)
    elif mode == "lstm":
        module = (nn.LSTMCell if cell else nn.LSTM)(s.I, s.H, **options)
    elif FAMILY[mode] == "gru":
        module = (nn.GRUCell if cell else nn.GRU)(s.I, s.H, reset_after=mode == "gru", **options)
    else:
        module = (nn.RNNCell if cell else nn.RNN)(s.I, s.H, nonlinearity=mode.removeprefix("rnn_"), **options)
    module.load_state_dict({name.removesuffix("_l0"): w for name, w in problem.weights.items()}
                           if cell else problem.weights)
    return module


def _step(forward: Callable[[Tensor], Tensor], params: list[Tensor], x: Tensor, dy: np.ndarray,
          train: bool) -> Step:
    """Wrap ``forward(x) -> y`` as a training step (grads zeroed, ``y.backward(dy)``) or an
    inference step (under ``no_grad``)."""
    def training_step() -> None:
        for p in params:
            p.grad = None
        x.grad = None
        forward(x).backward(dy)

    def inference() -> None:
        with no_grad():
            forward(x)

    return training_step if train else inference


def fused_step(problem: Problem, train: bool) -> Step:
    """minirnn's fused layer (``nn.LSTM`` / ``GRU`` / ``RNN``): one tape node per layer call,
    the whole time loop in C++; ``problem.lengths`` goes to its ``lengths=`` argument."""
    layer = make_module(problem, cell=False)
    lengths = problem.lengths

    def forward(x: Tensor) -> Tensor:
        return layer(x, lengths=lengths)[0]

    return _step(forward, list(layer.parameters()), Tensor(problem.x, requires_grad=train), problem.dy, train)


def unroll(cell: Callable[[Any, Any], Any], x: Any, h0: Any, lstm: bool, stack: Callable[[list[Any]], Any]) -> Any:
    """``h = cell(x[t], h)`` for every t from ``h0`` (an LSTM's state: the pair ``(h0, h0)``), the
    hidden states stacked to (T, B, H). Any framework: ``stack`` is its stack (minirnn's or torch's)."""
    state = (h0, h0) if lstm else h0
    outputs = []
    for t in range(len(x)):
        state = cell(x[t], state)
        outputs.append(state[0] if lstm else state)
    return stack(outputs)


def cells_step(problem: Problem, train: bool) -> Step:
    """The same layer unrolled in Python: one cell call per time step, every op on the tape."""
    cell = make_module(problem, cell=True)
    s = problem.shape
    h0 = Tensor(np.zeros((s.B, s.H), np.float32))

    def forward(x: Tensor) -> Tensor:
        return unroll(cell, x, h0, problem.mode == "lstm", ops.stack)

    return _step(forward, list(cell.parameters()), Tensor(problem.x, requires_grad=train), problem.dy, train)


def numpy_step(problem: Problem, train: bool) -> Step:
    """The NumPy reference (:mod:`minirnn.reference`): forward, then hand-written BPTT."""
    s, w = problem.shape, problem.weights
    zero = np.zeros((s.B, s.H), np.float32)  # h0 and c0, and the (unused) grads of h_n and c_n
    zero_c = zero if problem.mode == "lstm" else None
    args = (problem.mode, problem.x, w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"], w["bias_hh_l0"],
            zero, zero_c, problem.lengths)

    def training_step() -> None:
        saved = reference.rnn_forward(*args)[3]  # (need_workspace: a SavedLayer, never None)
        reference.rnn_backward(cast(reference.SavedLayer, saved), problem.dy, zero, zero_c)

    def inference() -> None:
        reference.rnn_forward(*args)

    return training_step if train else inference
