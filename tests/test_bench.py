"""Smoke tests of the benchmark harness: a tiny grid in seconds, the JSON structure, and the
pieces whose logic can be wrong (timing caps, target verdicts, validation)."""
from __future__ import annotations

import copy
import importlib.util
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from minirnn import _C
from minirnn.bench import dynamic, floor, harness, main, report, tape, targets, timing
from minirnn.bench.memory import workspace_bytes
from minirnn.bench.charlm import CharLMConfig
from minirnn.bench.distributed import DistributedConfig, mpiexec
from minirnn.bench.problem import MODES, Shape, make_problem
from minirnn.bench.dynamic import DynamicConfig
from minirnn.bench.tape import TapeConfig
from minirnn.bench.threads import use_threads
from minirnn.modes import VARIANTS

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"
TINY = (Shape(6, 2, 4, 5),)
TINY_LM = CharLMConfig(T=8, B=2, embed=4, hidden=6, layers=2)
TINY_DIST = DistributedConfig(seq_len=4, batch=4, embed=4, hidden=6, layers=2, steps=2)
TINY_DYNAMIC = DynamicConfig(trees=3, vocab=20, embed=6, hidden=4, graphs=3, graph_hidden=4, decoders=3,
                             decoder_hidden=4, max_output=4)
TINY_TAPE = TapeConfig(shapes=(Shape(5, 2, 3, 4),), ops=40, trees=3, depth=3, tree_hidden=4, tree_vocab=5, chars=6,
                       lm_embed=4, lm_hidden=6, lm_vocab=7)


