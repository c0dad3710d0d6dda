"""Padding, bucketed batching and vocabularies (minirnn.data)."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from minirnn.data import BucketBatcher, CharVocab, WordVocab, pad_sequences


@settings(max_examples=30, deadline=None)
@given(st.lists(st.integers(1, 7), min_size=1, max_size=6), st.booleans())
def test_pad_sequences_roundtrip(lengths, batch_first):
    rng = np.random.default_rng(0)
    seqs = [rng.normal(size=(n, 3)) for n in lengths]
    padded, lens, mask = pad_sequences(seqs, padding_value=-1.0, batch_first=batch_first)
    if batch_first:
        padded, mask = np.swapaxes(padded, 0, 1), mask.T
    assert padded.shape == (max(lengths), len(lengths), 3)
    assert lens.tolist() == lengths
    for b, s in enumerate(seqs):
        np.testing.assert_array_equal(padded[:len(s), b], s)
        assert (padded[len(s):, b] == -1.0).all()
        assert mask[:, b].tolist() == [t < len(s) for t in range(max(lengths))]


def test_pad_sequences_errors():
    with pytest.raises(ValueError, match="sequences: expected at least one"):
        pad_sequences([])
    with pytest.raises(TypeError, match="sequences: expected a list"):
        pad_sequences("abc")
    with pytest.raises(ValueError, match=r"sequences\[1\]: expected feature shape"):
        pad_sequences([np.zeros((2, 3)), np.zeros((2, 4))])
    with pytest.raises(ValueError, match="scalar"):
        pad_sequences([np.zeros(2), 1.0])


def test_bucket_batcher_covers_every_example_once_with_similar_lengths():
    rng = np.random.default_rng(1)
    lengths = rng.integers(1, 40, size=101)
    inputs = [np.full(n, i) for i, n in enumerate(lengths)]
    targets = list(range(101))
    batcher = BucketBatcher(inputs, targets, batch_size=10, generator=np.random.default_rng(2))
    seen, waste = [], 0
    assert len(batcher) == 11
    for padded, lens, mask, target in batcher:
        assert padded.shape == (lens.max(), len(lens)) and mask.sum() == lens.sum()
        np.testing.assert_array_equal(padded[0], target)  # each input row holds its own index
        seen += target.tolist()
        waste += padded.size - lens.sum()
    assert sorted(seen) == targets
    assert waste < 0.1 * lengths.sum()  # bucketing keeps padding small (random batches: ~50%)


def test_bucket_batcher_pads_sequence_targets_and_drops_last():
    inputs = [np.arange(n) for n in (3, 1, 2)]
    batcher = BucketBatcher(inputs, [x + 1 for x in inputs], batch_size=2, shuffle=False, drop_last=True,
                            target_padding_value=-100)
    (padded, lens, mask, target), = list(batcher)
    assert lens.tolist() == [1, 2]
    np.testing.assert_array_equal(target, [[1, 1], [-100, 2]])
    with pytest.raises(ValueError, match="batch_size: expected a positive int, got 0"):
        BucketBatcher(inputs, inputs, batch_size=0)
    with pytest.raises(ValueError, match="targets: expected 3 targets"):
        BucketBatcher(inputs, inputs[:2], batch_size=1)


@pytest.mark.parametrize("cls,text", [(CharVocab, "hello, world"), (WordVocab, "the cat , the dog .")])
def test_vocab_roundtrip_and_json(tmp_path, cls, text):
    vocab = cls.build(text)
    ids = vocab.encode(text)
    assert ids.dtype == np.int64 and vocab.decode(ids) == text
    assert vocab.tokens[0] in ("l", "the")  # most frequent first
    vocab.save(tmp_path / "v.json")
    assert cls.load(tmp_path / "v.json") == vocab


def test_vocab_unknown_tokens_and_errors(tmp_path):
    v = CharVocab.build("aab", unk="?")
    assert v.decode(v.encode("abc")) == "ab?"
    with pytest.raises(KeyError, match="'c' is not in the vocabulary"):
        CharVocab.build("ab").encode("c")
    with pytest.raises(IndexError, match=r"ids: expected ids in \[0, 3\), got 5"):
        v.decode([5])
    with pytest.raises(TypeError, match="text: expected a str, got int"):
        v.encode(3)
    with pytest.raises(ValueError, match="distinct"):
        CharVocab(["a", "a"])
    WordVocab.build("a b").save(tmp_path / "w.json")
    with pytest.raises(ValueError, match="expected a CharVocab description"):
        CharVocab.load(tmp_path / "w.json")
    assert WordVocab.build("x y y", min_count=2).tokens == ["y"]


def test_padded_batch_through_a_module_equals_each_sequence_alone():
    """pad_sequences' (padded, lengths) into a bidirectional GRU: every sequence's outputs and
    final states are those of running it alone, and the mask marks exactly the real steps."""
    from minirnn import nn
    rng = np.random.default_rng(3)
    seqs = [rng.normal(size=(n, 2)) for n in (4, 1, 6, 3)]
    padded, lengths, mask = pad_sequences(seqs, padding_value=9.0, batch_first=True)
    gru = nn.GRU(2, 3, num_layers=2, bidirectional=True, batch_first=True, dtype=np.float64)
    out, h_n = gru(padded, lengths=lengths)
    np.testing.assert_array_equal(out.data[~mask], 0)
    for b, s in enumerate(seqs):
        alone, h_alone = gru(s[None])
        np.testing.assert_allclose(out.data[b, :len(s)], alone.data[0], rtol=1e-12, atol=1e-15)
        np.testing.assert_allclose(h_n.data[:, b], h_alone.data[:, 0], rtol=1e-12, atol=1e-15)
