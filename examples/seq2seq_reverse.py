"""Example 3: sequence to sequence -- an encoder-decoder GRU that reverses digit strings.

The encoder GRU reads the source digits (lengths 1-8, with ``lengths``); its final state h_n
starts the decoder GRU. Training uses teacher forcing: the decoder input at step t is the TRUE
previous output token (``<s>`` first), so all steps run in one fused call and the loss is the
mean cross-entropy. Evaluation is free running: greedy decoding feeds back the model's own
previous token, one step at a time; a string counts only if every digit and the end token match.

    python examples/seq2seq_reverse.py [--quick]
"""
from __future__ import annotations

import numpy as np

from _common import fit, parse_quick, seed
from minirnn import Tensor, functional as F, nn, no_grad
from minirnn.data import pad_sequences
from minirnn.nn.embedding import Embedding

DIGITS, BOS, EOS, PAD = 10, 10, 11, 12  # tokens: 0-9, <s>, </s>, padding
VOCAB = 13


def make(rng: np.random.Generator, n: int, max_len: int) -> list[np.ndarray]:
    return [rng.integers(0, DIGITS, int(rng.integers(1, max_len + 1))) for _ in range(n)]


class Seq2Seq(nn.Module):
    def __init__(self, hidden: int):
        super().__init__()
        self.embed = Embedding(VOCAB, 32)
        self.encoder = nn.GRU(32, hidden)
        self.decoder = nn.GRU(32, hidden)
        self.head = nn.Linear(hidden, VOCAB)

    def encode(self, sources: list[np.ndarray]) -> Tensor:
        ids, lengths, _ = pad_sequences(sources, PAD)
        _, h_n = self.encoder(self.embed(ids), lengths=lengths)
        return h_n  # (1, B, H)

    def loss(self, sources: list[np.ndarray]) -> Tensor:
        """Teacher forcing: inputs <s> y_1 .. y_L, targets y_1 .. y_L </s> (padding ignored)."""
        targets = [np.append(s[::-1], EOS) for s in sources]
        inputs, lengths, _ = pad_sequences([np.insert(t[:-1], 0, BOS) for t in targets], PAD)
        out, _ = self.decoder(self.embed(inputs), self.encode(sources), lengths=lengths)
        gold = pad_sequences(targets, -100)[0]
        return F.cross_entropy(self.head(out).reshape(-1, VOCAB), gold.reshape(-1))

    def greedy(self, sources: list[np.ndarray], max_len: int) -> np.ndarray:
        """Free-running decode: (max_len + 1, B) token ids."""
        with no_grad():
            h = self.encode(sources)
            token = np.full((1, len(sources)), BOS)
            out = []
            for _ in range(max_len + 1):
                y, h = self.decoder(self.embed(token), h)
                token = self.head(y).data.argmax(-1)
                out.append(token[0])
        return np.stack(out)


def exact_match(model: Seq2Seq, sources: list[np.ndarray], max_len: int) -> float:
    decoded = model.greedy(sources, max_len)
    hits = [np.array_equal(decoded[:len(s) + 1, b], np.append(s[::-1], EOS)) for b, s in enumerate(sources)]
    return float(np.mean(hits))


def main(quick: bool = False) -> dict[str, float]:
    rng = seed(0)
    max_len, steps, hidden = (4, 100, 32) if quick else (8, 2500, 128)
    model = Seq2Seq(hidden)
    fit(lambda i: model.loss(make(rng, 64, max_len)), model.parameters(), steps, lr=3e-3)
    acc = exact_match(model, make(np.random.default_rng(7), 1000, max_len), max_len)
    print(f"seq2seq reverse (lengths 1-{max_len}): exact-match accuracy {acc:.3f} (greedy, free running)")
    return {"exact_match": acc}


if __name__ == "__main__":
    main(parse_quick(__doc__.split("\n")[0]))
