"""python -m minirnn: train charlm / sample / bench, argument and file errors."""
import io
import subprocess
import sys

import numpy as np
import pytest

import minirnn
from minirnn.charlm import unigram_bits
from minirnn.bench.problem import Shape
from minirnn.cli import main

TEXT = "abcabcabd " * 60


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    d = tmp_path_factory.mktemp("cli")
    (d / "t.txt").write_text(TEXT, encoding="utf-8")
    out = d / "m.npz"
    assert main(["train", "charlm", "--data", str(d / "t.txt"), "--steps", "40", "--hidden", "24",
                 "--embed", "8", "--batch", "4", "--seq-len", "16", "--out", str(out), "--quiet",
                 "--samples", "1", "--lr", "0.02"]) == 0
    return out


def test_train_saves_a_standalone_checkpoint_that_beats_unigram(checkpoint, capsys):
    ckpt = minirnn.load(checkpoint)
    assert ckpt["vocab"]["tokens"][0] in "ab"  # most frequent first
    assert ckpt["config"]["hidden_size"] == 24 and ckpt["metrics"]["steps"] == 40
    assert ckpt["metrics"]["val_bpc"] < 0.7 * ckpt["metrics"]["unigram_bpc"]  # the text is predictable
    assert main(["sample", str(checkpoint), "--prompt", "ab", "--length", "30", "--temperature", "0"]) == 0
    line = capsys.readouterr().out.strip()
    assert line.startswith("ab") and len(line) == 32 and set(line) <= set(TEXT)


def test_unigram_bits_is_the_smoothed_entropy():
    ids = np.array([0, 0, 1, 1])
    np.testing.assert_allclose(unigram_bits(ids, ids, 2), 1.0)
    np.testing.assert_allclose(unigram_bits(np.array([0, 0]), np.array([1]), 2), np.log2(4))


def test_errors_are_reported(checkpoint, tmp_path, capsys):
    assert main(["sample", str(checkpoint), "--prompt", "xyz"]) == 2
    assert "prompt: expected non-empty text of characters in the vocabulary" in capsys.readouterr().err
    assert main(["sample", str(tmp_path / "missing.npz")]) == 2
    minirnn.save({"a": np.zeros(1)}, tmp_path / "other.npz")
    assert main(["sample", str(tmp_path / "other.npz")]) == 2
    assert "checkpoint: expected a file written by 'train charlm'" in capsys.readouterr().err
    assert main(["sample", str(checkpoint), "--prompt", "ab", "--length", "-1"]) == 2
    assert "length: expected an int >= 0, got -1" in capsys.readouterr().err
    assert main(["sample", str(checkpoint), "--prompt", "ab", "--temperature", "nan"]) == 2
    assert "temperature: expected a finite number >= 0, got nan" in capsys.readouterr().err
    for bad, message in ([["--steps", "0"], "expected a number > 0, got 0"],
                         [["--val-fraction", "1"], r"expected a number in (0, 1), got 1"],
                         # issue 24, item 10: these were tracebacks, or failed after the training
                         [["--seed", "-1"], "argument --seed: expected an integer >= 0, got -1"],
                         [["--out", ""], "argument --out: expected a file path, got ''"],
                         # item 2: a learning rate that can only make the parameters inf
                         [["--lr", "inf"], "argument --lr: expected a finite number > 0, got inf"],
                         [["--lr", "nan"], "argument --lr: expected a finite number > 0, got nan"],
                         [["--max-nonfinite", "0"], "argument --max-nonfinite: expected a number > 0, got 0"],
                         [["--checkpoint-minutes", "-1"], "argument --checkpoint-minutes: expected a finite number >= 0"]):
        with pytest.raises(SystemExit) as exit_info:
            main(["train", "charlm", *bad])
        assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("part,tamper,message", [
    ("config", lambda c: {**c, "hiden_size": 3}, "config: expected the keys"),
    ("config", lambda c: [1, 2], "config: expected the keys"),
    ("config", lambda c: {**c, "vocab_size": 2.5}, "config: num_embeddings: expected an int, got float"),
    ("config", lambda c: {**c, "hidden_size": "x"}, "config: LSTM: hidden_size: expected an int >= 1, got 'x'"),
    ("config", lambda c: {**c, "hidden_size": 7}, "model: "),
    ("vocab", lambda v: 3, "vocab: "),
    ("vocab", lambda v: {**v, "tokens": v["tokens"][:-1]}, "vocab: expected 5 tokens (config's vocab_size), got 4"),
    ("model", lambda m: {k: v[:1] for k, v in m.items()}, "model: "),
])
def test_a_tampered_checkpoint_is_a_clear_error(checkpoint, tmp_path, capsys, part, tamper, message):
    """Every part of a checkpoint is user data: a damaged one exits 2 with a message naming it."""
    ckpt = minirnn.load(checkpoint)
    ckpt[part] = tamper(ckpt[part])
    minirnn.save(ckpt, tmp_path / "bad.npz")
    assert main(["sample", str(tmp_path / "bad.npz"), "--prompt", "ab", "--length", "3"]) == 2
    assert "checkpoint: " + message in capsys.readouterr().err


@pytest.mark.parametrize("content,args,message", [
    (TEXT[:20], ["--batch", "4"], "data: expected enough characters for 2 to train on and 2 held out"),  # 1 left
    ("abcdef" * 2, ["--batch", "4", "--val-fraction", "0.5"],
     "data: expected at least 8 characters for batch 4, got 6"),
    (b"\xff\xfeab", [], "--data: expected a UTF-8 text file"),
    (TEXT, ["--out", "/nonexistent-dir/m.npz"], "--out: expected a file in an existing directory"),
    (TEXT, ["--out", "/"], "--out: expected a file in an existing directory, got '/'"),
])
def test_train_data_errors_fail_before_training(tmp_path, capsys, content, args, message):
    data = tmp_path / "t.txt"
    data.write_bytes(content if isinstance(content, bytes) else content.encode())
    argv = ["train", "charlm", "--data", str(data), "--steps", "1", "--quiet", "--out", str(tmp_path / "m.npz")]
    assert main(argv + args) == 2
    out = capsys.readouterr()
    assert message in out.err and "trained" not in out.out


