"""Bucketed batching: group sequences of similar length so padding wastes little work."""
from __future__ import annotations

from typing import Any, Iterator, Sequence

import numpy as np

from ..random import get_generator
from .padding import pad_sequences


class BucketBatcher:
    """Iterate over padded mini-batches of ``(inputs, targets)`` drawn from variable-length data.

    Each epoch sorts the examples by length (ties broken at random), cuts the sorted order into
    batches of ``batch_size``, and shuffles the order of the batches (``shuffle=True``). Sequences
    in one batch therefore have similar lengths, and the padded array ``(T, B, *F)`` is little
    larger than the data. Each item is ``(padded, lengths, mask, targets)`` from
    :func:`pad_sequences`, with ``targets`` the matching ``targets[i]`` stacked as an array (when
    they are all one shape) or padded the same way (when they are sequences of the inputs' lengths).
    """

    def __init__(self, inputs: Sequence[Any], targets: Sequence[Any], batch_size: int, shuffle: bool = True,
                 drop_last: bool = False, padding_value: float = 0, target_padding_value: float = 0,
                 generator: np.random.Generator | None = None):
        if len(inputs) != len(targets):
            raise ValueError(f"targets: expected {len(inputs)} targets (one per input), got {len(targets)}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"batch_size: expected a positive int, got {batch_size!r}")
        if len(inputs) == 0:
            raise ValueError("inputs: expected at least one example, got none")
        self.inputs, self.targets = list(inputs), list(targets)
        self.batch_size, self.shuffle, self.drop_last = int(batch_size), shuffle, drop_last
        self.padding_value, self.target_padding_value = padding_value, target_padding_value
        self.generator = get_generator(generator)
        self.lengths = np.array([len(x) for x in self.inputs])

    def __len__(self) -> int:
        full, rest = divmod(len(self.inputs), self.batch_size)
        return full if self.drop_last or rest == 0 else full + 1

    def batches(self) -> list[np.ndarray]:
        """The example indices of each batch for one epoch (sorted by length within buckets)."""
        tiebreak = self.generator.random(len(self.inputs)) if self.shuffle else np.arange(len(self.inputs))
        order = np.lexsort((tiebreak, self.lengths))
        groups = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.drop_last and len(groups[-1]) < self.batch_size:
            groups.pop()
        if self.shuffle:
            groups = [groups[i] for i in self.generator.permutation(len(groups))]
        return groups

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]]:
        for idx in self.batches():
            padded, lengths, mask = pad_sequences([self.inputs[i] for i in idx], self.padding_value)
            targets = [np.asarray(self.targets[i]) for i in idx]
            if all(t.ndim >= 1 and len(t) == n for t, n in zip(targets, lengths)):
                target = pad_sequences(targets, self.target_padding_value)[0]
            else:
                target = np.stack(targets)
            yield padded, lengths, mask, target
