"""Tests of the benchmark harness's pieces whose logic can be wrong (timing caps, target
verdicts, validation)."""
from __future__ import annotations

import numpy as np
import pytest

from minirnn.bench import targets, timing
from minirnn.bench.problem import Shape, make_problem
from minirnn.bench.threads import use_threads

TINY = (Shape(6, 2, 4, 5),)
def test_time_interleaved_caps_slow_contenders():
    calls = {"fast": 0, "slow": 0}

    def fast():
        calls["fast"] += 1

    def slow():
        calls["slow"] += 1
        sum(range(300_000))

    result = timing.time_interleaved([timing.Contender("fast", fast), timing.Contender("slow", slow)],
                                     repeats=20, budget_s=1e-9, warmup=1)
    assert result["slow"].repeats == 1 and calls["slow"] == 3  # warm-up, re-warm, one timed run
    assert result["fast"].repeats == 1 and calls["fast"] == 3
    uncapped = timing.time_interleaved([timing.Contender("fast", fast)], repeats=5, budget_s=10.0)
    assert uncapped["fast"].repeats == 5


def test_targets_verdicts():
    rec = {"mode": "lstm", "T": 100, "B": 1, "H": 64, "threads": 1, "task": "train",
           "median_s": {"fused": 1.0, "torch": 3.0, "numpy": 5.0, "floor": 0.5}}
    verdicts = {t.text: t for t in targets.evaluate([rec], [], [], None)}
    assert verdicts["train LSTM/GRU: fused / torch < 1.0 at every point"].status == "PASS"
    assert verdicts["train B<=32, H<=256: 2x faster than torch (LSTM), 4x (GRU)"].status == "PASS"
    numpy_target = verdicts["train: 3x faster than NumPy at every point, 10x at (100, 1, 64)"]
    assert numpy_target.status == "MISS" and numpy_target.worst == pytest.approx(0.2)
    assert "lstm T100 B1 H64" in numpy_target.misses[0]
    assert verdicts["train H>=512: fused / floor <= 1.25"].status == "n/a"
    gru = dict(rec, mode="gru", median_s={"fused": 1.0, "torch": 3.0})
    assert targets.evaluate([gru], [], [], None)[1].status == "MISS"  # GRU needs 4x


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="expected mode in"):
        make_problem("transformer", TINY[0])
    with pytest.raises(ValueError, match="expected an int n >= 1, got 0"):
        with use_threads(0):
            pass
    with pytest.raises(ValueError, match="expected repeats >= 1, got 0"):
        timing.time_interleaved([], repeats=0, budget_s=1.0)


def test_varlen_lengths_span_tenth_to_full():
    lengths = make_problem("gru", Shape(50, 400, 3, 3), varlen=True).lengths
    assert lengths.dtype == np.int64 and lengths.min() == 5 and lengths.max() == 50
