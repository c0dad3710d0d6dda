"""Example 1: is a sequence a palindrome? The lecture's benchmark, for five recurrent networks.

Symbols 0-4, lengths drawn from 1-10, labels balanced (half palindromes; half not: a palindrome
with one symbol changed, or a random sequence that is not one). Each network reads the padded
batch with ``lengths`` (padding never enters the state); a linear layer on the final hidden state
(both directions' for the bidirectional LSTM) gives two logits. Elman (tanh), GRU, LSTM,
bidirectional LSTM and a 2-layer stacked LSTM train on lengths 1-10 with the same budget and
are measured on held-out lengths 1-10 and on lengths 11-20 that they never saw. The full run
draws the learning curves into examples/img/palindromes.png (needs the ``plot`` extra).

    python examples/palindromes.py [--quick]
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from _common import fit, held_out_accuracy, parse_quick, seed
from minirnn import cat, functional as F, nn
from minirnn.data import pad_sequences

SYMBOLS = 5
# name: (layer class, keyword arguments)
NETWORKS = {
    "Elman (tanh)": (nn.RNN, {}),
    "GRU": (nn.GRU, {}),
    "LSTM": (nn.LSTM, {}),
    "bidirectional LSTM": (nn.LSTM, {"bidirectional": True}),
    "2-layer LSTM": (nn.LSTM, {"num_layers": 2}),
}
CURVES = Path(__file__).resolve().parent / "img" / "palindromes.png"


def not_a_palindrome(rng: np.random.Generator, length: int) -> np.ndarray:
    """A near miss (a palindrome with one symbol changed off its centre) or a random non-palindrome."""
    if rng.random() < 0.5:
        s = palindrome(rng, length)
        j = int(rng.integers(length // 2))  # the left half: its mirror is another position
        s[j] = (s[j] + rng.integers(1, SYMBOLS)) % SYMBOLS
        return s
    while True:
        s = rng.integers(0, SYMBOLS, length)
        if (s != s[::-1]).any():
            return s


def palindrome(rng: np.random.Generator, length: int) -> np.ndarray:
    half = rng.integers(0, SYMBOLS, (length + 1) // 2)
    return np.concatenate([half, half[:length // 2][::-1]])


def make(rng: np.random.Generator, n: int, lo: int, hi: int) -> tuple[list[np.ndarray], np.ndarray]:
    """``n`` sequences of lengths lo-hi with a balanced label (a length-1 sequence is always a
    palindrome, so a negative draws its length from 2-hi)."""
    labels = rng.permutation(np.arange(n) % 2)
    seqs = [palindrome(rng, int(rng.integers(lo, hi + 1))) if label else
            not_a_palindrome(rng, int(rng.integers(max(lo, 2), hi + 1))) for label in labels]
    return seqs, labels


class Classifier(nn.Module):
    def __init__(self, layer: type[nn.Module], hidden: int, **options: object):
        super().__init__()
        self.embed = nn.Embedding(SYMBOLS, 16)
        self.rnn = layer(16, hidden, **options)
        self.directions = 2 if options.get("bidirectional") else 1
        self.head = nn.Linear(self.directions * hidden, 2)

    def forward(self, seqs: list[np.ndarray]):
        ids, lengths, _ = pad_sequences(seqs)
        _, h_n = self.rnn(self.embed(ids), lengths=lengths)
        h_n = h_n[0] if isinstance(h_n, tuple) else h_n  # an LSTM's (h_n, c_n)
        last = cat([h_n[-2], h_n[-1]], -1) if self.directions == 2 else h_n[-1]  # the top layer's
        return self.head(last)  # (B, 2)


def smooth(values: list[float], window: int = 50) -> np.ndarray:
    """The running mean over ``window`` updates (the curves are noisy per batch)."""
    v = np.asarray(values, dtype=float)
    window = min(window, v.size)
    return np.convolve(v, np.ones(window) / window, mode="valid")


def main(quick: bool = False) -> dict[str, float]:
    steps, batch, hidden = (150, 32, 32) if quick else (2500, 64, 64)
    tests = {"lengths 1-10": make(np.random.default_rng(99), 2000, 1, 10),
             "unseen lengths 11-20": make(np.random.default_rng(98), 2000, 11, 20)}
    result, curves = {}, {}
    for name, (layer, options) in list(NETWORKS.items())[2:3] if quick else NETWORKS.items():
        rng = seed(0)  # every network sees the same batches
        model = Classifier(layer, hidden, **options)

        def loss_step(i: int):
            seqs, labels = make(rng, batch, 1, 10)
            return F.cross_entropy(model(seqs), labels)

        curves[name] = smooth(fit(loss_step, model.parameters(), steps, lr=3e-3, desc=name).losses)
        for test, accuracy in held_out_accuracy(f"palindromes, {name}", model, tests).items():
            result[f"{name}: {test}"] = accuracy
    if not quick:
        draw(curves, CURVES)
    return result


def draw(curves: dict[str, np.ndarray], path: Path) -> None:
    """The learning curves in one PNG, if matplotlib (the ``plot`` extra) is installed."""
    try:
        from minirnn import plot
        path.parent.mkdir(exist_ok=True)
        plot.loss_curves(curves, path, ylabel="training loss (running mean of 50)",
                         title="palindromes, symbols 0-4, lengths 1-10")
        print(f"learning curves: {path}")
    except ImportError as err:
        print(f"no learning curves drawn: {err}")


if __name__ == "__main__":
    main(parse_quick(__doc__.split("\n")[0]))
