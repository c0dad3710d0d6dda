"""Smoke tests of the benchmark harness: a tiny grid in seconds, the JSON structure, and the
pieces whose logic can be wrong (timing caps, target verdicts, validation)."""
from __future__ import annotations

import json

import numpy as np
import pytest

from minirnn.bench import main, targets, timing
from minirnn.bench.charlm import CharLMConfig
from minirnn.bench.problem import MODES, Shape, make_problem
from minirnn.bench.threads import use_threads

TINY = (Shape(6, 2, 4, 5),)
TINY_LM = CharLMConfig(T=8, B=2, embed=4, hidden=6, layers=2)
CONTENDERS = {"fused", "cells", "numpy", "floor"}


@pytest.fixture(autouse=True)
def no_pause(monkeypatch):
    """The pause that lets other thread pools go idle matters for real timings, not here."""
    monkeypatch.setattr(timing, "PAUSE_S", 0.0)


def run_tiny(tmp_path, **kwargs):
    path = tmp_path / "bench.json"
    results = main(quick=True, json_path=path, shapes=TINY, threads=(1,), repeats=2, charlm=TINY_LM,
                   log=lambda line: None, **kwargs)
    return results, json.loads(path.read_text())


def test_tiny_run_writes_complete_json(tmp_path):
    pytest.importorskip("torch")
    results, data = run_tiny(tmp_path)
    assert data == json.loads(json.dumps(results))
    assert set(data) >= {"machine", "config", "grid", "memory", "varlen", "denormals", "charlm", "targets", "load_average"}
    assert {(r["mode"], r["task"]) for r in data["grid"]} == {(m, t) for m in MODES for t in ("train", "infer")}
    for r in data["grid"]:
        assert set(r["median_s"]) == CONTENDERS | {"torch"}
        assert all(0 < r["min_s"][k] <= v for k, v in r["median_s"].items())
        assert r["flops"] == make_problem(r["mode"], TINY[0]).flops(r["task"] == "train")
    assert {r["mode"] for r in data["varlen"]} == set(MODES)
    assert all(set(r["median_s"]) == {"fused", "torch_packed", "torch_padded"} for r in data["varlen"])
    assert all(set(r["slowdown"]) == {"fused", "torch"} for r in data["denormals"])
    for r in data["memory"]:
        assert all(b > 0 for b in r["peak_bytes"].values())
    # lstm workspace: gates 4H, h and c (T+1 each), tanh(c): 4 + 1 + 1 + 1 floats per T*B*H, plus h0/c0
    lstm = next(r for r in data["memory"] if r["mode"] == "lstm")
    assert lstm["workspace_bytes_per_tbh"] == pytest.approx(4 * (7 + 2 / TINY[0].T))
    lm = data["charlm"]
    assert lm["first_loss"]["minirnn"] == pytest.approx(lm["first_loss"]["torch"], rel=1e-4)
    assert lm["first_loss"]["minirnn"] == pytest.approx(np.log(lm["vocab"]), rel=0.1)
    assert [t["status"] in ("PASS", "MISS", "n/a") for t in data["targets"]] == [True] * 8


def test_without_torch_skips_torch_with_a_note(tmp_path, monkeypatch):
    from minirnn.bench import torch_peer
    monkeypatch.setattr(torch_peer, "available", lambda: False)
    results, data = run_tiny(tmp_path)
    assert all(set(r["median_s"]) == CONTENDERS for r in data["grid"])
    assert any("torch is not installed" in n for n in data["notes"])
    assert data["charlm"]["chars_per_s"].keys() == {"minirnn"}
    statuses = {t["text"]: t["status"] for t in data["targets"]}
    assert statuses["infer: fused / torch < 1.0 at every point"] == "n/a"


def test_png_chart(tmp_path):
    pytest.importorskip("matplotlib")
    pytest.importorskip("torch")
    png = tmp_path / "bench.png"
    main(quick=True, json_path=None, png_path=png, modes=("gru",), shapes=TINY, threads=(1,), repeats=1,
         charlm=None, log=lambda line: None)
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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