def test_progress_bar_on_a_terminal(tmp_path, monkeypatch, capsys):
    class Terminal(io.StringIO):
        def isatty(self):
            return True

    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    assert main(["train", "charlm", "--data", str(tmp_path / "t.txt"), "--steps", "3", "--hidden", "8", "--embed", "4",
                 "--batch", "2", "--seq-len", "8", "--samples", "0", "--out", str(tmp_path / "m.npz")]) == 0
    bar = terminal.getvalue()
    assert "3/3" in bar and "bpc=" in bar  # tqdm's count and the running bits per character
    quiet = Terminal()
    monkeypatch.setattr(sys, "stderr", quiet)
    assert main(["train", "charlm", "--data", str(tmp_path / "t.txt"), "--steps", "1", "--hidden", "8", "--embed", "4",
                 "--batch", "2", "--seq-len", "8", "--samples", "0", "--out", str(tmp_path / "m.npz"), "--quiet"]) == 0
    assert quiet.getvalue() == ""


DEFAULT_BENCH = {"shapes": None, "threads": None, "repeats": None}


@pytest.mark.parametrize("argv,expected", [
    (["bench"], {"quick": True, "json_path": "minirnn-bench.json", "png_path": None, **DEFAULT_BENCH}),
    (["bench", "--full", "--json", "out/r.json", "--png", "r.png"],
     {"quick": False, "json_path": "out/r.json", "png_path": "r.png", **DEFAULT_BENCH}),
    (["bench", "--threads", "4,1,2,4", "--shape", "50,64,512", "--shape", "10,4,16,24", "--repeats", "5"],
     {"quick": True, "json_path": "minirnn-bench.json", "png_path": None, "threads": (1, 2, 4), "repeats": 5,
      "shapes": (Shape(50, 64, 512, 512), Shape(10, 4, 16, 24))}),
])
def test_bench_subcommand_runs_the_harness(monkeypatch, argv, expected):
    import minirnn.bench
    calls = []
    monkeypatch.setattr(minirnn.bench, "main", lambda **kwargs: calls.append(kwargs))
    assert main(argv) == 0
    assert calls == [expected]


@pytest.mark.parametrize("argv,message", [
    (["--threads", "0,2"], "expected comma-separated integers >= 1"),
    (["--threads", "two"], "expected comma-separated integers >= 1"),
    (["--shape", "50,64"], "expected T,B,H or T,B,I,H"),
    (["--shape", "50,0,512"], "expected T,B,H or T,B,I,H"),
    (["--repeats", "0"], "expected a number > 0"),
])
def test_bench_bad_options_are_usage_errors(monkeypatch, capsys, argv, message):
    import minirnn.bench
    monkeypatch.setattr(minirnn.bench, "main", lambda **kwargs: pytest.fail("the harness must not run"))
    with pytest.raises(SystemExit) as exit_info:
        main(["bench", *argv])
    assert exit_info.value.code == 2 and message in capsys.readouterr().err


@pytest.mark.parametrize("missing,argv,message", [
    ("matplotlib", ["bench", "--png", "r.png"], "needs matplotlib"),
    ("threadpoolctl", ["bench"], "need threadpoolctl (pip install 'minirnn[bench]')"),
])
def test_bench_without_an_extra_is_a_clear_message(monkeypatch, capsys, missing, argv, message):
    from minirnn.bench import harness
    real_find_spec = harness.importlib.util.find_spec
    monkeypatch.setattr(harness.importlib.util, "find_spec",
                        lambda name, *a: None if name == missing else real_find_spec(name, *a))
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_bench_missing_is_a_clear_message(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "minirnn.bench", None)
    assert main(["bench"]) == 1
    assert "benchmark harness (minirnn.bench) is not available" in capsys.readouterr().err


def run_module(*args):
    return subprocess.run([sys.executable, "-m", "minirnn", *args], capture_output=True, text=True, timeout=300)


def test_module_entry_point_help_and_exit_status(tmp_path):
    out = run_module("--help")
    assert out.returncode == 0 and all(c in out.stdout for c in ("train", "sample", "bench"))
    out = run_module("sample", str(tmp_path / "missing.npz"))
    # (the last line: without the extension a warning comes first)
    assert out.returncode == 2 and out.stderr.splitlines()[-1].startswith("error: ") and "Traceback" not in out.stderr
    assert "missing.npz" in out.stderr


def test_the_issue_commands_on_the_default_corpus(tmp_path):
    """`train charlm --steps 3 --out X` on the embedded corpus, then `sample X --prompt "The "`
    (a smaller held-out part, no samples after training and a short one here, to keep it quick)."""
    ckpt = str(tmp_path / "x.npz")
    out = run_module("train", "charlm", "--steps", "3", "--out", ckpt, "--samples", "0", "--val-fraction", "0.01")
    assert out.returncode == 0, out.stderr
    assert "data: pydoc_data.topics" in out.stdout and "held-out" in out.stdout and f"saved {ckpt}" in out.stdout
    assert minirnn.load(ckpt)["metrics"]["steps"] == 3
    out = run_module("sample", ckpt, "--prompt", "The ", "--length", "20")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("The ") and len(out.stdout.rstrip("\n")) >= 24
