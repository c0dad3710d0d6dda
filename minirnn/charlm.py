"""The character language model: Embedding -> LSTM (2 layers) -> Linear.

``logits_t = W_out h^{(2)}_t + b``, where ``h^{(2)}`` is the top LSTM layer run over the
embedded characters ``E[x_t]``; ``p(x_{t+1} | x_{<=t}) = softmax(logits_t)``.
Shapes: ids (T, B) int -> logits (T, B, V); state ``(h, c)`` each (num_layers, B, hidden).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from . import nn
from .nn.embedding import Embedding
from .tensor import Tensor


class CharLM(nn.Module):
    """``model(ids, state=None) -> (logits, state)``, the interface of :mod:`minirnn.generate`."""

    def __init__(self, vocab_size: int, embed_dim: int = 32, hidden_size: int = 256, num_layers: int = 2,
                 dropout: float = 0.0, dtype: Any = np.float32):
        super().__init__()
        self.config = {"vocab_size": vocab_size, "embed_dim": embed_dim, "hidden_size": hidden_size,
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
