"""Example 7: a message-passing neural network (Gilmer et al. 2017) classifies random graphs.

Each graph has 8-16 nodes and random undirected edges; one node is red, one is blue, the rest
plain. The question: is there a path from the red node to the blue one? The answer depends only on
the edges: every graph has one red and one blue node, so a model that ignores the edges can only
use the graph's size. Algorithm 1 of the lecture, on a batch of graphs joined into one big
disconnected graph (node n of graph g gets a global number; ``graph_of[n]`` = g)::

    h = Embed(x)                                         # (N, H): x is the node's colour
    for t = 1..T:
        m = segment_sum(gather_rows(W h, src), dst, N)   # Message: sum over the edges into each node
        h = GRUCell(m, h)                                # VertexUpdate
    r = segment_sum(h, graph_of, B)                      # Readout: sum over each graph's nodes
    logits = MLP(r)                                      # Classify

Trained on balanced labels and measured on held-out graphs of the training sizes and of larger,
unseen sizes, against the same readout and MLP on the bag of node embeddings (the baseline that
ignores edges), and against T = 1 round, after which a node knows only its neighbours' colours.

    python examples/message_passing.py [--quick]
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from _common import fit, held_out_accuracy, parse_quick, seed
from minirnn import Tensor, functional as F, gather_rows, nn, segment_sum

PLAIN, RED, BLUE = 0, 1, 2


class Graphs(NamedTuple):
    """A batch of graphs as one disconnected graph: node colours (N,), directed edges src -> dst
    (both directions of every undirected edge), each node's graph (N,), the number of graphs."""
    colour: np.ndarray
    src: np.ndarray
    dst: np.ndarray
    graph_of: np.ndarray
    count: int


def random_graph(rng: np.random.Generator, lo: int, hi: int) -> tuple[int, np.ndarray, int]:
    """(nodes, undirected edges (M, 2), label): about one edge per node, near the size where a
    random graph's pieces join up, so red and blue are connected about half the time."""
    n = int(rng.integers(lo, hi + 1))
    pairs = rng.integers(0, n, (n, 2))
    edges = pairs[pairs[:, 0] != pairs[:, 1]]
    return n, edges, int(connected(n, edges, 0, 1))


def connected(n: int, edges: np.ndarray, a: int, b: int) -> bool:
    """Whether nodes a and b are joined by a path (a breadth-first search)."""
    neighbours: list[list[int]] = [[] for _ in range(n)]
    for u, v in edges:
        neighbours[u].append(v)
        neighbours[v].append(u)
    seen, frontier = {a}, [a]
    while frontier:
        frontier = [v for u in frontier for v in neighbours[u] if v not in seen and not seen.add(v)]
    return b in seen


def make(rng: np.random.Generator, count: int, lo: int = 8, hi: int = 16) -> tuple[Graphs, np.ndarray]:
    """``count`` graphs with balanced labels (drawn until each label has its half); nodes 0 and 1
    of each are red and blue."""
    colours, srcs, dsts, owners, labels, offset = [], [], [], [], [], 0
    wanted = [count // 2, count - count // 2]
    while len(labels) < count:
        n, edges, label = random_graph(rng, lo, hi)
        if wanted[label] == 0:
            continue
        wanted[label] -= 1
        colour = np.full(n, PLAIN)
        colour[0], colour[1] = RED, BLUE
        colours.append(colour)
        srcs.append(np.concatenate([edges[:, 0], edges[:, 1]]) + offset)
        dsts.append(np.concatenate([edges[:, 1], edges[:, 0]]) + offset)
        owners.append(np.full(n, len(labels)))
        labels.append(label)
        offset += n
    graphs = Graphs(np.concatenate(colours), np.concatenate(srcs), np.concatenate(dsts),
                    np.concatenate(owners), count)
    return graphs, np.array(labels)


class MPNN(nn.Module):
    """Algorithm 1; ``rounds`` = 0 is the baseline that never reads an edge (a bag of nodes)."""

    def __init__(self, hidden: int, rounds: int):
        super().__init__()
        self.rounds = rounds
        self.embed = nn.Embedding(3, hidden)
        self.message = nn.Linear(hidden, hidden)
        self.update = nn.GRUCell(hidden, hidden)
        self.hidden_layer = nn.Linear(hidden, hidden)
        self.head = nn.Linear(hidden, 2)

    def forward(self, g: Graphs) -> Tensor:
        h = self.embed(g.colour)  # (N, H)
        for _ in range(self.rounds):
            # W (sum of h_u) = sum of (W h_u): the product on N nodes, not on 2M edges
            m = segment_sum(gather_rows(self.message(h), g.src), g.dst, h.shape[0])  # (N, H)
            h = self.update(m, h)
        r = segment_sum(h, g.graph_of, g.count)  # (B, H)
        return self.head(F.relu(self.hidden_layer(r)))  # (B, 2)


def main(quick: bool = False) -> dict[str, float]:
    rng = seed(0)
    steps, hidden, rounds, n_test = (120, 16, 4, 300) if quick else (1500, 32, 6, 2000)
    tests = {"8-16 nodes": make(np.random.default_rng(21), n_test),
             "unseen sizes, 20-30 nodes": make(np.random.default_rng(22), n_test, 20, 30)}
    models = [(f"MPNN, {rounds} rounds", rounds), ("MPNN, 1 round", 1), ("no edges (bag of nodes)", 0)]
    result = {}
    for name, r in models[::2] if quick else models:
        model = MPNN(hidden, r)

        def loss_step(i: int) -> Tensor:
            graphs, labels = make(rng, 32)
            return F.cross_entropy(model(graphs), labels)

        fit(loss_step, model.parameters(), steps, lr=3e-3, desc=name)
        for test, accuracy in held_out_accuracy(f"message passing, {name}", model, tests).items():
            result[f"{name}: {test}"] = accuracy
    return result


if __name__ == "__main__":
    main(parse_quick(__doc__.split("\n")[0]))
