"""minirnn/modes.py, the one table of modes, against the compiled kernels' own mode names and gate
counts (csrc/rnn.cpp ``parse_mode`` and ``num_gates``, which cannot import the table; the kernels'
tests hold those to their own oracle, test_kernels.GATES)."""
from __future__ import annotations

import numpy as np
import pytest

from minirnn import _C, modes


def test_variants_and_elman_nonlinearities_name_modes_of_one_family():
    for variant, base in modes.VARIANTS.items():
        assert modes.FAMILY[variant] == modes.FAMILY[base] and variant != base
    assert {modes.FAMILY[m] for m in modes.ELMAN_MODES.values()} == {"elman"}
    assert set(modes.ELMAN_MODES.values()) == {m for m, f in modes.FAMILY.items() if f == "elman"}


def _layer_args(mode: str, gates: int, T: int = 2, B: int = 3, I: int = 4, H: int = 5) -> list:  # noqa: E741
    """rnn_forward's arguments after the mode, with ``gates`` row blocks in the weights."""
    rng = np.random.default_rng(0)
    c0 = np.zeros((B, H), np.float32) if mode == "lstm" else None
    return [rng.standard_normal(s, dtype=np.float32) for s in ((T, B, I), (gates * H, I), (gates * H, H))] + [
        None, None, np.zeros((B, H), np.float32), c0, None]


@pytest.mark.parametrize("mode", sorted(modes.NUM_GATES))
def test_kernels_take_exactly_the_tables_gate_count(mode):
    gates = modes.NUM_GATES[mode]
    y = _C.rnn_forward(mode, *_layer_args(mode, gates))[0]
    assert y.shape == (2, 3, 5)
    with pytest.raises(ValueError, match=f"w_hh: expected .*G = {gates} for mode '{mode}'"):
        _C.rnn_forward(mode, *_layer_args(mode, gates + 1))


def test_kernels_name_the_tables_modes():
    with pytest.raises(ValueError, match="mode: expected one of") as err:
        _C.rnn_forward("gru_reset_after", *_layer_args("gru", 3))
    listed = str(err.value).split("expected one of ")[1].split(", got")[0]
    assert sorted(name.strip("'") for name in listed.split(", ")) == sorted(modes.FAMILY)
