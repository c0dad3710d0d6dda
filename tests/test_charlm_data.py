"""The char-LM's corpus encoding and checkpoint loading, and the examples' fit under NaN (issue 24,
items 2, 5 and 10)."""
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

import minirnn
from minirnn import cli
from minirnn.charlm import CharLM, default_corpus, encode_corpus, state_shapes
from minirnn.data import CharVocab


@pytest.mark.parametrize("config", [(5, 4, 8, 1), (7, 3, 5, 3), (103, 32, 128, 2)])
def test_state_shapes_are_those_of_the_model(config):
    assert state_shapes(*config) == {k: v.shape for k, v in CharLM(*config).state_dict().items()}


@pytest.mark.parametrize("text", ["", "a", "hello world", "é€𝄞ab\x00" * 3, "x" * 300 + "".join(map(chr, range(300)))])
def test_encode_corpus_is_charvocab_build_and_encode(text):
    vocab, ids = encode_corpus(text)
    assert vocab == CharVocab.build(text) and ids.tolist() == CharVocab.build(text).encode(text).tolist()
    assert ids.dtype == (np.uint8 if len(vocab) <= 256 else np.uint16)


def test_the_corpus_costs_about_a_byte_a_character():
    """It took ~18x its size (a list of ints, an int64 array): now the ids plus a bounded chunk."""
    text = default_corpus()
    tracemalloc.start()
    try:
        vocab, ids = encode_corpus(text)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert ids.nbytes == len(text) and peak < len(text) + 16 * 2**16, peak  # (it was 17 x len(text))
    assert vocab == CharVocab.build(text)


def test_a_checkpoint_declaring_a_huge_model_fails_before_building_it(tmp_path, capsys, monkeypatch):
    """A few KB declaring hidden_size=6000 used to build 2.85 GB of model before its shape check."""
    model = CharLM(5, 4, 8, 2)
    ckpt = {"model": model.state_dict(), "config": {**model.config, "hidden_size": 6000},
            "vocab": CharVocab(list("abcde")).to_dict()}
    minirnn.save(ckpt, tmp_path / "big.npz")
    monkeypatch.setattr(cli, "CharLM", lambda **k: pytest.fail("the model must not be built"))
    assert cli.main(["sample", str(tmp_path / "big.npz")]) == 2
    err = capsys.readouterr().err
    assert "checkpoint: model: lstm.weight_ih_l0: expected shape (24000, 4) (from the config" in err
    minirnn.save({**ckpt, "config": {**model.config, "num_layers": 10**9}}, tmp_path / "deep.npz")
    assert cli.main(["sample", str(tmp_path / "deep.npz")]) == 2
    assert "checkpoint: model: expected 4000000003 arrays for num_layers=1000000000" in capsys.readouterr().err


EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


@pytest.mark.checkout
def test_the_examples_fit_skips_non_finite_updates(monkeypatch, capsys):
    monkeypatch.syspath_prepend(str(EXAMPLES))
    import _common
    try:
        p = minirnn.nn.Parameter(np.ones(3))
        target = np.array([1.0, np.nan, 3.0, 2.0, 2.0])
        trace = _common.fit(lambda i: ((p - target[i]) ** 2).mean(), [p], 5, lr=0.1, desc="t")
        assert trace.skipped == [1] and np.isnan(trace.losses[1]) and np.isfinite(p.data).all()
        assert "t: skipped 1 of 5 updates with a non-finite loss or gradient norm" in capsys.readouterr().err
        with pytest.raises(FloatingPointError, match="2 updates in a row"):
            _common.fit(lambda i: (p * np.nan).sum(), [p], 5, max_nonfinite=2)
    finally:
        sys.modules.pop("_common", None)
