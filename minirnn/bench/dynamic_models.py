"""The dynamic-graph models of the ``dynamic`` benchmark, written one example at a time, the way
``autobatch()`` is for: a Tree-LSTM over treebank-shaped trees, a message-passing network over
random graphs, a batch of greedy decoders. Each is written once for both frameworks: ``fw`` is
the framework's namespace (:func:`minirnn_ops` or :func:`torch_ops`), the modules come from
:class:`TreeLSTM`, :class:`MPNN` and :class:`Decoder` (minirnn) or their :func:`torch_twin`.

Shapes: every node state is a row, (1, H); a leaf's token is a (1,) id array.
"""
from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any, Union

import numpy as np

from .. import nn, ops
from ..tensor import Tensor
from ..functional import cross_entropy

Tree = Union[int, tuple]  # a leaf's token id, or (left, right, label)


# ---------------------------------------------------------------------------- data
def treebank_tree(rng: np.random.Generator, vocab: int, classes: int) -> Tree:
    """A random binary tree shaped like the Stanford Sentiment Treebank's: leaf counts with mean
    ~20 and at most 53, split at a random point that is often near an end (as phrases attach a
    word at a time), so that the mean height is ~10. Every inner node has a label."""
    leaves = int(np.clip(np.round(rng.gamma(4.0, 5.0)), 2, 53))
    return _split(rng, leaves, vocab, classes)


def _split(rng: np.random.Generator, leaves: int, vocab: int, classes: int) -> Tree:
    if leaves == 1:
        return int(rng.integers(vocab))
    left = int(rng.choice((1, leaves - 1))) if rng.random() < 0.45 else int(rng.integers(1, leaves))
    return (_split(rng, left, vocab, classes), _split(rng, leaves - left, vocab, classes), int(rng.integers(classes)))


def height(tree: Tree) -> int:
    return 0 if isinstance(tree, int) else 1 + max(height(tree[0]), height(tree[1]))


def count_nodes(tree: Tree) -> int:
    return 1 if isinstance(tree, int) else 1 + count_nodes(tree[0]) + count_nodes(tree[1])


@dataclass
class Graph:
    """Node tokens (n,), each node's neighbours (lists of node numbers), a class label."""

    tokens: np.ndarray
    neighbours: list[list[int]]
    label: int


def random_graph(rng: np.random.Generator, vocab: int) -> Graph:
    """An undirected random graph of 8-20 nodes, mean degree ~3, labelled by whether it has a triangle."""
    n = int(rng.integers(8, 21))
    pairs = [(a, b) for a in range(n) for b in range(a + 1, n) if rng.random() < 3.0 / (n - 1)]
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for a, b in pairs:
        neighbours[a].append(b)
        neighbours[b].append(a)
    sets = [set(x) for x in neighbours]
    triangle = any(sets[a] & sets[b] for a, b in pairs)
    return Graph(rng.integers(vocab, size=n), neighbours, int(triangle))


# ---------------------------------------------------------------------------- frameworks
def _zeros_like(like: Any) -> Any:
    """Zeros shaped like ``like``, as an op on it in either framework (a state starts from it)."""
    return like * 0.0


def minirnn_ops() -> SimpleNamespace:
    return SimpleNamespace(cat=ops.cat, stack=ops.stack, split=ops.split, cross_entropy=cross_entropy,
                           ids=lambda k: np.array([k]), tensor=Tensor, targets=lambda a: a,
                           zeros_like=_zeros_like,
                           argmax=lambda logits: int(logits.data.argmax()))


def torch_ops() -> SimpleNamespace:
    import torch
    return SimpleNamespace(cat=torch.cat, stack=torch.stack, split=torch.split,
                           cross_entropy=torch.nn.functional.cross_entropy,
                           ids=lambda k: torch.tensor([k]), tensor=torch.from_numpy, targets=torch.from_numpy,
                           zeros_like=_zeros_like,
                           argmax=lambda logits: int(logits.argmax()))


