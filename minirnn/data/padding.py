"""Pad a list of variable-length sequences into one time-major (or batch-major) array."""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np


def pad_sequences(sequences: Sequence[Any], padding_value: float = 0, batch_first: bool = False,
                  dtype: Any = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Stack ``B`` sequences of lengths ``L_b`` (each ``(L_b, *F)``) into one padded array.

    Returns ``(padded, lengths, mask)``:

    - ``padded``: ``(T, B, *F)`` (``(B, T, *F)`` with ``batch_first``), ``T = max_b L_b``, with
      ``padded[t, b] = sequences[b][t]`` for ``t < L_b`` and ``padding_value`` elsewhere;
    - ``lengths``: ``(B,)`` int64, ``L_b``;
    - ``mask``: ``(T, B)`` bool (``(B, T)`` with ``batch_first``), ``mask[t, b] = t < L_b``.

    ``lengths`` is what the fused ``nn.RNN/LSTM/GRU`` take; ``mask`` weights a per-step loss.
    """
    if isinstance(sequences, (str, bytes)) or not isinstance(sequences, Sequence):
        raise TypeError(f"sequences: expected a list of sequences, got {type(sequences).__name__}")
    if len(sequences) == 0:
        raise ValueError("sequences: expected at least one sequence, got an empty list")
    arrays = [np.asarray(s) if dtype is None else np.asarray(s, dtype=dtype) for s in sequences]
    for b, a in enumerate(arrays):
        if a.ndim == 0:
            raise ValueError(f"sequences[{b}]: expected a sequence (ndim >= 1), got a scalar")
        if a.shape[1:] != arrays[0].shape[1:]:
            raise ValueError(f"sequences[{b}]: expected feature shape {arrays[0].shape[1:]}, got {a.shape[1:]}")
    lengths = np.array([len(a) for a in arrays], dtype=np.int64)
    out_dtype = np.result_type(*arrays) if dtype is None else np.dtype(dtype)
    padded = np.full((int(lengths.max()), len(arrays), *arrays[0].shape[1:]), padding_value, dtype=out_dtype)
    for b, a in enumerate(arrays):
        padded[:len(a), b] = a
    mask = np.arange(padded.shape[0])[:, None] < lengths[None, :]
    if batch_first:
        return np.swapaxes(padded, 0, 1).copy(), lengths, mask.T.copy()
    return padded, lengths, mask
