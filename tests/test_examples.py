"""The examples of examples/ run end to end in their shortened form (``main(quick=True)``).

examples/ is not part of the wheel, so it is found next to this file (a clone's tests/ and
examples/ sit side by side); the scripts import their shared ``_common`` helper as a sibling, so
examples/ goes on sys.path for the duration of each test. The quick runs use tiny shapes, where a
second OpenMP thread only adds synchronisation (and on a busy 2-core machine, waiting for a core):
they run single-threaded, and the thread count is restored afterwards. Each quick run is seeded,
so where it learns enough to beat a trivial baseline, the test says so.
"""
from __future__ import annotations

import importlib
import importlib.util
import math
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from minirnn import _C

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
if not (EXAMPLES / "_common.py").is_file():
    pytest.skip(f"examples: expected the examples/ folder beside tests/ at {EXAMPLES}", allow_module_level=True)


@pytest.fixture
def example(monkeypatch):
    """``example(name)`` imports examples/<name>.py, single-threaded kernels for the test's duration;
    afterwards the example modules leave sys.modules (their names, like ``_common``, are generic)."""
    monkeypatch.syspath_prepend(str(EXAMPLES))
    before = _C.num_threads()
    _C.set_num_threads(1)
    yield lambda name: importlib.import_module(name)
    _C.set_num_threads(before)
    for name, module in list(sys.modules.items()):
        if Path(getattr(module, "__file__", None) or "/").parent == EXAMPLES:
            del sys.modules[name]


