"""Recurrent weights between minirnn's (PyTorch's) layout and ONNX's.

Legend: D directions, G gates, H hidden size, I input size. minirnn stores, per (layer,
direction), ``weight_ih`` (G*H, I), ``weight_hh`` (G*H, H), ``bias_ih``/``bias_hh`` (G*H,) with the
gate blocks in the order LSTM i f g o, GRU r z n. One ONNX LSTM/GRU/RNN node is one layer, all
directions: W (D, G*H, I), R (D, G*H, H), B (D, 2*G*H) = [Wb | Rb], gate blocks LSTM i o f c,
GRU z r h. PyTorch's GRU is ONNX's ``linear_before_reset=1``; the GRU as the lectures write it
(``reset_after=False``, mode gru_reset_before) is ONNX's default, ``linear_before_reset=0``.
"""
from __future__ import annotations

import numpy as np

from ..modes import FAMILY

#: ONNX operator of each minirnn mode family.
_FAMILY_OPS = {"elman": "RNN", "lstm": "LSTM", "gru": "GRU"}
#: ONNX gate block j is minirnn's block ``_FAMILY_ORDER[family][j]`` (LSTM i o f c, GRU z r h).
_FAMILY_ORDER = {"elman": (0,), "lstm": (0, 3, 1, 2), "gru": (1, 0, 2)}
#: ONNX operator of each minirnn mode.
ONNX_OPS = {mode: _FAMILY_OPS[family] for mode, family in FAMILY.items()}
#: ONNX gate block j is minirnn's block ``TO_ONNX[mode][j]``.
TO_ONNX = {mode: _FAMILY_ORDER[family] for mode, family in FAMILY.items()}
#: minirnn's gate block j is ONNX's block ``FROM_ONNX[mode][j]`` (the inverse permutation).
FROM_ONNX = {mode: tuple(int(k) for k in np.argsort(order)) for mode, order in TO_ONNX.items()}


def reorder_gates(w: np.ndarray, order: tuple[int, ...]) -> np.ndarray:
    """The (G*H, ...) array ``w`` with its G row blocks taken in ``order``."""
    blocks = np.split(w, len(order), axis=0)
    return np.concatenate([blocks[k] for k in order], axis=0)
