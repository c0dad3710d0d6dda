"""Example 1: is a sequence a palindrome? Sequence classification with variable lengths.

An LSTM reads a sequence of symbols (lengths 1-10, padded, with ``lengths`` so padding never
enters the state); a linear layer on the final hidden state h_n gives two logits. Trained on
lengths 1-10, measured on held-out sequences of lengths 1-10 and, for the generalisation
question, on lengths 11-20 that it never saw.

    python examples/palindromes.py [--quick]
"""
from __future__ import annotations

import numpy as np

from _common import fit, held_out_accuracy, parse_quick, seed
from minirnn import functional as F, nn
from minirnn.data import pad_sequences
from minirnn.nn.embedding import Embedding

SYMBOLS = 3


def make(rng: np.random.Generator, n: int, lo: int, hi: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Half palindromes; half near-misses (a palindrome with one symbol changed) or random."""
    seqs, labels = [], []
    for i in range(n):
        length = int(rng.integers(lo, hi + 1))
        half = rng.integers(0, SYMBOLS, (length + 1) // 2)
        s = np.concatenate([half, half[:length // 2][::-1]])
        if i % 4 == 1:  # near miss: change one symbol
            j = rng.integers(length)
            s[j] = (s[j] + rng.integers(1, SYMBOLS)) % SYMBOLS
        elif i % 4 == 3:
            s = rng.integers(0, SYMBOLS, length)
        seqs.append(s)
        labels.append(int((s == s[::-1]).all()))
    return seqs, np.array(labels)


class Classifier(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.embed = Embedding(SYMBOLS, 16)
        self.lstm = nn.LSTM(16, hidden)
        self.head = nn.Linear(hidden, 2)

    def forward(self, seqs: list[np.ndarray]):
        ids, lengths, _ = pad_sequences(seqs)
        _, (h_n, _) = self.lstm(self.embed(ids), lengths=lengths)
        return self.head(h_n[-1])  # (B, 2)


def main(quick: bool = False) -> dict[str, float]:
    rng = seed(0)
    steps, batch = (150, 32) if quick else (3000, 64)
    model = Classifier(hidden=32 if quick else 64)

    def loss_step(i: int):
        seqs, labels = make(rng, batch, 1, 10)
        return F.cross_entropy(model(seqs), labels)

    fit(loss_step, model.parameters(), steps, lr=3e-3)
    return held_out_accuracy("palindromes", model, {
        "lengths 1-10": make(np.random.default_rng(99), 2000, 1, 10),
        "unseen lengths 11-20": make(np.random.default_rng(98), 2000, 11, 20)})


if __name__ == "__main__":
    main(parse_quick(__doc__.split("\n")[0]))
