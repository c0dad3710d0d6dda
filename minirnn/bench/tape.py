"""The tape against PyTorch eager on the code a tape is for: a Python loop over cells, a recursion
over trees, thousands of tiny ops, sampling one character at a time. Both frameworks run the same
model with the same weights on the same inputs, timed interleaved (timing.py), medians.

Every step is forward + backward (gradients of every weight and of the inputs), except sampling
(forward only, no grad). Each measurement is one JSON record with ``kind``, ``threads``,
``median_s`` / ``min_s`` / ``repeats`` per contender and ``notes``. The minirnn contender is
called ``tape`` throughout, torch's ``torch``. The tree net and the char model are initialised by
minirnn after ``manual_seed(0)`` (which re-seeds minirnn's default generator) and copied into torch.

  cells   ``h = cell(x[t], h)`` for t < T (LSTM: the pair (h, c)) from zeros, the h stacked
          (``ops.stack``) to y (T, B, H), then ``y.backward(dy)`` with a fixed random dy (the loss
          sum(y * dy)): gradients of x (T, B, I) and of every cell weight. Modes lstm (LSTMCell),
          gru (GRUCell), rnn_tanh (RNNCell) at (T, B, I=H) = (100, 1, 64), (100, 32, 128),
          (50, 64, 256). Contenders:
            tape           minirnn's cell with its default settings
            tape_composed  the cell composed of tape primitives (``fused=False``); skipped with a
                           note where the cells take no such flag
            torch          torch.nn.LSTMCell / GRUCell / RNNCell, the same loop, eager
            fused_layer    minirnn's nn.LSTM / GRU / RNN over the whole sequence (one tape node,
                           the time loop in C++): what fusion over time still buys
            floor          the GEMM floor (floor.py) of the same products: every step's
                           x_t W_ih^T and h_{t-1} W_hh^T and their four backward products, done as
                           six large BLAS calls over all T*B rows -- no time loop, no pointwise
                           work, no Python: a lower bound for any loop over cells
  ops     a chain of tiny ops on a (4,) float32 leaf x: ``y = (y + x) * x; y = y.tanh() + y`` (four
          ops: add, mul, tanh, add) repeated, then ``y.sum().backward()``; ``us_per_op``:
          microseconds per op, its forward and backward
  tree    a recursive net over a batch of seeded random binary trees (depth <= 6), eager, one node
          at a time in Python recursion: a leaf embeds its token (Embedding), an inner node is
          ``h = tanh(W [h_left; h_right] + b)`` (cat, Linear), the roots go through a Linear to 2
          classes, cross-entropy over the batch, backward; ``nodes``: tree nodes in the batch
  sample  characters sampled one at a time (batch 1, no grad, the state carried) from the main
          job's model (CharLM: Embedding 32 -> 2-layer LSTM, hidden 128 -> Linear, the default
          corpus's vocabulary): minirnn through :func:`minirnn.generate.generate` (what
          ``python -m minirnn sample`` runs), torch with the same weights, one call per character,
          each character drawn from torch's softmax with the same seeded uniforms and inverse CDF
          (so both draw the same text); ``chars_per_s``
"""
from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable, Union

import numpy as np

from .. import functional as F
from .. import nn, ops
from ..charlm import CharLM, default_corpus
from ..data import CharVocab
from ..generate import generate, inverse_cdf
from ..random import manual_seed
from ..tensor import Tensor
from . import torch_peer
from .charlm import torch_charlm
from .contenders import fused_step, make_module, unroll
from .floor import floor_step
from .problem import MODES, Problem, Shape, make_problem
from .threads import use_threads
from .timing import Contender, time_interleaved

Record = dict[str, Any]
Tree = Union[int, tuple]  # a leaf's token id, or (left, right)

#: The cell-loop sizes (T, B, I=H) the tape's targets name (targets.TAPE_CELL_LIMITS).
CELL_SHAPES = tuple(Shape(T, B, H, H) for T, B, H in ((100, 1, 64), (100, 32, 128), (50, 64, 256)))
#: Chance that a tree node above the depth limit is a leaf (the rest have two children).
LEAF_PROBABILITY = 0.25


