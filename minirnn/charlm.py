"""The character language model: Embedding -> LSTM (2 layers) -> Linear.

``logits_t = W_out h^{(2)}_t + b``, where ``h^{(2)}`` is the top LSTM layer run over the
embedded characters ``E[x_t]``; ``p(x_{t+1} | x_{<=t}) = softmax(logits_t)``.
Shapes: ids (T, B) int -> logits (T, B, V); state ``(h, c)`` each (num_layers, B, hidden).
"""
from __future__ import annotations

from typing import Any, Iterator

import numpy as np

from . import nn
from .data import CharVocab
from .distributed import with_mean_value
from .generate import sequence_cross_entropy
from .nn.embedding import Embedding
from .tensor import Tensor


class CharLM(nn.Module):
    """``model(ids, state=None) -> (logits, state)``, the interface of :mod:`minirnn.generate`."""

    def __init__(self, vocab_size: int, embed_dim: int = 32, hidden_size: int = 256, num_layers: int = 2,
                 dropout: float = 0.0, dtype: Any = np.float32):
        super().__init__()
        self.config: dict[str, Any] = {"vocab_size": vocab_size, "embed_dim": embed_dim, "hidden_size": hidden_size,
                       "num_layers": num_layers, "dropout": dropout}
        self.embed = Embedding(vocab_size, embed_dim, dtype=dtype)
        self.lstm = nn.LSTM(embed_dim, hidden_size, num_layers=num_layers, dropout=dropout, dtype=dtype)
        self.head = nn.Linear(hidden_size, vocab_size, dtype=dtype)

    def forward(self, ids: Any, state: Any = None) -> tuple[Tensor, Any]:
        ids = np.asarray(ids)
        if ids.ndim != 2 or ids.dtype.kind not in "iu":
            raise ValueError(f"CharLM: ids: expected integer ids of shape (T, B), got {ids.dtype} {ids.shape}")
        out, state = self.lstm(self.embed(ids), state)
        return self.head(out), state


def training_loss(logits: Tensor, targets: np.ndarray) -> Tensor:
    """The mean next-character cross-entropy of ``logits`` (T, B, V) against ``targets`` (T, B).
    Under MPI (each rank holding some of the batch's streams) it is valued at the mean over ranks
    -- the whole batch's loss -- with this rank's gradient (:func:`minirnn.distributed.with_mean_value`)."""
    return with_mean_value(sequence_cross_entropy(logits, targets))


def state_shapes(vocab_size: int, embed_dim: int, hidden_size: int, num_layers: int) -> dict[str, tuple[int, ...]]:
    """The shape of every entry of ``CharLM(...).state_dict()``, computed without building the
    model (so that a checkpoint's declared sizes can be checked against its arrays first)."""
    gates = 4 * hidden_size
    shapes: dict[str, tuple[int, ...]] = {"embed.weight": (vocab_size, embed_dim)}
    for layer in range(num_layers):
        shapes[f"lstm.weight_ih_l{layer}"] = (gates, embed_dim if layer == 0 else hidden_size)
        shapes[f"lstm.weight_hh_l{layer}"] = (gates, hidden_size)
        shapes[f"lstm.bias_ih_l{layer}"] = (gates,)
        shapes[f"lstm.bias_hh_l{layer}"] = (gates,)
    shapes["head.weight"] = (vocab_size, hidden_size)
    shapes["head.bias"] = (vocab_size,)
    return shapes


_CHUNK = 1 << 16  # characters encoded at a time: temporaries of ~12 bytes a character, for this many only


def _code_chunks(text: str) -> Iterator[np.ndarray]:
    for a in range(0, len(text), _CHUNK):
        yield np.frombuffer(text[a:a + _CHUNK].encode("utf-32-le", "surrogatepass"), dtype=np.uint32)


