"""Example 11: a Tree-LSTM (Tai, Socher and Manning 2015) labels the sentiment of every phrase of a parse tree.

The data is a small synthetic treebank: a sentence is a random binary tree over words that are
positive, negative, neutral, or the negator "not"; a phrase's sentiment is the sum of its
words', except that "not" turns the phrase to its right around. Every inner node has a label
(negative, neutral, positive), as in the Stanford Sentiment Treebank, and the loss is
averaged over all of them. A leaf is (i, o, u) = W x + b of its word's embedding; an inner node combines
its children's states with forget gates of its own for each child:

    (i, f_l, f_r, o, u) = U [h_l; h_r] + b
    c = s(i) tanh(u) + s(f_l) c_l + s(f_r) c_r,    h = s(o) tanh(c)

The recursion is written one node at a time and trained inside ``minirnn.autobatch()``, which
runs the nodes of one height in all the trees of a minibatch together (docs/06-autobatch.md);
``--no-autobatch`` runs it eagerly with the same result. Reported: held-out accuracy at the roots
and over all phrases, against the majority class, and the time per training step.

    python examples/tree_lstm_sentiment.py [--quick] [--no-autobatch]
"""
from __future__ import annotations

import time
from typing import Union

import numpy as np

from _common import fit, majority_rate, parse_quick_and_autobatch, seed
from minirnn import Tensor, autobatch, cat, functional as F, nn, no_grad, split, stack

POSITIVE, NEGATIVE, NEUTRAL, NOT = range(0, 8), range(8, 16), range(16, 30), 30
VOCAB = 31
Tree = Union[int, tuple]  # a word id, or (left, right)


def word_score(word: int) -> int:
    return 1 if word in POSITIVE else -1 if word in NEGATIVE else 0


def score(tree: Tree) -> int:
    """The phrase's sentiment: the sum of its words', with "not" flipping what follows it."""
    if isinstance(tree, int):
        return word_score(tree)
    if tree[0] == NOT:
        return -score(tree[1])
    return score(tree[0]) + score(tree[1])


def label(tree: Tree) -> int:
    return int(np.sign(score(tree))) + 1  # 0 negative, 1 neutral, 2 positive


def random_tree(rng: np.random.Generator, words: int) -> Tree:
    if words == 1:
        return int(rng.choice([*POSITIVE, *NEGATIVE, *NEUTRAL, NOT]))
    left = int(rng.integers(1, words))
    if left == 1 and rng.random() < 0.3:  # "not <phrase>"
        return (NOT, random_tree(rng, words - 1))
    return (random_tree(rng, left), random_tree(rng, words - left))


def inner_nodes(tree: Tree) -> list[Tree]:
    """The tree's inner nodes, children before parents (the order the model visits them)."""
    return [] if isinstance(tree, int) else inner_nodes(tree[0]) + inner_nodes(tree[1]) + [tree]


class TreeLSTM(nn.Module):
    def __init__(self, hidden: int, embed: int = 32):
        super().__init__()
        self.hidden = hidden
        self.embed = nn.Embedding(VOCAB, embed)
        self.leaf_gates = nn.Linear(embed, 3 * hidden)
        self.node_gates = nn.Linear(2 * hidden, 5 * hidden)
        self.classify = nn.Linear(hidden, 3)

    def leaf(self, word: int) -> tuple[Tensor, Tensor]:
        """(h, c), each (1, H), of a word."""
        i, o, u = split(self.leaf_gates(self.embed(np.array([word]))), self.hidden, 1)
        c = i.sigmoid() * u.tanh()
        return o.sigmoid() * c.tanh(), c

    def node(self, left: tuple[Tensor, Tensor], right: tuple[Tensor, Tensor]) -> tuple[Tensor, Tensor]:
        """(h, c) of a phrase from its children's."""
        (h_l, c_l), (h_r, c_r) = left, right
        i, f_l, f_r, o, u = split(self.node_gates(cat([h_l, h_r], 1)), self.hidden, 1)
        c = i.sigmoid() * u.tanh() + f_l.sigmoid() * c_l + f_r.sigmoid() * c_r
        return o.sigmoid() * c.tanh(), c

    def phrase_logits(self, tree: Tree) -> Tensor:
        """(inner nodes, 3) logits of every phrase, in :func:`inner_nodes` order: the recursion
        over the tree, one node at a time, is the graph."""
        found: list[Tensor] = []

        def visit(t: Tree) -> tuple[Tensor, Tensor]:
            if isinstance(t, int):
                return self.leaf(t)
            state = self.node(visit(t[0]), visit(t[1]))
            found.append(self.classify(state[0]))
            return state

        visit(tree)
        return cat(found, 0)


def make(rng: np.random.Generator, n: int) -> list[Tree]:
    return [random_tree(rng, int(rng.integers(2, 13))) for _ in range(n)]


def accuracy(model: TreeLSTM, trees: list[Tree], batched: bool) -> tuple[float, float, np.ndarray, np.ndarray]:
    """(root accuracy, phrase accuracy, root labels, phrase labels) on held-out ``trees``."""
    with no_grad(), autobatch(enabled=batched):
        logits = [model.phrase_logits(t) for t in trees]
    predicted = [lg.data.argmax(1) for lg in logits]
    gold = [np.array([label(n) for n in inner_nodes(t)]) for t in trees]
    roots, phrases = np.array([g[-1] for g in gold]), np.concatenate(gold)
    root_acc = float(np.mean([p[-1] == g[-1] for p, g in zip(predicted, gold)]))
    phrase_acc = float((np.concatenate(predicted) == phrases).mean())
    return root_acc, phrase_acc, roots, phrases


def main(quick: bool = False, batched: bool = True) -> dict[str, float]:
    rng = seed(0)
    steps, hidden, n_test = (15, 16, 100) if quick else (600, 64, 1000)
    model = TreeLSTM(hidden)

    def loss_step(i: int) -> Tensor:
        trees = make(rng, 32)
        gold = np.concatenate([[label(n) for n in inner_nodes(t)] for t in trees])
        with autobatch(enabled=batched):
            return F.cross_entropy(cat([model.phrase_logits(t) for t in trees], 0), gold)  # (mean over phrases)

    start = time.perf_counter()
    fit(loss_step, model.parameters(), steps, lr=1e-2)
    per_step = (time.perf_counter() - start) / steps
    root_acc, phrase_acc, roots, phrases = accuracy(model, make(np.random.default_rng(7), n_test), batched)
    print(f"Tree-LSTM sentiment ({'autobatch' if batched else 'eager'}, {per_step * 1e3:.0f} ms/step): held-out "
          f"accuracy at the roots {root_acc:.3f} (majority class {majority_rate(roots):.3f}), over all phrases "
          f"{phrase_acc:.3f} (majority class {majority_rate(phrases):.3f})")
    return {"root_accuracy": root_acc, "phrase_accuracy": phrase_acc, "ms_per_step": per_step * 1e3}


if __name__ == "__main__":
    main(*parse_quick_and_autobatch(__doc__.split("\n")[0]))
