"""``Optimizer``: the shared bookkeeping of SGD, Adam and RMSprop.

An optimizer holds ``param_groups`` -- a list of dicts, each with ``"params"`` (a list of
Parameters) and that group's hyper-parameters (``"lr"``, ...) -- plus per-parameter ``state``
(momentum buffers, running averages). ``step()`` runs under ``no_grad`` and updates each
``p.data`` in place, keeping its dtype; parameters whose ``.grad`` is None are skipped.
A parameter's state arrays have its dtype: after ``Module.to``/``.double()``/``.float()`` they
are converted at the next ``step`` or ``state_dict`` (the same values as converting them with the
parameter, since no update comes between).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping

import numpy as np

from ..autograd import no_grad
from ..checks import check_number
from ..tensor import Tensor

ParamsArg = Iterable[Tensor] | Iterable[Mapping[str, Any]]


def _follow_dtype(state: dict[str, Any], dtype: np.dtype) -> None:
    """Cast the float arrays of one parameter's ``state`` (moments, momentum) to ``dtype``, its
    parameter's, where a conversion of the parameter left them in the old one."""
    for key, value in state.items():
        if isinstance(value, np.ndarray) and value.dtype != dtype and value.dtype.kind == "f":
            state[key] = value.astype(dtype)


class Optimizer:
    """Base class: subclasses set ``defaults``, implement ``check_group`` and ``update``."""

    def __init__(self, params: ParamsArg, defaults: dict[str, Any]):
        self.defaults = dict(defaults)
        self.param_groups: list[dict[str, Any]] = []
        self.state: dict[int, dict[str, Any]] = {}  # id(param) -> that parameter's state
        items: list[Any] = list(params) if not isinstance(params, Tensor) else [params]
        if not items:
            raise ValueError("optimizer got an empty parameter list: expected at least one Parameter")
        groups = items if isinstance(items[0], Mapping) else [{"params": items}]
        for group in groups:
            self.add_param_group(group)

    def check_group(self, group: dict[str, Any]) -> None:
        """Validate one group's hyper-parameters (raise ValueError naming the bad one)."""
        check_number("lr", group["lr"])

    def update(self, param: Tensor, grad: np.ndarray, state: dict[str, Any], group: dict[str, Any]) -> None:
        """Update ``param.data`` in place from ``grad``; ``state`` starts empty."""
        raise NotImplementedError  # pragma: no cover - abstract

    def add_param_group(self, group: Mapping[str, Any]) -> None:
        """Add a dict with ``"params"`` and optional hyper-parameter overrides of ``defaults``."""
        if not isinstance(group, Mapping) or "params" not in group:
            raise TypeError(f"param group: expected a dict with a 'params' entry, got {type(group).__name__}")
        unknown = set(group) - set(self.defaults) - {"params"}
        if unknown:
            raise ValueError(f"param group: unknown options {sorted(unknown)}, expected some of "
                             f"{sorted(self.defaults)}")
        raw = group["params"]
        params = [raw] if isinstance(raw, Tensor) else list(raw)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for i, p in enumerate(params):
            if not isinstance(p, Tensor):
                raise TypeError(f"params[{i}]: expected a Tensor/Parameter, got {type(p).__name__}")
            if not p.requires_grad:
                raise ValueError(f"params[{i}]: expected a tensor that requires grad, got requires_grad=False")
            if id(p) in seen:
                raise ValueError(f"params[{i}]: a parameter appears in more than one place; expected each once")
            seen.add(id(p))
        full = {**self.defaults, **group, "params": params}
        self.check_group(full)
        self.param_groups.append(full)

    def zero_grad(self) -> None:
        """Reset every parameter's ``.grad`` to None."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self) -> None:
        """Apply one update to every parameter that has a gradient."""
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        state = self.state.setdefault(id(p), {})
                        _follow_dtype(state, p.data.dtype)
                        self.update(p, p.grad, state, group)

    def _params(self) -> list[Tensor]:
        return [p for group in self.param_groups for p in group["params"]]

    def state_dict(self) -> dict[str, Any]:
        """``{"state": {"<index>": {...}}, "param_groups": [{hyper-parameters, "params": [index]}]}``.

        Parameters are numbered in group order; arrays are copies. The structure holds only
        dicts, lists, numbers and ndarrays, so :func:`minirnn.save` can store it.
        """
        index = {id(p): i for i, p in enumerate(self._params())}
        for p in self._params():  # (a conversion since the last step: save the state as its parameter)
            _follow_dtype(self.state.get(id(p), {}), p.data.dtype)
        state = {str(index[pid]): {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in s.items()}
                 for pid, s in self.state.items() if s}
        groups = [{**{k: v for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p in g["params"]]}
                  for g in self.param_groups]
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: Mapping[str, Any]) -> None:
        """Restore hyper-parameters and state saved by :meth:`state_dict` (arrays cast to each param's dtype)."""
        if not isinstance(state_dict, Mapping) or set(state_dict) != {"state", "param_groups"}:
            raise ValueError("load_state_dict: expected a dict with keys 'state' and 'param_groups'")
        groups = list(state_dict["param_groups"])
        sizes = [len(g["params"]) for g in self.param_groups]
        if [len(g.get("params", ())) for g in groups] != sizes:
            raise ValueError(f"load_state_dict: expected param groups of sizes {sizes}, got "
                             f"{[len(g.get('params', ())) for g in groups]}")
        params = self._params()
        new_state: dict[int, dict[str, Any]] = {}
        for key, entries in state_dict["state"].items():
            i = int(key)
            if not 0 <= i < len(params):
                raise IndexError(f"load_state_dict: state index {i} out of range for {len(params)} parameters")
            p = params[i]
            new_state[id(p)] = {}
            for name, value in entries.items():
                if isinstance(value, np.ndarray) and value.ndim > 0:
                    if value.shape != p.shape:
                        raise ValueError(f"load_state_dict: state[{i}][{name!r}]: expected shape {p.shape}, "
                                         f"got {value.shape}")
                    value = value.astype(p.dtype, copy=True)
                elif isinstance(value, np.ndarray):
                    value = value.item()
                new_state[id(p)][name] = value
        options = [{k: (tuple(v) if isinstance(group.get(k), tuple) else v) for k, v in saved.items() if k != "params"}
                   for group, saved in zip(self.param_groups, groups)]
        for group, new in zip(self.param_groups, options):
            self.check_group({**group, **new})  # validate everything before changing anything
        for group, new in zip(self.param_groups, options):
            group.update(new)
        self.state = new_state

    def __repr__(self) -> str:
        lines = [f"{type(self).__name__} ("]
        for i, group in enumerate(self.param_groups):
            lines.append(f"Parameter Group {i}")
            lines.extend(f"    {k}: {v}" for k, v in sorted(group.items()) if k != "params")
        return "\n".join(lines + [")"])