def encode_corpus(text: str) -> tuple[CharVocab, np.ndarray]:
    """``(CharVocab.build(text), ids)`` without a Python object per character: ids are uint8
    (uint16, int32) when the vocabulary has <= 256 (65536, more) characters, so a corpus costs
    about one byte per character beside its text, not ~18 (a list of ints and an int64 array)."""
    if not isinstance(text, str):
        raise TypeError(f"text: expected a str, got {type(text).__name__}")
    counts = np.zeros(1, dtype=np.int64)
    for codes in _code_chunks(text):
        part = np.bincount(codes)
        if len(part) > len(counts):
            counts = np.pad(counts, (0, len(part) - len(counts)))
        counts[:len(part)] += part
    present = np.flatnonzero(counts)
    present = present[np.lexsort((present, -counts[present]))]  # most frequent first, ties by character
    vocab = CharVocab([chr(c) for c in present])
    dtype = next(t for t in (np.uint8, np.uint16, np.int32) if len(present) <= np.iinfo(t).max + 1)
    lookup = np.zeros(len(counts), dtype=dtype)
    lookup[present] = np.arange(len(present))
    ids = np.empty(len(text), dtype=dtype)
    for a, codes in zip(range(0, len(text), _CHUNK), _code_chunks(text)):
        ids[a:a + len(codes)] = lookup[codes]
    return vocab, ids


def default_corpus() -> str:
    """The English text of ``pydoc_data.topics`` (Python's help pages, ~465k characters), which
    every CPython install carries, in sorted topic order."""
    from pydoc_data.topics import topics
    return "\n".join(topics[k] for k in sorted(topics))


def split_held_out(ids: np.ndarray, val_fraction: float) -> tuple[np.ndarray, np.ndarray]:
    """``(train, held_out)``: ``ids`` with its last ``val_fraction`` (in (0, 1)) held out; each
    part must keep at least 2 ids (one input and one target)."""
    if isinstance(val_fraction, bool) or not isinstance(val_fraction, (int, float)) or not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction: expected a number in (0, 1), got {val_fraction!r}")
    cut = int(len(ids) * (1 - val_fraction))
    if cut < 2 or len(ids) - cut < 2:
        raise ValueError(f"data: expected enough characters for 2 to train on and 2 held out (val_fraction "
                         f"{val_fraction}), got {len(ids)}")
    return ids[:cut], ids[cut:]


def streams(ids: np.ndarray, batch: int) -> np.ndarray:
    """Cut a 1-D id sequence into ``batch`` contiguous streams, time-major ``(N // batch, batch)``:
    column b continues where it left off at each chunk, so TBPTT can carry the state."""
    n = len(ids) // batch
    if n < 2:
        raise ValueError(f"data: expected at least {2 * batch} characters for batch {batch}, got {len(ids)}")
    return np.ascontiguousarray(ids[:n * batch].reshape(batch, n).T)


def unigram_bits(train: np.ndarray, held_out: np.ndarray, vocab_size: int) -> float:
    """Cross-entropy in bits/char of ``held_out`` under the train character frequencies
    (add-one smoothed): ``-mean_t log2 p(x_t)``, the baseline a char LM must beat."""
    p = (np.bincount(train, minlength=vocab_size) + 1.0) / (len(train) + vocab_size)
    return float(-np.log2(p[held_out]).mean())


def evaluate_bits(model: CharLM, data: np.ndarray, seq_len: int) -> float:
    """Bits per character of the time-major streams ``data`` (N, B) under ``model``: the mean
    next-character cross-entropy / ln 2, state carried across chunks of ``seq_len``."""
    from .autograd import no_grad
    from .generate import teacher_forced_loss
    total, count, state = 0.0, 0, None
    was_training = model.training
    model.eval()
    with no_grad():
        for a in range(0, len(data) - 1, seq_len):
            chunk = data[a:a + seq_len + 1]
            loss, state = teacher_forced_loss(model, chunk, state)
            total += loss.item() * (len(chunk) - 1)
            count += len(chunk) - 1
    model.train(was_training)
    return total / count / np.log(2)