def torch_twin(model: nn.Module) -> Any:
    """``model`` in torch: a module with a torch Embedding / Linear / GRUCell / LSTMCell for each
    of ``model``'s children, of the same names, sizes, dtype and weights (and ``rounds``, if any)."""
    import torch
    make = {nn.Embedding: lambda m: torch.nn.Embedding(*m.weight.shape),
            nn.Linear: lambda m: torch.nn.Linear(m.in_features, m.out_features),
            nn.GRUCell: lambda m: torch.nn.GRUCell(m.input_size, m.hidden_size),
            nn.LSTMCell: lambda m: torch.nn.LSTMCell(m.input_size, m.hidden_size)}
    twin = torch.nn.Module()
    for name, child in model.named_modules():
        if name and "." not in name:
            twin.add_module(name, make[type(child)](child))
    state = model.state_dict()
    twin.to(torch.float64 if next(iter(state.values())).dtype == np.float64 else torch.float32)
    twin.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in state.items()})
    twin.rounds = getattr(model, "rounds", None)
    return twin


# ---------------------------------------------------------------------------- Tree-LSTM
class TreeLSTM(nn.Module):
    """Binary Tree-LSTM (Tai et al. 2015, N-ary with N = 2): a leaf embeds its word,
    (i, o, u) = W x + b; an inner node has (i, f_l, f_r, o, u) = U [h_l; h_r] + b and
    c = s(i) t(u) + s(f_l) c_l + s(f_r) c_r, h = s(o) t(c); a 5-class loss at every inner node."""

    def __init__(self, vocab: int, embed: int = 300, hidden: int = 150, classes: int = 5):
        super().__init__()
        self.hidden = hidden
        self.embed = nn.Embedding(vocab, embed)
        self.leaf = nn.Linear(embed, 3 * hidden)
        self.node = nn.Linear(2 * hidden, 5 * hidden)
        self.classify = nn.Linear(hidden, classes)


def tree_lstm_loss(model: Any, trees: list[Tree], fw: SimpleNamespace, hidden: int) -> Any:
    """The summed loss of every inner node of every tree, one node at a time (plain recursion)."""
    losses = []

    def encode(tree: Tree) -> tuple[Any, Any]:
        if isinstance(tree, int):
            i, o, u = fw.split(model.leaf(model.embed(fw.ids(tree))), hidden, 1)
            c = i.sigmoid() * u.tanh()
            return o.sigmoid() * c.tanh(), c
        (h_l, c_l), (h_r, c_r) = encode(tree[0]), encode(tree[1])
        i, f_l, f_r, o, u = fw.split(model.node(fw.cat([h_l, h_r], 1)), hidden, 1)
        c = i.sigmoid() * u.tanh() + f_l.sigmoid() * c_l + f_r.sigmoid() * c_r
        h = o.sigmoid() * c.tanh()
        losses.append(fw.cross_entropy(model.classify(h), fw.ids(tree[2])))
        return h, c

    for tree in trees:
        encode(tree)
    return fw.stack(losses, 0).sum()


# ---------------------------------------------------------------------------- Tree-LSTM by hand
@dataclass
class LevelPlan:
    """The trees' nodes by height, for the hand-batched Tree-LSTM: the leaves' tokens, and per
    higher level where each node's children are (``sources``: (level, rows, positions) groups)
    and its label. Node ``(level, row)`` is row ``row`` of that level's states."""

    leaf_tokens: np.ndarray
    levels: list[tuple[list[tuple[int, np.ndarray, np.ndarray]], list[tuple[int, np.ndarray, np.ndarray]],
                       np.ndarray]]


def level_plan(trees: list[Tree]) -> LevelPlan:
    by_level: dict[int, list[tuple[Any, ...]]] = {}
    tokens: list[int] = []

    def place(tree: Tree) -> tuple[int, int]:
        if isinstance(tree, int):
            tokens.append(tree)
            return 0, len(tokens) - 1
        left, right = place(tree[0]), place(tree[1])
        level = 1 + max(left[0], right[0])
        nodes = by_level.setdefault(level, [])
        nodes.append((left, right, tree[2]))
        return level, len(nodes) - 1

    for tree in trees:
        place(tree)
    levels = []
    for level in sorted(by_level):
        nodes = by_level[level]
        sides = [_sources([n[side] for n in nodes]) for side in (0, 1)]
        levels.append((sides[0], sides[1], np.array([n[2] for n in nodes])))
    return LevelPlan(np.array(tokens), levels)


def _sources(refs: list[tuple[int, int]]) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """(level, rows, positions) for each level the ``refs`` point into."""
    levels = np.array([r[0] for r in refs])
    rows = np.array([r[1] for r in refs])
    return [(int(k), rows[levels == k], np.flatnonzero(levels == k)) for k in np.unique(levels)]


