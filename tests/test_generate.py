"""Sampling (temperature, top-k, greedy), teacher forcing, scheduled sampling, free-running generation."""
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import minirnn
from minirnn import Tensor
from minirnn.charlm import CharLM
from minirnn.generate import (generate, inverse_cdf, next_token_probs, sample_next, scheduled_sampling_loss,
                              teacher_forced_loss)

LOGITS = np.array([[2.0, 1.0, 0.5, -1.0, 0.0], [0.0, 3.0, -2.0, 1.0, 1.5]])


@pytest.mark.parametrize("temperature,top_k", [(1.0, None), (0.5, None), (2.0, 3), (1.0, 2)])
def test_probs_match_torch(temperature, top_k):
    torch = pytest.importorskip("torch")
    z = torch.tensor(LOGITS) / temperature
    if top_k is not None:
        kth = torch.topk(z, top_k, dim=-1).values[:, -1:]
        z = z.masked_fill(z < kth, float("-inf"))
    want = torch.softmax(z, -1).numpy()
    np.testing.assert_allclose(next_token_probs(LOGITS, temperature, top_k), want, rtol=1e-12, atol=1e-15)


def test_greedy_and_sampling_frequencies():
    np.testing.assert_array_equal(next_token_probs(LOGITS, 0.0).argmax(-1), [0, 1])
    np.testing.assert_array_equal(sample_next(LOGITS, 0.0), [0, 1])
    np.testing.assert_array_equal(sample_next(LOGITS, 1.0, top_k=1), [0, 1])
    rng = np.random.default_rng(0)
    n = 20000
    draws = np.stack([sample_next(LOGITS, 0.7, top_k=3, generator=rng) for _ in range(n)])
    p = next_token_probs(LOGITS, 0.7, 3)
    for row in range(2):
        freq = np.bincount(draws[:, row], minlength=5) / n
        np.testing.assert_allclose(freq, p[row], atol=4 * np.sqrt(0.25 / n))  # 4 sigma
        assert freq[p[row] == 0].sum() == 0  # top-k never draws outside the top k
    a = sample_next(LOGITS[0], generator=np.random.default_rng(5))
    assert a.shape == () and a == sample_next(LOGITS[0], generator=np.random.default_rng(5))


@settings(max_examples=60, deadline=None)
@given(st.lists(st.lists(st.integers(-2, 2), min_size=6, max_size=6), min_size=1, max_size=3),
       st.integers(1, 7), st.sampled_from([0.5, 1.0, 3.0]))
def test_top_k_keeps_exactly_k_of_the_best(rows, k, temperature):
    """Ties are common here (logits from 5 values): still exactly min(k, V) tokens survive, and
    no surviving logit is below a removed one."""
    z = np.array(rows, dtype=float)
    p = next_token_probs(z, temperature, k)
    kept = p > 0
    assert (kept.sum(-1) == min(k, 6)).all()
    for row, keep in zip(z, kept):
        assert row[keep].min() >= (row[~keep].max() if (~keep).any() else -np.inf)
    np.testing.assert_allclose(p.sum(-1), 1.0, rtol=1e-12)


def test_top_k_ties_keep_the_lower_ids():
    np.testing.assert_array_equal(next_token_probs([1.0, 0.0, 1.0, 1.0], 1.0, 2), [0.5, 0, 0.5, 0])


def test_inverse_cdf_never_returns_a_zero_probability_token():
    probs = np.array([[0.0, 0.3, 0.7, 0.0, 0.0]])  # cdf 0, .3, 1, 1, 1
    assert inverse_cdf(probs, np.array([[0.0]]))[0] == 1  # u = 0 skips the empty first token
    assert inverse_cdf(probs, np.array([[np.nextafter(1.0, 0)]]))[0] == 2  # the largest u < 1
    assert inverse_cdf(probs, np.array([[0.3]]))[0] == 2
    rounded = np.zeros((1, 10))
    rounded[0, :7] = 1 / 7  # the cumsum ends at 0.9999999999999998, below the largest u
    assert inverse_cdf(rounded, np.array([[np.nextafter(1.0, 0)]]))[0] == 6