def load_benchmark_script(name: str):
    """The module benchmarks/<name>.py (a script, not part of the package)."""
    spec = importlib.util.spec_from_file_location(name, BENCHMARKS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


CONTENDERS = {"fused", "cells", "numpy", "floor"}


@pytest.fixture(autouse=True)
def no_pause(monkeypatch):
    """The pause that lets other thread pools go idle, and samples of many calls, matter for real
    timings, not here: one call a sample."""
    monkeypatch.setattr(timing, "PAUSE_S", 0.0)
    monkeypatch.setattr(timing, "SAMPLE_MIN_S", 0.0)


def run_tiny(tmp_path, **kwargs):
    path = tmp_path / "bench.json"
    log = []
    results = main(quick=True, json_path=path, shapes=TINY, threads=(1,), repeats=2, charlm=TINY_LM,
                   tape=TINY_TAPE, dynamic=TINY_DYNAMIC, log=log.append, distributed=TINY_DIST, **kwargs)
    return results, json.loads(path.read_text()), "\n".join(log)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """One tiny run with torch, shared by the tests that read its results."""
    pytest.importorskip("torch")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(timing, "PAUSE_S", 0.0)
        return run_tiny(tmp_path_factory.mktemp("bench"))


def test_tiny_run_writes_complete_json(tiny):
    results, data, log = tiny
    assert data == json.loads(json.dumps(results))
    assert set(data) >= {"machine", "config", "grid", "memory", "varlen", "denormals", "variants", "projected", "charlm", "tape",
                         "dynamic", "targets", "load_average", "wall_s"}
    # which code and which micro-kernel the numbers measured (None only outside a git checkout)
    commit = data["machine"]["commit"]
    if (Path(__file__).resolve().parents[1] / ".git").exists():
        assert re.fullmatch(r"[0-9a-f]{7,}(\+changes)?", commit), commit
    else:
        assert commit is None
    assert data["machine"]["micro_kernel"] in ("portable", "avx2", "avx512")
    assert {(r["mode"], r["task"]) for r in data["grid"]} == {(m, t) for m in MODES for t in ("train", "infer")}
    for r in data["grid"]:
        assert set(r["median_s"]) == CONTENDERS | {"torch"}
        assert all(0 < r["min_s"][k] <= v for k, v in r["median_s"].items())
        assert r["flops"] == make_problem(r["mode"], TINY[0]).flops(r["task"] == "train")
    assert {r["mode"] for r in data["varlen"]} == set(MODES)
    assert all(set(r["median_s"]) == {"fused", "torch_packed", "torch_padded", "floor"} for r in data["varlen"])
    assert all(set(r["slowdown"]) == {"fused", "torch"} for r in data["denormals"])
    assert all(r["subnormal_outputs"] == 1.0 for r in data["denormals"])  # the data is what it claims
    assert "at least 100% of the NumPy reference's outputs are subnormal" in log
    for r in data["memory"]:
        assert all(b > 0 for b in r["peak_bytes"].values())
        assert set(r["infer_peak_bytes"]) == set(r["peak_bytes"]) and all(b > 0 for b in r["infer_peak_bytes"].values())
        assert r["infer_peak_bytes"]["fused"] < r["peak_bytes"]["fused"], r  # no workspace kept, no gradients
    assert "Peak memory of an inference step (no_grad)" in log
    # lstm workspace: gates 4H, h and c (T+1 each), tanh(c): 4 + 1 + 1 + 1 floats per T*B*H, plus h0/c0
    lstm = next(r for r in data["memory"] if r["mode"] == "lstm")
    assert lstm["workspace_bytes_per_tbh"] == pytest.approx(4 * (7 + 2 / TINY[0].T))
    assert lstm["workspace_formula"] == "4*(7*T*B*H + 2*B*H)"
    assert "lstm     T6 B2 H5:  4*(7*T*B*H + 2*B*H) bytes = " in log
    # the lecture variants: each beside its base mode, every contender timed on both, a table row each
    assert [(r["mode"], r["base"], r["task"]) for r in data["variants"]] == [
        (v, b, t) for v, b in VARIANTS.items() for t in ("train", "infer")]
    for r in data["variants"]:
        assert set(r["median_s"]) == set(r["base_median_s"]) == {"fused", "cells", "numpy"}
        assert all(v > 0 for v in [*r["median_s"].values(), *r["base_median_s"].values()])
        assert r["flops"] == make_problem(r["mode"], TINY[0]).flops(r["task"] == "train")
        assert sum(line.startswith(f"{r['mode']:17s} {r['base']:9s}") and r["task"] in line
                   for line in log.splitlines()) == 1
    # the projected LSTM beside the LSTM: both tasks, fused and torch on both, a table row each
    assert [(r["mode"], r["base"], r["task"], r["proj_size"]) for r in data["projected"]] == [
        ("lstm_proj", "lstm", t, TINY[0].H // 4) for t in ("train", "infer")]
    for r in data["projected"]:
        assert set(r["median_s"]) == set(r["base_median_s"]) == {"fused", "torch"}
        assert all(v > 0 for v in [*r["median_s"].values(), *r["base_median_s"].values()])
        assert r["flops"] == make_problem("lstm", TINY[0], proj_size=r["proj_size"]).flops(r["task"] == "train")
    assert "Projected LSTM (proj_size P) beside the LSTM" in log
    assert sum(line.startswith(f"{TINY[0].T:4d} {TINY[0].B:3d} {TINY[0].H:5d} {TINY[0].H // 4:4d}")
               for line in log.splitlines()) == 2
    lm = data["charlm"]
    assert lm["first_loss"]["minirnn"] == pytest.approx(lm["first_loss"]["torch"], rel=1e-4)
    assert lm["first_loss"]["minirnn"] == pytest.approx(np.log(lm["vocab"]), rel=0.1)
    assert [t["status"] in ("PASS", "MISS", "n/a") for t in data["targets"]] == [True] * 20  # 2 distributed
    for t in data["targets"]:  # every target printed with its verdict
        assert f"[{t['status']:4s}] {t['text']}" in log
    # the tape section: a record per measurement with every contender, and a table row each
    assert [(r["kind"], r.get("mode")) for r in data["tape"]] == [("cells", m) for m in MODES] + [
        ("ops", None), ("tree", None), ("sample", None)]
    for r in data["tape"]:
        composed = r["kind"] == "cells" and tape.composed_supported(r["mode"])
        cells = {"fused_layer", "floor"} if r["kind"] == "cells" else set()
        assert set(r["median_s"]) == {"tape", "torch"} | cells | ({"tape_composed"} if composed else set())
        assert all(0 < r["min_s"][k] <= v for k, v in r["median_s"].items())
        assert [n.startswith("tape_composed skipped") for n in r["notes"]] == ([] if composed or not cells else [True])
        assert sum(line.startswith(tape.label(r)) for line in log.splitlines()) == 1, tape.label(r)
    ops, tree, sample = data["tape"][-3:]
    assert ops["ops"] == 40 and ops["us_per_op"]["tape"] == pytest.approx(ops["median_s"]["tape"] * 1e6 / 40)
    assert TINY_TAPE.trees < tree["nodes"] <= TINY_TAPE.trees * (2 ** (TINY_TAPE.depth + 1) - 1)
    assert sample["chars_per_s"]["torch"] == pytest.approx(6 / sample["median_s"]["torch"])
    assert sample["config"] == {"vocab": 7, "embed": 4, "hidden": 6, "layers": 2, "temperature": 1.0}
    # the dynamic section: every contender computed the same loss, a table row per record
    assert [(r["kind"], r.get("trees")) for r in data["dynamic"]] == [
        ("treelstm", 3), ("treelstm", 1), ("treenet", 3), ("mpnn", None), ("decoders", None)]
    for r in data["dynamic"]:
        losses = r["loss"]
        assert set(losses) == set(r["median_s"]) >= {"tape", "autobatch", "autobatch_depth", "torch"}
        assert all(v == pytest.approx(losses["tape"], rel=1e-4) for v in losses.values()), r["kind"]
        assert 0 < r["batches"] < r["ops"] and 0 < r["record_s"] and 0 < r["schedule_s"]
        assert min(r["peak_bytes"].values()) > 0
        assert sum(line.startswith(dynamic.label(r)) for line in log.splitlines()) == 1  # its table row
    assert "by_level" in data["dynamic"][0]["median_s"]


def slowed(results):
    """A copy of a run's results in which minirnn is 1000x slower everywhere and 10x slower on
    subnormal data, so that every target that has a measured point misses."""
    out = copy.deepcopy(results)
    for r in out["grid"] + out["varlen"]:
        r["median_s"]["fused"] *= 1000
    for r in out["denormals"]:
        r["slowdown"]["fused"] = 10.0
    out["charlm"]["chars_per_s"]["minirnn"] /= 1000
    out["charlm"]["median_s"]["minirnn"] *= 1000
    for r in out["tape"]:
        r["median_s"]["tape"] *= 1000
    for r in out["dynamic"]:
        r["median_s"]["autobatch"] *= 1000
        r["record_s"] = r["median_s"]["autobatch"]
        r["peak_bytes"]["autobatch"] *= 1000
    if out["distributed"] is not None:  # 2 ranks 1000x slower than 1, overlap hiding nothing
        out["distributed"]["ratio"] /= 1000
        out["distributed"]["two_ranks"]["hidden"] = 0.0
    return out


def test_every_target_misses_with_a_label_per_record_kind(tiny, tmp_path):
    results = slowed(tiny[0])
    log = []
    png = tmp_path / "bench.png" if importlib.util.find_spec("matplotlib") else None
    verdicts = harness.publish(results, tmp_path / "bench.json", png, log.append)
    statuses = {t.text: t.status for t in verdicts}
    assert statuses.pop("train H>=512: fused / floor <= 1.25") == "n/a"  # the tiny run has H=5
    for text in [t for t in statuses if t.startswith("distributed") and results["distributed"] is None]:
        assert statuses.pop(text) == "n/a"  # (no MPI here)
    for text in [t for t in statuses if t.startswith("tape cell loops")]:  # the tiny run has none of their sizes
        assert statuses.pop(text) == "n/a"
    assert set(statuses.values()) == {"MISS"}
    where = {t.text.split(":")[0]: {m.split(":")[0] for m in t.misses} for t in verdicts}
    size = f"T{TINY[0].T} B{TINY[0].B} H{TINY[0].H} threads=1"
    assert where["train LSTM/GRU"] == {f"lstm {size}", f"gru {size}"}
    assert where["train"] == {f"{mode} {size}" for mode in MODES}
    assert where["varlen"] == {f"{mode} {size}" for mode in MODES}
    assert where["denormals"] == {f"{mode} {size}" for mode in MODES}
    assert where["char-LM"] == {f"char-LM T{TINY_LM.T} B{TINY_LM.B} H{TINY_LM.hidden} layers=2 threads=1"}
    assert where["tape per-op fixed cost"] == {"40 tiny ops on (4,) threads=1"}
    assert where["tape tree net (eager)"] == {f"tree net 3 trees {results['tape'][-2]['nodes']} nodes H4 threads=1"}
    assert where["tape sampling"] == {"sample 6 chars LSTM 2x6 threads=1"}
    text = "\n".join(log)
    assert where["autobatch Tree-LSTM"] == {f"Tree-LSTM 3 trees {results['dynamic'][0]['nodes']} nodes H4 threads=1"}
    assert len(where["autobatch never slower than eager by more than 10%"]) == 5
    assert text.count("[MISS]") == 15 + 2 * (results["distributed"] is not None)
    assert "miss: char-LM T8 B2 H6 layers=2 threads=1: " in text and "miss: gru " + size in text
    assert json.loads((tmp_path / "bench.json").read_text())["targets"] == results["targets"]
    if png is not None:
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_without_torch_skips_torch_with_a_note(tmp_path, monkeypatch):
    from minirnn.bench import torch_peer
    monkeypatch.setattr(torch_peer, "available", lambda: False)
    monkeypatch.setattr(tape, "composed_supported", lambda mode: False)  # cells without a fused= flag
    results, data, _ = run_tiny(tmp_path)
    assert all(set(r["median_s"]) == CONTENDERS for r in data["grid"])
    assert any("torch is not installed" in n for n in data["notes"])
    assert data["charlm"]["chars_per_s"].keys() == {"minirnn", "floor"}
    assert data["projected"] and all(set(r["median_s"]) == {"fused"} for r in data["projected"])
    assert data["tape"] and all("torch" not in r["median_s"] and "tape" in r["median_s"] for r in data["tape"])
    assert data["dynamic"] and all("torch" not in r["median_s"] and "autobatch" in r["median_s"]
                                   for r in data["dynamic"])
    assert all(set(r["median_s"]) == {"tape", "fused_layer", "floor"} for r in data["tape"] if r["kind"] == "cells")
    assert any(n.startswith("tape_composed skipped: minirnn's gru cell takes no fused= flag") for n in data["notes"])
    statuses = {t["text"]: t["status"] for t in data["targets"]}
    assert statuses["infer: fused / torch < 1.0 at every point"] == "n/a"
    assert [statuses[t] for t in statuses if t.startswith("tape")] == ["n/a"] * 5


def test_tiny_run_has_the_distributed_section_or_says_why_not(tiny):
    results, data, log = tiny
    statuses = {t["text"]: t["status"] for t in data["targets"]}
    distributed = [status for text, status in statuses.items() if text.startswith("distributed:")]
    if mpiexec() is None:
        assert data["distributed"] is None and distributed == ["n/a", "n/a"]
        assert any("the distributed section is skipped" in n for n in data["notes"])
    else:
        assert data["distributed"]["two_ranks"]["ranks"] == 2 and data["distributed"]["one_rank"]["ranks"] == 1
        assert "Distributed (MPI, the main job: T4 B4 H6 layers=2" in log
        assert len(distributed) == 2 and set(distributed) <= {"PASS", "MISS"}


def test_full_mode_runs_every_contender_at_one_thread_and_all_cores(monkeypatch):
    monkeypatch.setattr(harness, "all_cores", lambda: 2)
    results = main(quick=False, json_path=None, modes=("gru",), shapes=TINY, repeats=1, charlm=None,
                   tape=TapeConfig(**{**vars(TINY_TAPE), "modes": ("gru",)}), dynamic=None, log=lambda line: None)
    assert results["config"]["threads"] == [1, 2] and results["config"]["repeats"] == 1
    assert sorted((r["threads"], r["task"]) for r in results["grid"]) == [
        (1, "infer"), (1, "train"), (2, "infer"), (2, "train")]
    assert all({"fused", "cells", "numpy", "floor"} <= set(r["median_s"]) for r in results["grid"])
    # one call a sample here (the fixture's SAMPLE_MIN_S = 0), recorded for every contender
    assert all(r["calls_per_sample"] == dict.fromkeys(r["median_s"], 1) for r in results["grid"])
    assert not any(n.startswith(("cells skipped", "numpy skipped")) for n in results["notes"])  # full: every contender
    assert [r["mode"] for r in results["memory"]] == [r["mode"] for r in results["varlen"]] == ["gru"]
    assert results["charlm"] is None
    assert [r["kind"] for r in results["tape"]] == ["cells", "ops", "tree", "sample"]  # full mode too
    assert {r["threads"] for r in results["tape"]} == {2}  # at all cores


def values(x):
    """The numbers in a minirnn Tensor, a torch tensor or an array."""
    return np.asarray(x.detach().numpy()) if hasattr(x, "detach") else np.asarray(x)


def assert_same(ours: tape.Workload, theirs: tape.Workload) -> dict[str, np.ndarray]:
    """Two contenders of one measurement compute the same result and the same gradients (on their
    second run: a run starts from cleared gradients); returns the gradients."""
    results = [values(w.run()) for w in (ours, theirs) for _ in range(2)][1::2]
    np.testing.assert_allclose(results[0], results[1], rtol=1e-4, atol=1e-5)
    grads, expected = ours.grads(), theirs.grads()
    assert grads.keys() == expected.keys()
    for name, g in grads.items():
        np.testing.assert_allclose(g, expected[name], rtol=1e-4, atol=1e-5, err_msg=name)
    return grads


@pytest.mark.parametrize("mode", MODES)
def test_tape_cell_loops_compute_what_torch_cells_do(mode):
    """The cell-loop contenders (the default cell and, where the cells take fused=False, the
    composed one) give torch's outputs and gradients of x and every weight from the same weights."""
    pytest.importorskip("torch")
    problem = make_problem(mode, Shape(7, 3, 4, 5))
    theirs = tape.torch_cells(problem)
    for composed in (False, True)[:1 + tape.composed_supported(mode)]:
        grads = assert_same(tape.tape_cells(problem, composed), theirs)
        assert set(grads) == {"x", "weight_ih", "weight_hh", "bias_ih", "bias_hh"}
        assert grads["x"].shape == (7, 3, 4) and np.abs(grads["x"]).min() > 0


def test_tape_op_chain_and_tree_net_compute_what_torch_does():
    """The tiny-op chain and the tree net: the same loss and gradients in both frameworks."""
    pytest.importorskip("torch")
    chain = tape.ops_workloads(40, with_torch=True)
    assert set(assert_same(chain["tape"], chain["torch"])) == {"x"}
    trees, nodes = tape.tree_workloads(TINY_TAPE, with_torch=True)
    grads = assert_same(trees["tape"], trees["torch"])
    assert set(grads) == {"embed.weight", "compose.weight", "compose.bias", "classify.weight", "classify.bias"}
    assert np.abs(grads["compose.weight"]).max() > 0 and nodes > TINY_TAPE.trees


@pytest.mark.parametrize("temperature", [1.0, 0.0])
def test_tape_samplers_draw_the_same_characters(temperature):
    """minirnn's generate and torch's twin on the same weights draw the same characters (the
    same seeded uniforms, the same inverse CDF; temperature 0: argmax)."""
    pytest.importorskip("torch")
    lm = {"vocab": 11, "embed": 4, "hidden": 6, "layers": 2, "temperature": temperature}
    samplers = tape.sample_workloads(lm, 40, with_torch=True)
    ids = values(samplers["tape"].run())
    assert ids.shape == (40,) and 0 <= ids.min() and ids.max() < 11
    assert temperature == 0 or len(set(ids)) > 3
    np.testing.assert_array_equal(samplers["torch"].run(), ids)
    assert samplers["tape"].grads() == samplers["torch"].grads() == {}  # nothing to compare: no grad


def tape_records():
    """A cell loop at each of the issue's sizes and one elsewhere, and one of each other kind."""
    def cells(T, B, H, ours, floor_s):
        return {"kind": "cells", "mode": "gru", "T": T, "B": B, "I": H, "H": H, "threads": 2,
                "median_s": {"tape": ours, "torch": 1.0, "floor": floor_s}}
    return [cells(100, 1, 64, 0.25, 0.1), cells(100, 32, 128, 0.8, 0.5), cells(50, 64, 256, 0.9, 0.7),
            cells(7, 3, 5, 9.0, 1.0),  # not one of the sizes: not judged
            {"kind": "ops", "ops": 100, "threads": 2, "median_s": {"tape": 1.0, "torch": 2.0},
             "us_per_op": {"tape": 1e4, "torch": 2e4}},
            {"kind": "tree", "trees": 32, "nodes": 700, "H": 64, "threads": 2, "median_s": {"tape": 0.5}},
            {"kind": "sample", "chars": 1000, "config": {"layers": 2, "hidden": 128}, "threads": 2,
             "median_s": {"tape": 0.6, "torch": 1.0}, "chars_per_s": {"tape": 1667, "torch": 1000}}]


def test_tape_targets_verdicts():
    verdicts = {t.text: t for t in targets.evaluate([], [], [], None, tape_records())}
    cells = next(t for text, t in verdicts.items() if text.startswith("tape cell loops: tape / torch <= 0.3"))
    assert cells.status == "MISS" and cells.misses == ["gru cell loop T100 B32 H128 threads=2: 0.80 > 0.70"]
    floor_target = verdicts["tape cell loops at (50, 64, 256): tape / floor <= 1.2"]
    assert floor_target.misses == ["gru cell loop T50 B64 H256 threads=2: 1.29 > 1.20"]
    assert verdicts["tape per-op fixed cost: tape / torch <= 1.0"].status == "PASS"
    assert verdicts["tape tree net (eager): tape / torch <= 1.0"].status == "n/a"  # no torch time
    sample = verdicts["tape sampling: chars/s at least 2x torch's"]
    assert sample.status == "MISS" and sample.worst == pytest.approx(0.6)
    assert [t.status for t in targets.evaluate([], [], [], None)[-5:]] == ["n/a"] * 5  # no tape section


def test_tape_table_prints_a_row_per_record():
    records = tape_records()
    lines = report.tape_table(records).splitlines()
    assert len(lines) == 3 + len(records)
    assert lines[1].split()[:4] == ["tape", "section", "thr", "tape"]
    rows = dict(zip((tape.label(r) for r in records), lines[3:]))
    assert rows["gru cell loop T100 B1 H64"].split()[-7:] == ["250.00", "-", "1000.00", "-", "100.00", "0.25", "2.50"]
    assert rows["100 tiny ops on (4,)"].endswith("0.50      -  us/op tape 10000.00, torch 20000.00")
    assert rows["sample 1000 chars LSTM 2x128"].endswith("chars/s tape 1,667, torch 1,000")


def test_time_interleaved_caps_slow_contenders():
    calls = {"fast": 0, "slow": 0}

    def fast():
        calls["fast"] += 1

    def slow():
        calls["slow"] += 1
        sum(range(300_000))

    result = timing.time_interleaved([timing.Contender("fast", fast), timing.Contender("slow", slow)],
                                     repeats=20, budget_s=1e-9, warmup=1)
    # warm-up, a warm run sizing the sample, re-warm, one timed run
    assert result["slow"].repeats == 1 and calls["slow"] == 4
    assert result["fast"].repeats == 1 and calls["fast"] == 4
    uncapped = timing.time_interleaved([timing.Contender("fast", fast)], repeats=5, budget_s=10.0)
    assert uncapped["fast"].repeats == 5


def test_pause_only_after_a_contender_that_spins(monkeypatch):
    events = []
    monkeypatch.setattr(timing.time, "sleep", lambda seconds: events.append("sleep"))
    contenders = [timing.Contender(name, lambda name=name: events.append(name), spins=name == "b")
                  for name in "abc"]
    timing.time_interleaved(contenders, repeats=3, budget_s=10.0)
    # warm-up and sizing run of a, b, c; rounds a b c / b c a / c a b, each timed call after a re-warm call
    assert events.count("sleep") == 2
    assert all(events[i - 1] == "b" for i, e in enumerate(events) if e == "sleep")
    assert events.count("a") == events.count("b") == events.count("c") == 2 + 2 * 3


def test_a_short_step_is_sampled_as_back_to_back_calls(monkeypatch):
    # A fake clock that each call advances: 2 ms steps get 10 ms samples of 5 calls, 40 ms steps one
    # call a sample, and a sample's time is the mean of its calls.
    monkeypatch.setattr(timing, "SAMPLE_MIN_S", 0.01)
    clock = [0.0]
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock[0])
    calls = {"short": 0, "long": 0}

    def step(name: str, seconds: float):
        def run():
            calls[name] += 1
            clock[0] += seconds
        return timing.Contender(name, run, spins=False)

    result = timing.time_interleaved([step("short", 0.002), step("long", 0.04)], repeats=3, budget_s=10.0)
    assert result["short"].calls_per_sample == 5 and result["long"].calls_per_sample == 1
    assert calls["short"] == 2 + 3 * (1 + 5)  # warm-up, sizing run; each sample: re-warm + 5 timed
    assert calls["long"] == 2 + 3 * (1 + 1)
    assert result["short"].median_s == pytest.approx(0.002) and result["long"].median_s == pytest.approx(0.04)


def test_scaling_table_gives_speedups_over_the_fewest_threads():
    def rec(threads, fused, torch=None):
        times = {"fused": fused, "floor": fused / 2, **({"torch": torch} if torch else {})}
        return {"mode": "gru", "T": 50, "B": 64, "H": 512, "threads": threads, "task": "train", "median_s": times}
    assert report.scaling_table([rec(2, 1.0, 2.0)]) == ""  # one thread count: nothing to scale
    lines = report.scaling_table([rec(1, 1.0, 2.0), rec(4, 0.4, 0.5), rec(16, 0.125, 0.25)]).splitlines()
    assert lines[0].startswith("Thread scaling (speedup over 1 thread;")
    assert lines[1].split() == ["mode", "T", "B", "H", "task", "speedup", "of", "1", "thr", "4", "thr", "16", "thr"]
    assert lines[3].split() == ["gru", "50", "64", "512", "train", "fused", "1.00", "2.50", "8.00"]
    assert lines[4].split() == ["torch", "1.00", "4.00", "8.00"]
    assert lines[5].split() == ["floor", "1.00", "2.50", "8.00"]
    assert lines[6].split() == ["fused/torch", "0.50", "0.80", "0.50"]
    # without torch at some count (no torch installed, or skipped) its cells print as "-"
    no_torch = report.scaling_table([rec(1, 1.0), rec(2, 0.5)]).splitlines()
    assert no_torch[3].split()[-3:] == ["fused", "1.00", "2.00"] and no_torch[-1].split() == ["fused/torch", "-", "-"]


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


def test_a_miss_below_the_gemm_floor_says_so():
    """10x over NumPy needs 0.5 ms here: below the 0.6 ms floor, so unreachable; 3x over torch
    needs 1.0 ms, above the floor, so the miss carries no such note."""
    rec = {"mode": "lstm", "T": 100, "B": 1, "H": 64, "threads": 1, "task": "train",
           "median_s": {"fused": 1.2e-3, "torch": 1.5e-3, "numpy": 5.0e-3, "floor": 0.6e-3}}
    verdicts = {t.text: t for t in targets.evaluate([rec], [], [], None)}
    numpy_miss = verdicts["train: 3x faster than NumPy at every point, 10x at (100, 1, 64)"].misses
    assert numpy_miss == ["lstm T100 B1 H64 threads=1: 0.24 > 0.10 (needs 0.50 ms, below the GEMM floor 0.60 ms)"]
    torch_miss = verdicts["train B<=32, H<=256: 2x faster than torch (LSTM), 4x (GRU)"].misses
    assert torch_miss == ["lstm T100 B1 H64 threads=1: 0.80 > 0.50"]


@pytest.mark.parametrize("floor_ms, note", [(100.0, " (needs 80.00 ms, below the GEMM floor 100.00 ms)"), (50.0, "")])
def test_a_char_lm_miss_below_its_gemm_floor_says_so(floor_ms, note):
    """1.5x torch's 120 ms step needs 80 ms: below a 100 ms floor, not below a 50 ms one."""
    times = {"torch": 0.120, "minirnn": 0.100, "floor": floor_ms / 1e3}
    rec = {"config": {"T": 100, "B": 32, "hidden": 256, "layers": 2}, "threads": 2, "median_s": times,
           "chars_per_s": {name: 3200 / t for name, t in times.items()}}
    verdict = next(t for t in targets.evaluate([], [], [], rec) if t.text.startswith("char-LM"))
    assert verdict.misses == [f"char-LM T100 B32 H256 layers=2 threads=2: 0.83 > 0.67{note}"]


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


@pytest.mark.parametrize("varlen", [False, True])
def test_floor_does_the_gemms_of_the_rows_the_layer_computes(monkeypatch, varlen):
    """The floor's six products cover T*B rows, or only sum(lengths) with variable lengths: the
    same FLOPs as the layer's training step."""
    problem = make_problem("lstm", Shape(10, 6, 3, 4), varlen=varlen)
    flops = []
    matmul = _C.matmul

    def counting_matmul(a, b, transpose_a=False, transpose_b=False):
        c = matmul(a, b, transpose_a=transpose_a, transpose_b=transpose_b)
        flops.append(2 * c.shape[0] * c.shape[1] * (a.shape[0] if transpose_a else a.shape[1]))
        return c
    monkeypatch.setattr(floor._C, "matmul", counting_matmul)
    floor.floor_step(problem, train=True)()
    rows = 10 * 6 if not varlen else int(problem.lengths.sum())
    assert varlen == (rows < 10 * 6)
    assert sum(flops) == problem.flops(True) * rows / (10 * 6)


@pytest.mark.parametrize("mode", ["lstm", "gru", "rnn_tanh", "rnn_relu", "rnn_sigmoid", "gru_reset_before"])
def test_workspace_formula_matches_the_kernels_layout(mode):
    for T, B, H in ((1, 1, 1), (7, 3, 5), (100, 16, 1024)):
        assert workspace_bytes(mode, T, B, H) == 4 * _C.workspace_size(mode, T, B, H)
        assert workspace_bytes(mode, T, B, H, itemsize=8) == 8 * _C.workspace_size(mode, T, B, H)


@pytest.mark.checkout
def test_thread_knobs_script_times_every_variant_and_restores_the_knobs():
    """benchmarks/thread_knobs.py on tiny layers: one line per point with each variant's ratio to
    the default, and min_step_work / step sharing as they were afterwards."""
    knobs = load_benchmark_script("thread_knobs")
    before = _C.min_step_work()
    log = []
    knobs.main([1], repeats=1, work_shapes=TINY, sharing_shapes=TINY, log=log.append)
    assert _C.min_step_work() == before
    work_lines = [t for t in log if f" w{before} " in t]
    sharing_lines = [t for t in log if " auto " in t]
    assert len(work_lines) == len(MODES) * 2 and len(sharing_lines) == 2  # modes x tasks; lstm, gru
    assert all("(1.00)" in t and f" w{2 * before} " in t and f" w{4 * before} " in t for t in work_lines)
    assert all(" units " in t and " rows " in t for t in sharing_lines)


@pytest.mark.checkout
def test_gemm_layouts_products_agree_across_libraries_and_layouts():
    """benchmarks/gemm_layouts.py: every OpenBLAS call equals its torch twin, and each layout of dX
    and of dW gives the same matrix (so the script times the same product in each)."""
    pytest.importorskip("torch")
    results = {name: (np.asarray(ours()), theirs().numpy()) for name, ours, theirs in
               load_benchmark_script("gemm_layouts").products(Shape(6, 2, 4, 5))}
    assert len(results) == 6
    for ours, theirs in results.values():
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-5)
    for product, shape in (("dX", (12, 4)), ("dW", (20, 4))):
        layouts = [ours for name, (ours, _) in results.items() if name.startswith(product)]
        assert len(layouts) == (2 if product == "dX" else 3) and all(a.shape == shape for a in layouts)
        for a in layouts[1:]:
            np.testing.assert_allclose(a, layouts[0], rtol=1e-5, atol=1e-5)


@pytest.mark.checkout
def test_gemm_layouts_script_prints_a_line_per_product():
    pytest.importorskip("torch")
    log = []
    load_benchmark_script("gemm_layouts").main([1], TINY, repeats=1, log=log.append)
    lines = [t for t in log if " thr=1 " in t]
    assert len(lines) == 6 and log[-1].startswith("done in ")
    assert all(re.search(r"openblas +[\d.]+ ms .* torch +[\d.]+ ms .* openblas/torch [\d.]+$", t) for t in lines)


@pytest.mark.checkout
def test_tape_table_script_prints_a_row_per_measurement(monkeypatch, no_pause, capsys):
    """benchmarks/tape_table.py on the tiny tape config: which minirnn, then the table with one row
    per cell loop, the op chain, the tree net and sampling."""
    monkeypatch.setattr(tape, "TapeConfig", lambda: TINY_TAPE)
    load_benchmark_script("tape_table").main(["--repeats", "1", "--budget", "0.1", "--threads", "1"])
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("minirnn from ") and out[1].startswith("Tape vs torch eager")
    rows = [line for line in out if re.match(r"(lstm|gru|rnn_tanh) cell loop|\d+ tiny ops|tree net|sample ", line)]
    assert len(rows) == len(TINY_TAPE.modes) * len(TINY_TAPE.shapes) + 3


@pytest.mark.checkout
def test_tape_table_script_prints_the_dynamic_section_and_its_targets(monkeypatch, no_pause, capsys):
    monkeypatch.setattr(dynamic, "DynamicConfig", lambda: TINY_DYNAMIC)
    load_benchmark_script("tape_table").main(["--repeats", "1", "--budget", "0.1", "--threads", "1",
                                               "--section", "dynamic"])
    out = capsys.readouterr().out
    assert "Dynamic graphs: one example at a time" in out
    assert len(re.findall(r"^(Tree-LSTM|tree net|MPNN|decoders) ", out, re.M)) == 5
    assert out.count("] autobatch ") == 5


@pytest.mark.checkout
@pytest.mark.extension
def test_ab_builds_script_times_two_builds_in_alternating_processes():
    """benchmarks/ab_builds.py with the installed build as both A and B, one round on a tiny layer:
    each child loads the build it is given (it checks), and the report has the round and both ratios."""
    script = BENCHMARKS / "ab_builds.py"
    build = _C.__file__
    done = subprocess.run([sys.executable, str(script), build, build, "--mode", "gru", "--shape", "3,2,4,5",
                           "--task", "infer", "--rounds", "1", "--repeats", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("gru T3 B2 I4 H5 infer, 1 thread(s), 1 rounds")
    assert re.match(r"round 1: fused A [\d.]+ ms  B [\d.]+ ms  B/A [\d.]+   floor B/A [\d.]+$", lines[1])
    assert lines[2].startswith("fused B/A: median ") and lines[3].startswith("floor B/A: median ")


@pytest.mark.checkout
def test_ab_builds_script_in_process_loads_both_builds_in_one_process(tmp_path):
    """--in-process with the installed build and a copy of it (two files, so two modules): a B/A per
    round from kernel calls timed interleaved, and the summary line."""
    script = BENCHMARKS / "ab_builds.py"
    copy = tmp_path / Path(_C.__file__).name
    copy.write_bytes(Path(_C.__file__).read_bytes())
    done = subprocess.run([sys.executable, str(script), _C.__file__, str(copy), "--in-process", "--mode", "lstm",
                           "--shape", "3,2,4,5", "--task", "train", "--rounds", "2", "--repeats", "1"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith("lstm T3 B2 I4 H5 train, 1 thread(s), 2 rounds in one process")
    assert all(re.match(r"round \d: kernels A [\d.]+ ms  B [\d.]+ ms  B/A [\d.]+$", line) for line in lines[1:3])
    assert lines[3].startswith("kernels B/A: median ") and len(lines) == 4


@pytest.mark.checkout
def test_ab_builds_script_refuses_a_missing_build(tmp_path):
    script = BENCHMARKS / "ab_builds.py"
    done = subprocess.run([sys.executable, str(script), _C.__file__, str(tmp_path / "nothing.so")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "nothing.so': no such file" in done.stderr


@pytest.mark.checkout
def test_readme_tables_are_the_ones_the_cited_run_prints(capsys):
    """benchmarks/README.md names the run whose tables the top-level README shows; printing that
    run's tables with benchmarks/readme_tables.py gives exactly the README's rows."""
    cited = re.search(r"`python benchmarks/readme_tables.py\s+(results/\S+\.json)`",
                      (BENCHMARKS / "README.md").read_text())
    assert cited, "benchmarks/README.md should name the run the README's tables come from"
    tables = load_benchmark_script("readme_tables")
    tables.main([str(BENCHMARKS / cited.group(1))])
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 3 + 15 + 15 + 15  # three headers; training, inference, varlen rows at 2 threads
    readme = (BENCHMARKS.parent / "README.md").read_text()
    missing = [row for row in rows if row not in readme]
    assert missing == []


def test_the_distributed_section_without_mpi_is_skipped(monkeypatch):
    from minirnn.bench import distributed as section
    monkeypatch.setattr(section, "mpiexec", lambda: None)
    assert section.run_distributed(DistributedConfig(), 2) is None
    assert [t.status for t in section.targets(None)] == ["n/a", "n/a"]


@pytest.mark.checkout
def test_scaling_model_ring_allreduce_and_tables(capsys):
    model = load_benchmark_script("scaling_model")
    # 2 nodes send half the bytes twice: 1.25 GB over 1.25 GB/s is 1 s; 3 nodes, 2 buckets: 2 x 4 messages
    assert model.ring_allreduce_s(2, 1.25e9, 1.25e9, 0.0) == pytest.approx(1.0)
    assert model.ring_allreduce_s(3, 0.0, 1.0, 1e-3, buckets=2) == pytest.approx(8e-3)
    model.main(["--compute-s", "0.05"])
    out = capsys.readouterr().out
    assert out.count("| 10 Gb/s | 256 |") == 4 and "compute 50 ms per step of 32 sequences" in out
    assert "| 100 Gb/s | 256 | 1 | 1.6 |" in out  # strong scaling: 256 sequences over 256 nodes