@dataclass(frozen=True)
class TapeConfig:
    """The sizes of the four measurements: the targets' by default, tiny ones in the tests."""

    shapes: tuple[Shape, ...] = CELL_SHAPES
    modes: tuple[str, ...] = MODES
    ops: int = 10_000
    trees: int = 32
    depth: int = 6
    tree_hidden: int = 64
    tree_vocab: int = 10
    chars: int = 1000
    lm_embed: int = 32  # the main job's model: the defaults of `python -m minirnn train charlm`
    lm_hidden: int = 128
    lm_layers: int = 2
    lm_vocab: int | None = None  # None: the characters of the main job's corpus
    temperature: float = 1.0


@dataclass
class Workload:
    """One contender's step: ``run()`` does it and returns what it computed (outputs, loss or ids);
    ``grads()`` the gradients the last run left, by name (empty where none are compared): the
    evidence that two contenders compute the same thing. ``spins``: see ``timing.Contender``."""

    run: Callable[[], Any]
    grads: Callable[[], dict[str, np.ndarray]] = dict
    spins: bool = False


def _training(forward: Callable[[], Any], leaves: dict[str, Any], dy: Any = None, spins: bool = False) -> Workload:
    """A step of either framework: the grads of ``leaves`` (name -> minirnn or torch leaf) reset,
    then ``forward().backward(dy)`` (``dy`` None: the output is a scalar loss)."""
    def run() -> Any:
        for leaf in leaves.values():
            leaf.grad = None
        out = forward()
        out.backward(dy)
        return out

    def grads() -> dict[str, np.ndarray]:
        return {name: np.asarray(leaf.grad) for name, leaf in leaves.items()}

    return Workload(run, grads, spins)


# ---------------------------------------------------------------------------- cell loops
def composed_supported(mode: str) -> bool:
    """Whether minirnn's cell of ``mode`` takes ``fused=`` (False: built from tape primitives)."""
    cell = {"lstm": nn.LSTMCell, "gru": nn.GRUCell}.get(mode, nn.RNNCell)
    return "fused" in inspect.signature(cell).parameters


def tape_cells(problem: Problem, composed: bool = False) -> Workload:
    """minirnn's cell of ``problem`` in a Python loop over T (``composed``: ``fused=False``)."""
    cell = make_module(problem, cell=True, **({"fused": False} if composed else {}))
    x = Tensor(problem.x, requires_grad=True)
    h0 = Tensor(np.zeros((problem.shape.B, problem.shape.H), np.float32))
    return _training(lambda: unroll(cell, x, h0, problem.mode == "lstm", ops.stack),
                     {"x": x, **dict(cell.named_parameters())}, problem.dy, spins=True)


def torch_cells(problem: Problem) -> Workload:
    """torch's cell of ``problem`` in the same loop, eager."""
    import torch
    cell = torch_peer.make_layer(problem, cell=True)
    x = torch.from_numpy(problem.x.copy()).requires_grad_()
    h0 = torch.zeros(problem.shape.B, problem.shape.H)
    return _training(lambda: unroll(cell, x, h0, problem.mode == "lstm", torch.stack),
                     {"x": x, **dict(cell.named_parameters())}, torch.from_numpy(problem.dy))


def cell_workloads(problem: Problem, with_torch: bool) -> tuple[dict[str, Workload], list[str]]:
    """The cell-loop contenders of ``problem`` in table order, and notes on those skipped."""
    table = {"tape": tape_cells(problem)}
    notes = []
    if composed_supported(problem.mode):
        table["tape_composed"] = tape_cells(problem, composed=True)
    else:
        notes.append(f"tape_composed skipped: minirnn's {problem.mode} cell takes no fused= flag "
                     "(its default cell is composed of tape primitives)")
    if with_torch:
        table["torch"] = torch_cells(problem)
    table["fused_layer"] = Workload(fused_step(problem, True))
    table["floor"] = Workload(floor_step(problem, True))
    return table, notes