def _gather(states: list[Any], sources: list[tuple[int, np.ndarray, np.ndarray]]) -> Any:
    """Rows of several levels' states, in the order of the nodes asking for them."""
    pieces = [states[level][rows] for level, rows, _ in sources]
    if len(pieces) == 1:
        return pieces[0]
    order = np.argsort(np.concatenate([positions for _, _, positions in sources]), kind="stable")
    return ops.cat(pieces, 0)[order]


def tree_lstm_loss_by_level(model: TreeLSTM, plan: LevelPlan) -> Any:
    """The same loss as :func:`tree_lstm_loss` (minirnn), batched by hand: one op per level."""
    H = model.hidden
    i, o, u = ops.split(model.leaf(model.embed(plan.leaf_tokens)), H, 1)
    c = i.sigmoid() * u.tanh()
    hs, cs = [o.sigmoid() * c.tanh()], [c]
    losses = []
    for left, right, labels in plan.levels:
        h_l, h_r, c_l, c_r = _gather(hs, left), _gather(hs, right), _gather(cs, left), _gather(cs, right)
        i, f_l, f_r, o, u = ops.split(model.node(ops.cat([h_l, h_r], 1)), H, 1)
        c = i.sigmoid() * u.tanh() + f_l.sigmoid() * c_l + f_r.sigmoid() * c_r
        h = o.sigmoid() * c.tanh()
        hs.append(h)
        cs.append(c)
        losses.append(cross_entropy(model.classify(h), labels, reduction="sum"))
    return ops.stack(losses, 0).sum()


# ---------------------------------------------------------------------------- message passing
class MPNN(nn.Module):
    """h_v = Embed(x_v); T rounds of m_v = Message(sum of the neighbours' h), h_v = GRU(m_v, h_v);
    readout r = sum_v h_v; classify(r) (Gilmer et al. 2017, with a GRU cell as vertex update)."""

    def __init__(self, vocab: int, hidden: int = 64, rounds: int = 3, classes: int = 2):
        super().__init__()
        self.rounds = rounds
        self.embed = nn.Embedding(vocab, hidden)
        self.message = nn.Linear(hidden, hidden)
        self.update = nn.GRUCell(hidden, hidden)
        self.classify = nn.Linear(hidden, classes)


def mpnn_loss(model: Any, graphs: list[Graph], fw: SimpleNamespace) -> Any:
    """The summed loss over ``graphs``, one node and one edge at a time."""
    losses = []
    for g in graphs:
        h = [model.embed(fw.ids(int(t))) for t in g.tokens]
        for _ in range(model.rounds):
            incoming = [fw.stack([h[u] for u in nbrs], 0).sum(0) if nbrs else fw.zeros_like(h[v])
                        for v, nbrs in enumerate(g.neighbours)]
            h = [model.update(model.message(m), h[v]) for v, m in enumerate(incoming)]
        losses.append(fw.cross_entropy(model.classify(fw.stack(h, 0).sum(0)), fw.ids(g.label)))
    return fw.stack(losses, 0).sum()


# ---------------------------------------------------------------------------- greedy decoders
class Decoder(nn.Module):
    """An LSTM-cell decoder from a source vector: h0 = tanh(W_enc s), then at each step the
    embedding of the previous output (greedy: the argmax, which the loop must read)."""

    def __init__(self, source: int = 32, vocab: int = 20, embed: int = 32, hidden: int = 128):
        super().__init__()
        self.encode = nn.Linear(source, hidden)
        self.embed = nn.Embedding(vocab, embed)
        self.cell = nn.LSTMCell(embed, hidden)
        self.out = nn.Linear(hidden, vocab)


def decoders_loss(model: Any, sources: list[Any], targets: list[np.ndarray], fw: SimpleNamespace) -> Any:
    """Greedy decoding of every source for as many steps as its target has, all decoders stepped
    together (each reads its argmax to choose its next input); loss against the targets."""
    h = [model.encode(s).tanh() for s in sources]
    c = [fw.zeros_like(x) for x in h]
    previous = [0] * len(sources)
    losses = []
    for t in range(max(len(y) for y in targets)):
        live = [k for k, y in enumerate(targets) if t < len(y)]
        logits = {}
        for k in live:
            h[k], c[k] = model.cell(model.embed(fw.ids(previous[k])), (h[k], c[k]))
            logits[k] = model.out(h[k])
            losses.append(fw.cross_entropy(logits[k], fw.ids(int(targets[k][t]))))
        for k in live:
            previous[k] = fw.argmax(logits[k])
    return fw.stack(losses, 0).sum()
