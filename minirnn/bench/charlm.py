"""End-to-end: characters per second training a character language model, minirnn vs torch.

Model (the same in both, same initial weights, same hyper-parameters):
    embedding (V, E) -> 2-layer LSTM (E -> H -> H) -> Linear (H -> V) -> cross-entropy
and one Adam step per batch of B sequences of T characters: chars/s = T * B / seconds per step.
The text is minirnn's own Python source, so the run needs no download and is reproducible.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .. import _C
from .floor import floor_step
from .problem import Shape, make_problem
from .threads import use_threads
from .timing import Contender, time_interleaved


@dataclass(frozen=True)
class CharLMConfig:
    """Model and optimiser hyper-parameters shared by both frameworks."""

    T: int = 100
    B: int = 32
    embed: int = 32
    hidden: int = 256
    layers: int = 2
    lr: float = 2e-3


def corpus() -> tuple[np.ndarray, int]:
    """minirnn's own source text as int64 character ids, and the vocabulary size V."""
    package = Path(__file__).resolve().parent.parent
    text = "".join(p.read_text(encoding="utf-8") for p in sorted(package.rglob("*.py")))
    chars, ids = np.unique(np.frombuffer(text.encode("utf-8"), np.uint8), return_inverse=True)
    return ids.astype(np.int64), len(chars)


def batches(ids: np.ndarray, cfg: CharLMConfig, count: int, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """``count`` (inputs, targets) pairs, each (T, B) int64, from seeded random offsets."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(count):
        starts = rng.integers(0, len(ids) - cfg.T - 1, size=cfg.B)
        window = np.stack([ids[s:s + cfg.T + 1] for s in starts], axis=1)  # (T+1, B)
        out.append((window[:-1].copy(), window[1:].copy()))
    return out


def _cycle(items: list[Any]) -> Callable[[], Any]:
    state = {"i": 0}

    def next_item() -> Any:
        item = items[state["i"] % len(items)]
        state["i"] += 1
        return item
    return next_item


def torch_charlm(vocab: int, embed: int, hidden: int, layers: int) -> Any:
    """:class:`minirnn.charlm.CharLM` in torch: a ``ModuleDict`` of ``embed`` (Embedding), ``lstm``
    (LSTM) and ``head`` (Linear), so the two models' state dicts have the same names."""
    import torch
    return torch.nn.ModuleDict({"embed": torch.nn.Embedding(vocab, embed), "lstm": torch.nn.LSTM(embed, hidden, layers),
                                "head": torch.nn.Linear(hidden, vocab)})


def torch_trainer(cfg: CharLMConfig, vocab: int,
                  data: list[tuple[np.ndarray, np.ndarray]]) -> tuple[Any, Callable[[], float]]:
    """The torch model (parameter names as :class:`minirnn.charlm.CharLM`'s) and a callable doing
    one training step (returns the loss)."""
    import torch
    torch.manual_seed(0)
    model = torch_charlm(vocab, cfg.embed, cfg.hidden, cfg.layers)
    opt = torch.optim.Adam(model.parameters(), lr=cfg.lr)
    batch = _cycle([(torch.from_numpy(x), torch.from_numpy(y)) for x, y in data])

    def step() -> float:
        x, y = batch()
        opt.zero_grad(set_to_none=True)
        logits = model["head"](model["lstm"](model["embed"](x))[0])
        loss = torch.nn.functional.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        loss.backward()
        opt.step()
        return loss.item()
    return model, step


def minirnn_trainer(cfg: CharLMConfig, vocab: int, data: list[tuple[np.ndarray, np.ndarray]],
                    state_dict: dict[str, np.ndarray] | None) -> Callable[[], float]:
    """A callable doing one training step of :class:`minirnn.charlm.CharLM`, from the weights in
    ``state_dict`` when given (torch's initial weights) or from minirnn's own initialisation."""
    from .. import functional as F
    from .. import optim
    from ..charlm import CharLM

    model = CharLM(vocab, cfg.embed, cfg.hidden, cfg.layers)
    if state_dict is not None:
        model.load_state_dict(state_dict)
    opt = optim.Adam(model.parameters(), lr=cfg.lr)
    batch = _cycle(data)

    def step() -> float:
        x, y = batch()
        opt.zero_grad()
        logits = model(x)[0]
        loss = F.cross_entropy(logits.reshape(-1, vocab), y.reshape(-1))
        loss.backward()
        opt.step()
        return loss.item()
    return step


def floor_trainer(cfg: CharLMConfig, vocab: int) -> Callable[[], None]:
    """The model's GEMM floor (see floor.py): the GEMMs of a training step as large BLAS calls, each
    LSTM layer's six and the head's three (logits, their gradient to the hidden states, to the
    weight). The embedding, the pointwise work, the loss and Adam are left out: a lower bound."""
    layers = [floor_step(make_problem("lstm", Shape(cfg.T, cfg.B, cfg.embed if k == 0 else cfg.hidden, cfg.hidden)),
                         True) for k in range(cfg.layers)]
    rng = np.random.default_rng(0)
    hs = rng.standard_normal((cfg.T * cfg.B, cfg.hidden)).astype(np.float32)      # last layer's outputs
    w = rng.standard_normal((vocab, cfg.hidden)).astype(np.float32)               # head weight (V, H)
    dlogits = rng.standard_normal((cfg.T * cfg.B, vocab)).astype(np.float32)      # (T*B, V)

    def step() -> None:
        for layer in layers:
            layer()
        _C.matmul(hs, w, transpose_b=True)       # logits (T*B, V)
        _C.matmul(dlogits, w)                    # d hs (T*B, H)
        _C.matmul(dlogits, hs, transpose_a=True)  # d w (V, H)
    return step


def run_charlm(cfg: CharLMConfig, threads: int, repeats: int, budget_s: float, with_torch: bool) -> dict[str, Any]:
    """chars/s of each framework and of the model's GEMM floor (interleaved timing), and each
    framework's first-step loss: from the same weights on the same batch the two agree, a check
    that the models are the same."""
    ids, vocab = corpus()
    data = batches(ids, cfg, count=4)
    steps: dict[str, Callable[[], float]] = {}
    init = None
    if with_torch:
        model, steps["torch"] = torch_trainer(cfg, vocab, data)
        init = {k: v.detach().numpy().copy() for k, v in model.state_dict().items()}
    steps["minirnn"] = minirnn_trainer(cfg, vocab, data, init)
    with use_threads(threads):
        first_loss = {name: step() for name, step in steps.items()}
        # minirnn's embedding, Linear and Adam run on NumPy (its BLAS spins); torch's do not
        contenders = [Contender(n, s, spins=n == "minirnn") for n, s in steps.items()]
        timings = time_interleaved(contenders + [Contender("floor", floor_trainer(cfg, vocab), spins=False)],
                                   repeats, budget_s)
    return {"config": asdict(cfg), "vocab": vocab, "threads": threads, "first_loss": first_loss,
            "median_s": {n: t.median_s for n, t in timings.items()},
            "chars_per_s": {n: cfg.T * cfg.B / t.median_s for n, t in timings.items()}}
