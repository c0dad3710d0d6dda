"""The PyTorch CPU peer: ``torch.nn.LSTM`` / ``GRU`` / ``RNN`` on the same arrays.

torch is optional: :func:`available` says whether it imports, and the harness skips this
contender with a note when it does not. Every step callable is built once (weights loaded, input
tensors made) so only the step itself is timed.
"""
from __future__ import annotations

import importlib.util
from typing import Any, Callable

from .problem import Problem


def available() -> bool:
    """True when torch can be imported."""
    return importlib.util.find_spec("torch") is not None


def version() -> str | None:
    """torch's version, or None without torch."""
    if not available():
        return None
    import torch
    return torch.__version__


def make_layer(problem: Problem, cell: bool = False) -> Any:
    """A torch layer (or, with ``cell``, a ``torch.nn.LSTMCell`` / ``GRUCell`` / ``RNNCell``) of
    ``problem``'s mode and size holding ``problem.weights``."""
    import torch
    s, nn = problem.shape, torch.nn
    layer: Any
    if problem.proj_size:
        layer = nn.LSTM(s.I, s.H, proj_size=problem.proj_size)
    elif problem.mode == "lstm":
        layer = (nn.LSTMCell if cell else nn.LSTM)(s.I, s.H)
    elif problem.mode == "gru":
        layer = (nn.GRUCell if cell else nn.GRU)(s.I, s.H)
    else:
        layer = (nn.RNNCell if cell else nn.RNN)(s.I, s.H, nonlinearity=problem.mode.removeprefix("rnn_"))
    layer.load_state_dict({(k.removesuffix("_l0") if cell else k): torch.from_numpy(v)
                           for k, v in problem.weights.items()})
    return layer


def step(problem: Problem, train: bool, packed: bool = False) -> Callable[[], None]:
    """One torch step on ``problem``: training (forward, ``y.backward(dy)``; grads of every
    weight and of x) or inference (forward under ``torch.no_grad``).

    With ``packed`` the batch goes through ``pack_padded_sequence`` / ``pad_packed_sequence``
    using ``problem.lengths`` (torch's variable-length path); otherwise x is used as padded.
    """
    import torch
    from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence
    if packed and problem.lengths is None:
        raise ValueError("torch_peer.step: expected a problem with lengths for packed=True, got lengths=None")
    layer = make_layer(problem)
    x = torch.from_numpy(problem.x).requires_grad_(train)
    dy = torch.from_numpy(problem.dy)
    lengths = torch.from_numpy(problem.lengths) if packed else None

    def forward() -> Any:
        if not packed:
            return layer(x)[0]
        out = layer(pack_padded_sequence(x, lengths, enforce_sorted=False))[0]
        return pad_packed_sequence(out, total_length=x.shape[0])[0]

    def training_step() -> None:
        layer.zero_grad(set_to_none=True)
        x.grad = None
        forward().backward(dy)

    def inference() -> None:
        with torch.no_grad():
            forward()

    return training_step if train else inference

