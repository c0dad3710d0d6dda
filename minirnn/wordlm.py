"""The word-level language model p(w_t | w_<t): the network of :mod:`minirnn.charlm` (Embedding ->
LSTM -> Linear) over a vocabulary of words, and perplexity, the measure it is judged by.

Tokens are words and punctuation marks (:class:`~minirnn.data.WordVocab`); a word seen fewer than
``min_count`` times in the text becomes the unknown token ``<unk>``, so the vocabulary (and the
output layer) stays small and rare words still have a probability.

Perplexity is ``exp`` of the mean next-token cross-entropy in nats (``2 ** bits per token``): the
number of equally likely choices that would be as surprising. A model that ignores the context
scores at best the unigram perplexity of the held-out text under the training frequencies.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .charlm import evaluate_bits, unigram_bits
from .data import WordVocab

UNK = "<unk>"


def encode_words(text: str, min_count: int = 3) -> tuple[WordVocab, np.ndarray]:
    """``(vocabulary, ids)``: the words of ``text`` seen at least ``min_count`` times, most frequent
    first, plus ``<unk>`` for the rest; ids (L,) int32."""
    if not isinstance(text, str):
        raise TypeError(f"text: expected a str, got {type(text).__name__}")
    if isinstance(min_count, bool) or not isinstance(min_count, int) or min_count < 1:
        raise ValueError(f"min_count: expected an int >= 1, got {min_count!r}")
    vocab = WordVocab.build(text, min_count=min_count, unk=UNK)
    return vocab, vocab.encode(text).astype(np.int32)


def perplexity(model: Any, data: np.ndarray, seq_len: int) -> float:
    """Perplexity of the time-major token streams ``data`` (N, B) under the language model
    ``model(ids, state) -> (logits, state)``: exp of the mean next-token cross-entropy, the state
    carried across chunks of ``seq_len`` (works for the character model too: per character)."""
    return float(2.0 ** evaluate_bits(model, data, seq_len))


def unigram_perplexity(train: np.ndarray, held_out: np.ndarray, vocab_size: int) -> float:
    """Perplexity of ``held_out`` under the add-one smoothed token frequencies of ``train``."""
    return float(2.0 ** unigram_bits(train, held_out, vocab_size))
