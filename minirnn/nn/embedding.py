"""``Embedding``: a lookup table of learnable vectors, one row per token id."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import functional as F
from .. import init
from ..tensor import Tensor
from ..checks import check_count, check_float_kind
from .module import Module, Parameter


class Embedding(Module):
    """``y[..., :] = weight[ids[...], :]``.

    Shapes: ids (any shape, integer) -> y ``(*ids.shape, embedding_dim)``; ``weight``
    ``(num_embeddings, embedding_dim)``, initialised N(0, 1) as in torch. With ``padding_idx``
    that row starts at zero and never receives gradient (so it stays zero under training).
    """

    def __init__(self, num_embeddings: int, embedding_dim: int, padding_idx: int | None = None,
                 dtype: Any = np.float32, generator: np.random.Generator | None = None):
        super().__init__()
        self.num_embeddings = check_count("num_embeddings", num_embeddings)
        self.embedding_dim = check_count("embedding_dim", embedding_dim)
        if padding_idx is not None:
            if isinstance(padding_idx, bool) or not isinstance(padding_idx, (int, np.integer)):
                raise TypeError(f"padding_idx: expected an int or None, got {type(padding_idx).__name__}")
            if not -num_embeddings <= padding_idx < num_embeddings:
                raise ValueError(f"padding_idx: expected a value in [{-num_embeddings}, {num_embeddings}), "
                                 f"got {padding_idx}")
            padding_idx = int(padding_idx) % num_embeddings
        self.padding_idx = padding_idx
        dt = check_float_kind("Embedding", dtype)
        self.weight = Parameter(init.normal_(np.empty((num_embeddings, embedding_dim), dt), generator=generator))
        if padding_idx is not None:
            self.weight.data[padding_idx] = 0

    def forward(self, ids: Any) -> Tensor:
        return F.embedding(ids, self.weight, self.padding_idx)

    def extra_repr(self) -> str:
        pad = f", padding_idx={self.padding_idx}" if self.padding_idx is not None else ""
        return f"{self.num_embeddings}, {self.embedding_dim}{pad}"
