"""``GraphBuilder``: collects ONNX nodes and initializers under unique value names."""
from __future__ import annotations

import itertools
from typing import Any, Hashable

import numpy as np


class GraphBuilder:
    """Nodes in the order they are added (callers add a node after its inputs), initializers
    from NumPy arrays, and a fresh name for every value."""

    def __init__(self) -> None:
        from onnx import helper, numpy_helper
        self._helper, self._numpy_helper = helper, numpy_helper
        self.nodes: list[Any] = []
        self.initializers: list[Any] = []
        self._counter = itertools.count()
        self._shared: dict[Hashable, str] = {}

    def fresh(self, hint: str) -> str:
        return f"{hint}_{next(self._counter)}"

    def const(self, array: np.ndarray, hint: str, key: Hashable = None) -> str:
        """An initializer holding ``array``; returns its name. Calls with the same ``key`` (not
        None) share the first one's: a layer called twice has its weights in the file once."""
        if key is not None and key in self._shared:
            return self._shared[key]
        name = self.fresh(hint)
        self.initializers.append(self._numpy_helper.from_array(np.ascontiguousarray(array), name))
        if key is not None:
            self._shared[key] = name
        return name

    def ints(self, values: list[int], hint: str = "ints") -> str:
        return self.const(np.array(values, dtype=np.int64), hint)

    def op(self, op_type: str, inputs: list[str], hint: str, outputs: int = 1, **attrs: Any) -> list[str]:
        """Add one node; returns the names of its ``outputs`` outputs. Missing optional inputs
        are ``""`` (trailing ones are dropped)."""
        while inputs and inputs[-1] == "":
            inputs = inputs[:-1]
        names = [self.fresh(f"{hint}_{op_type}") for _ in range(outputs)]
        self.nodes.append(self._helper.make_node(op_type, inputs, names, name=self.fresh(hint), **attrs))
        return names

    def one(self, op_type: str, inputs: list[str], hint: str, **attrs: Any) -> str:
        return self.op(op_type, inputs, hint, 1, **attrs)[0]
