"""The word-level language model: vocabulary with <unk>, perplexity, `train wordlm` and `sample`."""
import subprocess
import sys

import numpy as np
import pytest

import minirnn
from minirnn.charlm import CharLM, streams
from minirnn.cli import main
from minirnn.wordlm import UNK, encode_words, perplexity, unigram_perplexity

TEXT = "the cat sat on the mat . the dog sat on the log . " * 40 + "a zebra ."


def test_rare_words_become_unk():
    vocab, ids = encode_words(TEXT, min_count=3)
    assert "zebra" not in vocab and UNK in vocab and vocab.tokens[0] == "the"  # most frequent first
    assert vocab.decode(ids[-3:]) == f"{UNK} {UNK} ."  # "a" and "zebra" were seen once
    assert len(encode_words(TEXT, min_count=1)[0]) == len(vocab) + 2  # a, zebra; <unk> unused but present
    with pytest.raises(ValueError, match="min_count: expected an int >= 1, got 0"):
        encode_words(TEXT, 0)


class Fixed(minirnn.nn.Module):
    """A language model that ignores its input: the same logits at every step."""

    def __init__(self, logits):
        super().__init__()
        self.logits = np.asarray(logits, dtype=np.float32)

    def forward(self, ids, state=None):
        return minirnn.Tensor(np.broadcast_to(self.logits, (*np.shape(ids), self.logits.size)).copy()), state


def test_perplexity_of_a_uniform_model_is_the_vocabulary_size():
    data = streams(np.random.default_rng(0).integers(0, 7, 400), 4)
    assert perplexity(Fixed(np.zeros(7)), data, 16) == pytest.approx(7.0, rel=1e-5)


def test_perplexity_of_the_unigram_model_is_its_unigram_perplexity():
    """A fixed model predicting the smoothed training frequencies scores unigram_perplexity on
    the held-out targets (all but each stream's first token)."""
    rng = np.random.default_rng(1)
    train, held = rng.integers(0, 5, 500), rng.integers(0, 5, 201)
    p = (np.bincount(train, minlength=5) + 1.0) / (len(train) + 5)
    got = perplexity(Fixed(np.log(p)), held.reshape(-1, 1), 50)
    assert got == pytest.approx(unigram_perplexity(train, held[1:], 5), rel=1e-5)
    assert unigram_perplexity(np.array([0, 1]), np.array([0, 1]), 2) == pytest.approx(2.0)


def test_train_wordlm_beats_the_unigram_model_and_samples_words(tmp_path, capsys):
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    out = tmp_path / "w.npz"
    assert main(["train", "wordlm", "--data", str(tmp_path / "t.txt"), "--steps", "60", "--hidden", "24",
                 "--embed", "8", "--batch", "4", "--seq-len", "16", "--out", str(out), "--quiet",
                 "--samples", "1", "--lr", "0.02", "--val-fraction", "0.1"]) == 0
    printed = capsys.readouterr().out
    assert "held-out perplexity" in printed and "vs unigram perplexity" in printed
    ckpt = minirnn.load(out)
    assert ckpt["vocab"]["kind"] == "word" and ckpt["vocab"]["unk"] == UNK
    assert 2 ** ckpt["metrics"]["val_bpc"] < 0.5 * 2 ** ckpt["metrics"]["unigram_bpc"]  # the text repeats
    assert main(["sample", str(out), "--prompt", "the cat", "--length", "6", "--temperature", "0"]) == 0
    words = capsys.readouterr().out.split()
    assert words[:2] == ["the", "cat"] and len(words) == 8 and set(words) <= set(TEXT.split()) | {UNK}


def test_sample_refuses_an_empty_prompt(tmp_path, capsys):
    model = CharLM(3, 4, 8, 1)
    vocab = minirnn.data.WordVocab(["a", "b", UNK], UNK)
    minirnn.save({"model": model.state_dict(), "config": model.config, "vocab": vocab.to_dict()}, tmp_path / "w.npz")
    assert main(["sample", str(tmp_path / "w.npz"), "--prompt", " "]) == 2
    assert "prompt: expected non-empty text of words in the vocabulary" in capsys.readouterr().err
    assert main(["sample", str(tmp_path / "w.npz"), "--prompt", "zzz", "--length", "3"]) == 0  # zzz is <unk>


def test_train_wordlm_on_the_default_corpus(tmp_path):
    """The issue's command, `python -m minirnn train wordlm`, for 2 steps."""
    out = subprocess.run([sys.executable, "-m", "minirnn", "train", "wordlm", "--steps", "2", "--out",
                          str(tmp_path / "w.npz"), "--samples", "0", "--quiet"],
                         capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert "data: pydoc_data.topics" in out.stdout and "held-out perplexity" in out.stdout


def test_resume_a_word_model_bitwise_and_refuse_another_vocabulary(tmp_path, capsys):
    (tmp_path / "t.txt").write_text(TEXT, encoding="utf-8")
    tiny = ["--data", str(tmp_path / "t.txt"), "--hidden", "8", "--embed", "4", "--layers", "1", "--batch", "4",
            "--seq-len", "8", "--samples", "0", "--quiet"]
    whole, part = tmp_path / "whole.npz", tmp_path / "part.npz"
    assert main(["train", "wordlm", *tiny, "--steps", "12", "--out", str(whole)]) == 0
    assert main(["train", "wordlm", *tiny, "--steps", "5", "--out", str(part)]) == 0
    assert main(["train", "wordlm", *tiny, "--steps", "12", "--out", str(part), "--resume", str(part)]) == 0
    a, b = minirnn.load(whole)["model"], minirnn.load(part)["model"]
    assert all(a[k].tobytes() == b[k].tobytes() for k in a)
    capsys.readouterr()
    # --min-count 1 keeps "a" and "zebra": another vocabulary than the checkpoint's
    assert main(["train", "wordlm", *tiny, "--steps", "14", "--out", str(part), "--resume", str(part),
                 "--min-count", "1"]) == 2
    assert "the checkpoint's vocabulary differs from the data's" in capsys.readouterr().err
