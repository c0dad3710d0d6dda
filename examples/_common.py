"""What every example shares: the command line (``--quick``), seeding, the training loop, held-out accuracy."""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple

import numpy as np

import minirnn
from minirnn import no_grad, optim
from minirnn.tbptt import NonFiniteGuard, clipped_grad_norm
from minirnn.tensor import Tensor


def parse_quick(description: str) -> bool:
    """``--quick``: the shortened run the tests use."""
    return _parser(description).parse_args().quick


def parse_quick_and_autobatch(description: str) -> tuple[bool, bool]:
    """``--quick`` and ``--no-autobatch`` (run the tape eagerly, one node at a time)."""
    p = _parser(description)
    p.add_argument("--no-autobatch", action="store_true",
                   help="run the recursion eagerly instead of inside minirnn.autobatch()")
    args = p.parse_args()
    return args.quick, not args.no_autobatch


def _parser(description: str) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--quick", action="store_true", help="a shortened run (seconds, for the tests)")
    return p


class Trace(NamedTuple):
    """What :func:`fit` saw: the loss and the gradient norm (before clipping) of every update,
    and the indices of the updates skipped because one of them was not finite."""
    losses: list[float]
    grad_norms: list[float]
    skipped: list[int] = []


def fit(loss_step: Callable[[int], Tensor], params: Iterable[Tensor], steps: int, lr: float = 3e-3,
        max_norm: float | None = 1.0, desc: str = "train", optimizer: type[optim.Optimizer] = optim.Adam,
        max_nonfinite: int = 5, **optimizer_options: float) -> Trace:
    """``optimizer(params, lr=lr, **optimizer_options)`` (Adam by default) on ``loss_step(i)`` (the
    loss of mini-batch i) for ``steps`` updates, clipping the joint gradient norm to ``max_norm``
    (None: no clipping); a tqdm bar on a terminal. An update whose loss or gradient norm is not
    finite is skipped (and reported); ``max_nonfinite`` in a row, or parameters that are no longer
    finite, raise minirnn.tbptt.NonFiniteError."""
    from tqdm import tqdm
    params = list(params)
    opt = optimizer(params, lr=lr, **optimizer_options)
    guard = NonFiniteGuard(max_nonfinite)
    trace = Trace([], [], [])
    for i in tqdm(range(steps), desc=desc, disable=not sys.stderr.isatty(), leave=False):
        loss = loss_step(i)
        opt.zero_grad()
        loss.backward()
        trace.grad_norms.append(clipped_grad_norm(params, max_norm))
        trace.losses.append(loss.item())
        if guard.check(trace.losses[-1], trace.grad_norms[-1], params):
            opt.step()
        else:
            trace.skipped.append(i)
    if trace.skipped:
        print(f"{desc}: skipped {len(trace.skipped)} of {steps} updates with a non-finite loss or gradient norm",
              file=sys.stderr)
    return trace


def majority_rate(labels: np.ndarray) -> float:
    """Accuracy of always predicting the most frequent of the (integer) labels: the trivial baseline."""
    return float(np.bincount(labels).max() / labels.size)


def held_out_accuracy(title: str, model: Callable[[Any], Tensor],
                      sets: dict[str, tuple[Any, np.ndarray]]) -> dict[str, float]:
    """Accuracy of ``model``'s argmax (it maps inputs to logits (B, C)) on each named held-out set
    ``(inputs, labels (B,))``; prints them on one line, each beside its majority-class baseline."""
    result = {}
    with no_grad():
        for name, (inputs, labels) in sets.items():
            result[name] = float((model(inputs).data.argmax(-1) == labels).mean())
    print(f"{title}: held-out accuracy, " + "; ".join(
        f"{name}: {result[name]:.3f} (majority class {majority_rate(labels):.3f})"
        for name, (_, labels) in sets.items()))
    return result


def new_figure(**options: Any) -> Any:
    """A matplotlib ``Figure(**options)`` (the ``plot`` extra), or None, said on stdout, without matplotlib."""
    try:
        from matplotlib.figure import Figure
    except ImportError as err:
        print(f"no picture drawn: {err}")
        return None
    return Figure(**options)


def save_picture(fig: Any, path: Path) -> None:
    """Write ``fig`` to ``path`` (making its folder) and say where."""
    path.parent.mkdir(exist_ok=True)
    fig.savefig(path)
    print(f"picture: {path}")


def seed(n: int = 0) -> np.random.Generator:
    """Seed minirnn's default generator (init, dropout) and return a data generator."""
    minirnn.manual_seed(n)
    return np.random.default_rng(n + 1)