# ---------------------------------------------------------------------------- tiny ops
def chain(x: Any, count: int) -> Any:
    """``count // 4`` rounds of four tiny ops from the leaf ``x`` (either framework), summed."""
    y = x
    for _ in range(count // 4):
        y = (y + x) * x
        y = y.tanh() + y
    return y.sum()


def ops_workloads(count: int, with_torch: bool) -> dict[str, Workload]:
    """The op chain on a seeded (4,) float32 leaf, in minirnn and in torch."""
    x = np.random.default_rng(0).uniform(-0.5, 0.5, 4).astype(np.float32)

    def build(leaf: Any) -> Workload:
        return _training(lambda: chain(leaf, count), {"x": leaf})

    table = {"tape": build(Tensor(x, requires_grad=True))}
    if with_torch:
        import torch
        table["torch"] = build(torch.from_numpy(x.copy()).requires_grad_())
    return table


# ---------------------------------------------------------------------------- trees
def random_tree(rng: np.random.Generator, depth: int, vocab: int) -> Tree:
    """A random binary tree of at most ``depth`` levels of inner nodes, leaves token ids < ``vocab``."""
    if depth == 0 or rng.random() < LEAF_PROBABILITY:
        return int(rng.integers(vocab))
    return (random_tree(rng, depth - 1, vocab), random_tree(rng, depth - 1, vocab))


def count_nodes(tree: Tree) -> int:
    return 1 if isinstance(tree, int) else 1 + count_nodes(tree[0]) + count_nodes(tree[1])


class TreeNet(nn.Module):
    """Leaves ``embed`` their token, inner nodes ``tanh(compose([h_left; h_right]))``, the roots
    ``classify`` to 2 classes (minirnn; :func:`torch_tree_net` is its torch twin)."""

    def __init__(self, vocab: int, hidden: int):
        super().__init__()
        self.embed = nn.Embedding(vocab, hidden)
        self.compose = nn.Linear(2 * hidden, hidden)
        self.classify = nn.Linear(hidden, 2)


def torch_tree_net(vocab: int, hidden: int) -> Any:
    """:class:`TreeNet` in torch, with the same parameter names."""
    import torch
    return torch.nn.ModuleDict({"embed": torch.nn.Embedding(vocab, hidden),
                                "compose": torch.nn.Linear(2 * hidden, hidden),
                                "classify": torch.nn.Linear(hidden, 2)})


def tree_loss(model: Any, trees: list[Tree], labels: Any, leaf_ids: list[Any], cat: Callable[[list[Any], int], Any],
              cross_entropy: Callable[[Any, Any], Any]) -> Any:
    """Cross-entropy of ``model`` (a TreeNet of either framework) on a batch of trees, one node at
    a time; ``leaf_ids[k]`` is token k as that framework's (1,) id array, ``cat`` its concatenation."""
    def encode(tree: Tree) -> Any:  # (1, H)
        if isinstance(tree, int):
            return model.embed(leaf_ids[tree])
        return model.compose(cat([encode(tree[0]), encode(tree[1])], 1)).tanh()

    return cross_entropy(model.classify(cat([encode(t) for t in trees], 0)), labels)


def tree_workloads(cfg: TapeConfig, with_torch: bool) -> tuple[dict[str, Workload], int]:
    """The tree net's batch (seeded) in minirnn and in torch, same weights; and its node count."""
    rng = np.random.default_rng(0)
    trees = [random_tree(rng, cfg.depth, cfg.tree_vocab) for _ in range(cfg.trees)]
    labels = rng.integers(2, size=cfg.trees)
    manual_seed(0)
    model = TreeNet(cfg.tree_vocab, cfg.tree_hidden)
    table = {"tape": _training(lambda: tree_loss(model, trees, labels, [np.array([k]) for k in range(cfg.tree_vocab)],
                                                 ops.cat, F.cross_entropy),
                               dict(model.named_parameters()), spins=True)}
    if with_torch:
        import torch
        twin = torch_tree_net(cfg.tree_vocab, cfg.tree_hidden)
        twin.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
        ids, target = [torch.tensor([k]) for k in range(cfg.tree_vocab)], torch.from_numpy(labels)
        table["torch"] = _training(lambda: tree_loss(twin, trees, target, ids, torch.cat,
                                                     torch.nn.functional.cross_entropy),
                                   dict(twin.named_parameters()))
    return table, sum(count_nodes(t) for t in trees)


# ---------------------------------------------------------------------------- sampling
def lm_config(cfg: TapeConfig) -> dict[str, Any]:
    """The sampled model's sizes, with the main job's vocabulary size where ``cfg`` has none."""
    vocab = cfg.lm_vocab if cfg.lm_vocab is not None else len(CharVocab.build(default_corpus()))
    return {"vocab": vocab, "embed": cfg.lm_embed, "hidden": cfg.lm_hidden, "layers": cfg.lm_layers,
            "temperature": cfg.temperature}


def torch_sampler(model: Any, chars: int, temperature: float) -> Callable[[], np.ndarray]:
    """``chars`` ids sampled by torch's CharLM twin from id 0, one call per character: each drawn
    from torch's softmax(logits / temperature) by the inverse CDF of a uniform from
    ``default_rng(0)``, as :func:`~minirnn.generate.sample_next` draws them (temperature 0:
    argmax), so that both frameworks draw the same characters."""
    import torch

    def run() -> np.ndarray:
        rng = np.random.default_rng(0)
        out = np.empty(chars, np.int64)
        x, state = torch.zeros((1, 1), dtype=torch.int64), None
        with torch.no_grad():
            for t in range(chars):
                h, state = model.lstm(model.embed(x), state)
                logits = model.head(h[-1])  # (1, V)
                x = logits.argmax(-1, keepdim=True) if temperature == 0 else torch.from_numpy(
                    inverse_cdf(torch.softmax(logits / temperature, -1).numpy(), rng.random((1, 1))))[:, None]
                out[t] = x.item()
        return out
    return run


def sample_workloads(lm: dict[str, Any], chars: int, with_torch: bool) -> dict[str, Workload]:
    """Sampling ``chars`` characters from the CharLM of sizes ``lm`` (:func:`lm_config`) in minirnn
    (the library's :func:`~minirnn.generate.generate`) and in torch, same weights, both from id 0."""
    manual_seed(0)
    model = CharLM(lm["vocab"], lm["embed"], lm["hidden"], lm["layers"])
    prompt = np.zeros(1, np.int64)
    table = {"tape": Workload(lambda: generate(model, prompt, chars, lm["temperature"],
                                               generator=np.random.default_rng(0)), spins=True)}
    if with_torch:
        import torch
        twin = torch_charlm(lm["vocab"], lm["embed"], lm["hidden"], lm["layers"])
        twin.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
        table["torch"] = Workload(torch_sampler(twin, chars, lm["temperature"]))
    return table


# ---------------------------------------------------------------------------- the section
def label(r: Record) -> str:
    """What a tape record measured (without its thread count)."""
    if r["kind"] == "cells":
        return f"{r['mode']} cell loop T{r['T']} B{r['B']} H{r['H']}"
    if r["kind"] == "ops":
        return f"{r['ops']} tiny ops on (4,)"
    if r["kind"] == "tree":
        return f"tree net {r['trees']} trees {r['nodes']} nodes H{r['H']}"
    c = r["config"]
    return f"sample {r['chars']} chars LSTM {c['layers']}x{c['hidden']}"


def time_workloads(workloads: dict[str, Workload], threads: int, repeats: int, budget_s: float,
                   **fields: Any) -> Record:
    """A record of ``fields`` and the interleaved timing of ``workloads`` at ``threads``."""
    with use_threads(threads):
        timings = time_interleaved([Contender(name, w.run, w.spins) for name, w in workloads.items()],
                                   repeats, budget_s)
    return {**fields, "threads": threads, "median_s": {n: t.median_s for n, t in timings.items()},
            "min_s": {n: t.min_s for n, t in timings.items()}, "repeats": {n: t.repeats for n, t in timings.items()},
            "notes": fields.get("notes", [])}


def run_tape(cfg: TapeConfig, threads: int, repeats: int, budget_s: float, with_torch: bool,
             log: Callable[[str], None] = print) -> list[Record]:
    """Every tape measurement of ``cfg`` (module docstring); one record each, logged as it ends."""
    records = []

    def measured(record: Record) -> None:
        log(f"  {label(record):44s} " + " ".join(f"{k}={v * 1e3:.2f}ms" for k, v in record["median_s"].items()))
        records.append(record)

    for mode in cfg.modes:
        for shape in cfg.shapes:
            workloads, notes = cell_workloads(make_problem(mode, shape), with_torch)
            measured(time_workloads(workloads, threads, repeats, budget_s,
                                    **shape.record(mode, kind="cells", notes=notes)))
    count = 4 * (cfg.ops // 4)
    record = time_workloads(ops_workloads(count, with_torch), threads, repeats, budget_s, kind="ops", ops=count)
    record["us_per_op"] = {n: s * 1e6 / count for n, s in record["median_s"].items()}
    measured(record)
    workloads, nodes = tree_workloads(cfg, with_torch)
    measured(time_workloads(workloads, threads, repeats, budget_s, kind="tree", trees=cfg.trees, depth=cfg.depth,
                            H=cfg.tree_hidden, nodes=nodes))
    lm = lm_config(cfg)
    record = time_workloads(sample_workloads(lm, cfg.chars, with_torch), threads, repeats, budget_s, kind="sample",
                            chars=cfg.chars, config=lm)
    record["chars_per_s"] = {n: cfg.chars / s for n, s in record["median_s"].items()}
    measured(record)
    return records