def test_sampling_arguments_are_checked():
    with pytest.raises(ValueError, match="temperature: expected a finite number >= 0, got -1"):
        next_token_probs(LOGITS, -1)
    with pytest.raises(ValueError, match="temperature: expected a finite number >= 0, got nan"):
        next_token_probs(LOGITS, float("nan"))
    with pytest.raises(TypeError, match="temperature: expected a finite number >= 0, got str"):
        next_token_probs(LOGITS, "0.5")
    with pytest.raises(ValueError, match="top_k: expected a positive int or None, got 0"):
        next_token_probs(LOGITS, 1.0, 0)
    with pytest.raises(ValueError, match=r"logits: expected shape \(V,\) or \(B, V\)"):
        next_token_probs(np.zeros((2, 2, 2)))
    for bad in ([0.0, np.nan], [0.0, np.inf], [[0.0, 1.0], [-np.inf, -np.inf]]):
        with pytest.raises(ValueError, match="logits: expected finite values"):
            sample_next(np.array(bad))
    np.testing.assert_array_equal(next_token_probs([-np.inf, 0.0]), [0.0, 1.0])  # -inf excludes a token


def bigram_model(table):
    """A fixed 'language model': logits of the next token are table[current token]."""
    def model(ids, state):
        return Tensor(table[np.asarray(ids)]), (state or 0) + len(ids)
    return model


def test_generate_greedy_follows_the_chain_and_feeds_back():
    table = np.full((4, 4), -5.0)
    for a, b in [(0, 2), (2, 3), (3, 1), (1, 0)]:
        table[a, b] = 5.0
    out = generate(bigram_model(table), [1, 0], 6, temperature=0)
    np.testing.assert_array_equal(out, [2, 3, 1, 0, 2, 3])
    out_b = generate(bigram_model(table), np.array([[0, 3]]), 2, temperature=0)
    np.testing.assert_array_equal(out_b, [[2, 1], [3, 0]])
    with pytest.raises(ValueError, match="prompt: expected non-empty integer ids"):
        generate(bigram_model(table), [], 3)
    with pytest.raises(ValueError, match="length: expected an int >= 0, got -1"):
        generate(bigram_model(table), [0], -1)


def test_teacher_forced_loss_matches_torch():
    torch = pytest.importorskip("torch")
    minirnn.manual_seed(0)
    model = CharLM(7, embed_dim=5, hidden_size=6, dtype=np.float64)
    ids = np.random.default_rng(0).integers(0, 7, size=(9, 3))
    loss, state = teacher_forced_loss(model, ids)
    logits, _ = model(ids[:-1])
    want = torch.nn.functional.cross_entropy(torch.tensor(logits.data.reshape(-1, 7)),
                                             torch.tensor(ids[1:].reshape(-1)))
    np.testing.assert_allclose(loss.item(), want.item(), rtol=1e-12)
    assert state[0].shape == (2, 3, 6)
    with pytest.raises(ValueError, match=r"ids: expected integer ids of shape \(T\+1, B\)"):
        teacher_forced_loss(model, ids[:1])


def test_scheduled_sampling_p0_is_teacher_forcing_and_p1_feeds_predictions():
    minirnn.manual_seed(0)
    model = CharLM(7, embed_dim=5, hidden_size=6, dtype=np.float64)
    ids = np.random.default_rng(1).integers(0, 7, size=(6, 2))
    forced, _ = teacher_forced_loss(model, ids)
    mixed, _ = scheduled_sampling_loss(model, ids, 0.0)
    np.testing.assert_allclose(mixed.item(), forced.item(), rtol=1e-12)
    greedy = generate(model, ids[:1], 4, temperature=0)
    own = np.concatenate([ids[:1], greedy])  # the inputs a p=1 run feeds
    logits, _ = model(own)
    want = minirnn.functional.cross_entropy(logits.reshape(-1, 7), ids[1:].reshape(-1))
    got, _ = scheduled_sampling_loss(model, ids, 1.0)
    np.testing.assert_allclose(got.item(), want.item(), rtol=1e-12)
    got.backward()
    assert model.head.weight.grad is not None
    for p in (1.5, "half"):
        with pytest.raises(ValueError, match="p: expected a probability"):
            scheduled_sampling_loss(model, ids, p)
    with pytest.raises(ValueError, match="ids: expected integer ids"):
        scheduled_sampling_loss(model, ids.astype(float), 0.5)
