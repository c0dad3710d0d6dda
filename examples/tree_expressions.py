"""Example 5: beyond sequences -- a recursive network over Boolean expression trees.

Each example is a random expression tree such as ``((T and F) xor (not T)) or F``. The network
follows the tree the data gives (a different graph for every example, built by plain Python
recursion on the tape): a leaf is the embedding of T or F; an inner node combines its children
with the weights of its operator,

    h = tanh(W_op [h_left; h_right] + b_op)        (not: h = tanh(W_not h_child + b_not))

and a linear layer on the root's h predicts the truth value. Accuracy is measured on held-out
trees of the training depths (1-4) and on deeper ones (5-6).

Training runs the recursion inside ``minirnn.autobatch()``: the nodes of one height and operator
in all 32 trees of a minibatch run as one op (docs/06-autobatch.md); ``--no-autobatch`` runs it
eagerly, one node at a time, with the same result.

    python examples/tree_expressions.py [--quick] [--no-autobatch]
"""
from __future__ import annotations

from typing import Union

import numpy as np

from _common import fit, held_out_accuracy, parse_quick_and_autobatch, seed
from minirnn import Tensor, autobatch, cat, functional as F, init, nn, stack

Tree = Union[bool, tuple]  # a leaf, ("not", tree) or (op, left, right)
BINARY = {"and": lambda a, b: a and b, "or": lambda a, b: a or b, "xor": lambda a, b: a != b}


def random_tree(rng: np.random.Generator, depth: int) -> Tree:
    if depth == 0 or rng.random() < 0.2:
        return bool(rng.integers(2))
    if rng.random() < 0.2:
        return ("not", random_tree(rng, depth - 1))
    op = list(BINARY)[rng.integers(len(BINARY))]
    return (op, random_tree(rng, depth - 1), random_tree(rng, depth - 1))


def value(tree: Tree) -> bool:
    if isinstance(tree, bool):
        return tree
    if tree[0] == "not":
        return not value(tree[1])
    return BINARY[tree[0]](value(tree[1]), value(tree[2]))


class TreeNet(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.leaf = nn.Parameter(init.normal_(np.empty((2, hidden), np.float32)))
        self.ops = nn.ModuleList([nn.Linear(2 * hidden, hidden) for _ in BINARY])
        self.negate = nn.Linear(hidden, hidden)
        self.head = nn.Linear(hidden, 2)

    def encode(self, tree: Tree) -> Tensor:
        """(H,) vector of ``tree``: the recursion IS the computation graph."""
        if isinstance(tree, bool):
            return self.leaf[int(tree)]
        if tree[0] == "not":
            return self.negate(self.encode(tree[1])).tanh()
        children = cat([self.encode(tree[1]), self.encode(tree[2])], 0)
        return self.ops[list(BINARY).index(tree[0])](children).tanh()

    def forward(self, trees: list[Tree]) -> Tensor:
        return self.head(stack([self.encode(t) for t in trees]))  # (B, 2)


def make(rng: np.random.Generator, n: int, depth: int) -> tuple[list[Tree], np.ndarray]:
    trees = [random_tree(rng, depth) for _ in range(n)]
    return trees, np.array([value(t) for t in trees], dtype=np.int64)


def main(quick: bool = False, batched: bool = True) -> dict[str, float]:
    rng = seed(0)
    steps, hidden, n_test = (40, 16, 200) if quick else (1500, 32, 1000)
    model = TreeNet(hidden)

    def loss_step(i: int) -> Tensor:
        trees, labels = make(rng, 32, 4)
        with autobatch(enabled=batched):
            return F.cross_entropy(model(trees), labels)

    fit(loss_step, model.parameters(), steps, lr=3e-3)
    return held_out_accuracy("tree expressions", model, {
        "depth <= 4": make(np.random.default_rng(11), n_test, 4),
        "deeper, <= 6": make(np.random.default_rng(12), n_test, 6)})

if __name__ == "__main__":
    main(*parse_quick_and_autobatch(__doc__.split("\n")[0]))
