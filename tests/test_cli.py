"""python -m minirnn: train charlm / sample / bench, argument and file errors."""
import subprocess
import sys

import numpy as np
import pytest

import minirnn
from minirnn.charlm import unigram_bits
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
    with pytest.raises(SystemExit):
        main(["train", "charlm", "--steps", "0"])
    assert "expected a number > 0, got 0" in capsys.readouterr().err


def test_bench_missing_is_a_clear_message(monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "minirnn.bench", None)
    assert main(["bench"]) == 1
    assert "benchmark harness (minirnn.bench) is not available" in capsys.readouterr().err


def test_module_entry_point_help():
    out = subprocess.run([sys.executable, "-m", "minirnn", "--help"], capture_output=True, text=True, check=True)
    assert "train" in out.stdout and "sample" in out.stdout and "bench" in out.stdout
