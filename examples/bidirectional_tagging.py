"""Example 6: a bidirectional, stacked LSTM for sequence labelling.

Task: tag every symbol of a sequence (lengths 5-20, alphabet of 12) with 1 if the same symbol
occurs ANYWHERE else in the sequence -- before or after it -- and 0 otherwise. A left-to-right
model cannot know at step t what comes later; a bidirectional layer reads both ways, and the
per-step output ``[h_fwd_t; h_bwd_t]`` sees the whole sequence. Two stacked layers (num_layers=2,
bidirectional=True), variable lengths with ``lengths``, the loss on real (unpadded) steps only.
The same model run one-directional (same parameter budget per direction) is the comparison.

    python examples/bidirectional_tagging.py [--quick]
"""
from __future__ import annotations

import numpy as np

from _common import fit, majority_rate, parse_quick, seed
from minirnn import Tensor, functional as F, nn, no_grad
from minirnn.data import pad_sequences
from minirnn.nn.embedding import Embedding

SYMBOLS = 12
IGNORE = -100


def make(rng: np.random.Generator, n: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    seqs = [rng.integers(0, SYMBOLS, int(rng.integers(5, 21))) for _ in range(n)]
    tags = [(np.bincount(s, minlength=SYMBOLS)[s] > 1).astype(np.int64) for s in seqs]
    return seqs, tags


class Tagger(nn.Module):
    def __init__(self, hidden: int, bidirectional: bool):
        super().__init__()
        self.embed = Embedding(SYMBOLS, 16)
        self.lstm = nn.LSTM(16, hidden, num_layers=2, bidirectional=bidirectional)
        self.head = nn.Linear(hidden * (2 if bidirectional else 1), 2)

    def forward(self, seqs: list[np.ndarray]) -> Tensor:
        ids, lengths, _ = pad_sequences(seqs)
        out, _ = self.lstm(self.embed(ids), lengths=lengths)
        return self.head(out)  # (T, B, 2)


def loss(model: Tagger, seqs: list[np.ndarray], tags: list[np.ndarray]) -> Tensor:
    gold = pad_sequences(tags, IGNORE)[0]
    return F.cross_entropy(model(seqs).reshape(-1, 2), gold.reshape(-1), ignore_index=IGNORE)


def token_accuracy(model: Tagger, seqs: list[np.ndarray], tags: list[np.ndarray]) -> float:
    with no_grad():
        pred = model(seqs).data.argmax(-1)
    gold, _, mask = pad_sequences(tags, IGNORE)
    return float((pred == gold)[mask].mean())


def main(quick: bool = False) -> dict[str, float]:
    steps, hidden = (150, 16) if quick else (1500, 48)
    test = make(np.random.default_rng(3), 1000)
    majority = majority_rate(np.concatenate(test[1]))
    result = {}
    for name, bidirectional in [("bidirectional", True), ("left-to-right", False)]:
        rng = seed(0)
        model = Tagger(hidden, bidirectional)
        fit(lambda i: loss(model, *make(rng, 32)), model.parameters(), steps, lr=3e-3, desc=name)
        result[name] = token_accuracy(model, *test)
        print(f"tagging 'symbol repeats elsewhere': {name:13s} 2-layer LSTM token accuracy "
              f"{result[name]:.3f} (majority class: {majority:.3f})")
    return result


if __name__ == "__main__":
    main(parse_quick(__doc__.split("\n")[0]))