def run_quick(example, name: str, keys: set[str], capsys, printed: str,
              lines: int = 1) -> tuple[ModuleType, dict[str, float]]:
    """Run examples/<name>.py's quick version; check that every training run in it (each call of
    ``_common.fit``) lowered its loss -- the mean of its last quarter of updates below the mean of
    its first -- its result's keys and value types, and that it printed ``lines`` lines containing
    ``printed``."""
    common = example("_common")
    traces = []

    def recording_fit(*args, **kwargs):
        traces.append(fit(*args, **kwargs))
        return traces[-1]

    fit, common.fit = common.fit, recording_fit  # (before the example imports it)
    module = example(name)
    if getattr(module, "fit", None) is fit:  # (imported before: this test read its tables first)
        module.fit = recording_fit
    result = module.main(quick=True)
    assert traces, f"{name}: no training run went through _common.fit"
    for k, trace in enumerate(traces):
        quarter = max(1, len(trace.losses) // 4)
        first, last = np.mean(trace.losses[:quarter]), np.mean(trace.losses[-quarter:])
        assert last < first, f"{name}: training run {k}: the loss did not fall ({first:.4g} -> {last:.4g})"
    assert set(result) == keys
    assert all(isinstance(v, float) for v in result.values()), result
    assert capsys.readouterr().out.count(printed) == lines
    return module, result


def assert_rates(result: dict[str, float]) -> None:
    for key, value in result.items():
        assert 0.0 <= value <= 1.0, f"{key}: expected a rate in [0, 1], got {value}"


def test_palindromes(example, capsys):
    ex, result = run_quick(example, "palindromes", {"LSTM: lengths 1-10", "LSTM: unseen lengths 11-20"}, capsys,
                           "palindromes, LSTM: held-out accuracy")
    assert_rates(result)
    assert result["LSTM: lengths 1-10"] > 0.6  # balanced labels: chance is 0.5


def test_palindromes_are_labelled_correctly(example):
    ex = example("palindromes")
    seqs, labels = ex.make(np.random.default_rng(0), 400, 1, 20)
    assert all(1 <= len(s) <= 20 and set(s.tolist()) <= set(range(ex.SYMBOLS)) for s in seqs)
    assert labels.tolist() == [int(list(s) == list(s[::-1])) for s in seqs]
    assert labels.sum() == 200  # balanced
    assert {len(s) for s in seqs} == set(range(1, 21))


def test_palindromes_draw_the_learning_curves(example, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    ex = example("palindromes")
    ex.draw({name: ex.smooth(list(np.linspace(0.7, 0.1, 80))) for name in ex.NETWORKS}, tmp_path / "curves.png")
    assert (tmp_path / "curves.png").stat().st_size > 1000
    assert "learning curves" in capsys.readouterr().out


def test_adding_problem(example, capsys):
    ex = example("adding_problem")
    variants = {f"{experiment}: {name}": max_norm for experiment, (*_, table) in ex.EXPERIMENTS.items()
                for name, (*_, max_norm) in table.items()}
    _, result = run_quick(example, "adding_problem", set(variants), capsys,
                           "largest gradient norm", len(variants))
    for name, max_norm in variants.items():
        mse = result[name]
        if max_norm is not None or not math.isnan(mse):  # only a run without clipping may diverge
            assert math.isfinite(mse) and 0.0 <= mse < 1.0, f"{name}: test MSE {mse}"


def test_adding_problem_target_is_the_sum_of_the_marked_values(example):
    x, y = example("adding_problem").make(np.random.default_rng(0), 50, 10)
    assert x.shape == (10, 50, 2) and y.shape == (50, 1)
    marks = x[:, :, 1]
    assert (marks.sum(0) == 2).all() and (marks[:5].sum(0) == 1).all()
    np.testing.assert_allclose(y[:, 0], (x[:, :, 0] * marks).sum(0), rtol=1e-6)


def test_seq2seq_reverse(example, capsys):
    _, result = run_quick(example, "seq2seq_reverse", {"exact_match"}, capsys, "exact-match accuracy")
    assert_rates(result)
    assert result["exact_match"] > 0.2  # guessing a whole reversed string of 1-4 digits: < 0.1


def test_irregular_series(example, capsys):
    _, result = run_quick(example, "irregular_series", {
        f"{model}: {metric}" for model in ("RNN_dt", "without dt") for metric in ("one step", "free-running, 5 steps")},
        capsys, "held-out MSE", 2)
    for name, mse in result.items():
        assert 0.0 <= mse < 0.5, f"{name}: MSE {mse} not below the signal's variance"


def test_irregular_series_inputs_are_the_gaps_since_the_previous_observation(example):
    ex = example("irregular_series")
    x, gap = ex.make(np.random.default_rng(0), 3, 6)
    assert x.shape == gap.shape == (6, 3) and (gap[0] == 0).all() and (gap[1:] >= 0.05).all()
    model = ex.Forecaster(True, 4)
    forecast, _ = model(x[:-1], gap)  # the forecast of x[i] depends on gap[i], not on later gaps
    changed = gap.copy()
    changed[4] += 0.3
    again, _ = model(x[:-1], changed)
    np.testing.assert_array_equal(again.data[:3], forecast.data[:3])
    assert not np.allclose(again.data[3:], forecast.data[3:])


def test_free_running_reads_only_the_warm_up(example):
    ex = example("irregular_series")
    x, gap = ex.make(np.random.default_rng(1), 4, 12)
    model = ex.Forecaster(True, 4)
    forecast = ex.free_running(model, x, gap, 8)
    assert forecast.shape == (4, 4)
    changed = x.copy()
    changed[8:] = 0.0  # the observations to forecast: never read
    np.testing.assert_array_equal(ex.free_running(model, changed, gap, 8), forecast)
    changed[7] += 1.0  # the last one read
    assert not np.allclose(ex.free_running(model, changed, gap, 8), forecast)


def test_tree_expressions(example, capsys):
    ex, result = run_quick(example, "tree_expressions", {"depth <= 4", "deeper, <= 6"}, capsys,
                           "tree expressions: held-out accuracy")
    assert_rates(result)
    labels = ex.make(np.random.default_rng(11), 200, 4)[1]  # main's quick held-out set
    assert result["depth <= 4"] > example("_common").majority_rate(labels) + 0.05


def test_tree_expressions_train_the_same_with_and_without_autobatch(example, capsys):
    ex = example("tree_expressions")
    assert ex.main(quick=True, batched=False) == pytest.approx(ex.main(quick=True, batched=True), abs=1e-9)


def test_tree_lstm_sentiment(example, capsys):
    ex, result = run_quick(example, "tree_lstm_sentiment", {"root_accuracy", "phrase_accuracy", "ms_per_step"}, capsys,
                           "Tree-LSTM sentiment (autobatch")
    assert_rates({k: v for k, v in result.items() if k != "ms_per_step"})
    phrases = np.concatenate([[ex.label(n) for n in ex.inner_nodes(t)] for t in ex.make(np.random.default_rng(7), 100)])
    assert result["phrase_accuracy"] > example("_common").majority_rate(phrases) + 0.05
    eager = ex.main(quick=True, batched=False)
    assert eager["root_accuracy"] == result["root_accuracy"] and eager["phrase_accuracy"] == result["phrase_accuracy"]


def test_tree_lstm_sentiment_labels_follow_the_words(example):
    ex = example("tree_lstm_sentiment")
    good, bad, plain = ex.POSITIVE[0], ex.NEGATIVE[0], ex.NEUTRAL[0]
    assert [ex.label(t) for t in ((good, plain), (bad, good), (bad, (plain, bad)))] == [2, 1, 0]
    assert ex.label((ex.NOT, (good, good))) == 0 and ex.label((ex.NOT, bad)) == 2
    assert ex.inner_nodes(((good, bad), plain)) == [(good, bad), ((good, bad), plain)]


def test_tree_values(example):
    ex = example("tree_expressions")
    assert ex.value(("xor", ("and", True, False), ("not", True))) is False
    assert ex.value(("or", ("not", False), False)) is True


def test_bidirectional_tagging(example, capsys):
    ex, result = run_quick(example, "bidirectional_tagging", {"bidirectional", "left-to-right"}, capsys,
                           "token accuracy", 2)
    assert_rates(result)
    tags = np.concatenate(ex.make(np.random.default_rng(3), 1000)[1])  # main's test set
    baseline = max(result["left-to-right"], example("_common").majority_rate(tags))
    assert result["bidirectional"] > baseline + 0.02


def test_tagging_tags_mark_repeated_symbols(example):
    seqs, tags = example("bidirectional_tagging").make(np.random.default_rng(0), 50)
    for s, t in zip(seqs, tags):
        assert 5 <= len(s) <= 20 and t.tolist() == [int(list(s).count(v) > 1) for v in s]


def test_quick_flag_on_the_command_line():
    """The script path: ``python examples/X.py --quick`` (argparse, the sibling import)."""
    env = {**os.environ, "OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}
    run = subprocess.run([sys.executable, str(EXAMPLES / "irregular_series.py"), "--quick"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("held-out MSE") == 2
    run = subprocess.run([sys.executable, str(EXAMPLES / "tree_expressions.py"), "--quick", "--no-autobatch"],
                         capture_output=True, text=True, timeout=120, env=env)
    assert run.returncode == 0, run.stderr
    assert run.stdout.count("held-out accuracy") == 1


def test_message_passing(example, capsys):
    _, result = run_quick(example, "message_passing", {
        f"{model}: {test}" for model in ("MPNN, 4 rounds", "no edges (bag of nodes)")
        for test in ("8-16 nodes", "unseen sizes, 20-30 nodes")}, capsys, "message passing", 2)
    assert_rates(result)
    # the labels are balanced: only reading the edges beats 0.5
    assert result["MPNN, 4 rounds: 8-16 nodes"] > max(0.65, result["no edges (bag of nodes): 8-16 nodes"] + 0.1)


def test_message_passing_graphs(example):
    ex = example("message_passing")
    assert ex.connected(4, np.array([[0, 2], [2, 3], [3, 1]]), 0, 1)
    assert not ex.connected(4, np.array([[0, 2], [3, 1]]), 0, 1)
    graphs, labels = ex.make(np.random.default_rng(0), 40)
    assert labels.sum() == 20 and graphs.count == 40
    for g in range(40):  # nodes 0 and 1 of each graph are red and blue; labels follow the edges
        nodes = np.flatnonzero(graphs.graph_of == g)
        assert graphs.colour[nodes[:2]].tolist() == [ex.RED, ex.BLUE] and (graphs.colour[nodes[2:]] == ex.PLAIN).all()
        inside = np.isin(graphs.src, nodes)
        assert np.isin(graphs.dst[inside], nodes).all()
        edges = np.stack([graphs.src[inside], graphs.dst[inside]], 1) - nodes[0]
        assert labels[g] == ex.connected(nodes.size, edges, 0, 1)


def test_neural_computer(example, capsys):
    ex, result = run_quick(example, "neural_computer", {"neural computer: lengths 1-4", "LSTM: lengths 1-4"},
                           capsys, "copy task", 2)
    assert_rates(result)
    assert result["neural computer: lengths 1-4"] > 0.6  # random bits: chance is 0.5


def test_neural_computer_loss_falls_and_memory_is_read_and_written(example):
    ex = example("neural_computer")
    inputs, targets = ex.make(np.random.default_rng(0), 3, 4)
    assert inputs.shape == (9, 3, ex.BITS + 1) and targets.shape == (4, 3, ex.BITS)
    assert (inputs[4, :, ex.BITS] == 1).all() and inputs[:, :, ex.BITS].sum() == 3  # one interrupt each
    np.testing.assert_array_equal(inputs[:4, :, :ex.BITS], targets)
    ex.seed(0)
    model = ex.NeuralComputer(16, 8, 6)
    losses = example("_common").fit(lambda i: ex.copy_loss(model, inputs, targets), model.parameters(), 40,
                                    lr=1e-2).losses
    assert losses[-1] < 0.8 * losses[0]
    assert np.abs(model.memory0.grad).sum() > 0  # the gradient reached the memory through reads and writes


def test_circular_shift_moves_the_weights_by_one_slot(example):
    ex = example("neural_computer")
    from minirnn import Tensor
    w = Tensor(np.array([[1.0, 0.0, 0.0, 0.0]]))
    np.testing.assert_array_equal(ex.circular_shift(w, Tensor(np.array([[0.0, 0.0, 1.0]]))).data, [[0, 1, 0, 0]])
    np.testing.assert_array_equal(ex.circular_shift(w, Tensor(np.array([[1.0, 0.0, 0.0]]))).data, [[0, 0, 0, 1]])


def test_gradient_figures(example, tmp_path, capsys):
    ex = example("gradient_figures")
    result = ex.main(quick=True, out=tmp_path)
    out = capsys.readouterr().out
    assert out.count("gradients, ") == len(ex.CELLS) and "gradients: ||W^n h|| / ||h|| at n = 40" in out
    for name in ex.CELLS:
        assert 0 < result[f"{name}: reach"] and math.isfinite(result[f"{name}: first loss"])
        assert result[f"{name}: last loss"] < result[f"{name}: first loss"], f"{name}: the loss did not fall"
    radius = [result[f"||W^40 h||/||h||, radius {r}"] for r in (0.9, 1.0, 1.1)]
    assert radius[0] < 0.1 < radius[1] < 10 < radius[2]  # vanishing, neither, exploding
    if importlib.util.find_spec("matplotlib"):
        assert (tmp_path / "gradient_heatmaps.png").stat().st_size > 1000
        assert (tmp_path / "power_norms.png").stat().st_size > 1000
