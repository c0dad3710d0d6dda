"""Teacher-forced training loss, free-running generation, and sampling from next-token logits.

A language model here is any ``model(ids, state) -> (logits, state)`` with ``ids`` int (T, B),
``logits`` a Tensor (T, B, V) and ``state`` None (the initial state) or whatever it returned.

* **Teacher forcing** (training): the input at step t is the TRUE token ``y_{t-1}``, so every step
  of a sequence is computed in one call and the loss is ``mean_t CE(logits_t, y_t)``.
* **Free running** (generation): the input at step t is the model's OWN previous output, sampled
  from ``p_t = softmax(logits_t / temperature)`` restricted to the ``top_k`` most likely tokens
  (temperature 0: greedy argmax).
* **Scheduled sampling** (Bengio et al., 2015) mixes the two while training: each input is the
  model's own greedy prediction with probability ``p`` and the true token otherwise, which
  narrows the gap between the two regimes; it runs step by step, so it costs T calls.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .autograd import no_grad
from .functional import cross_entropy
from .random import get_generator
from .tensor import Tensor

LanguageModel = Callable[[np.ndarray, Any], tuple[Tensor, Any]]


def sequence_cross_entropy(logits: Tensor, targets: np.ndarray) -> Tensor:
    """Mean CE of logits (T, B, V) against targets (T, B)."""
    return cross_entropy(logits.reshape(-1, logits.shape[-1]), np.asarray(targets).reshape(-1))


def _check_logits(logits: Any) -> np.ndarray:
    """``logits`` as float64 (V,) or (B, V); NaN, +inf or a row without a finite value raise."""
    z = np.asarray(logits.data if isinstance(logits, Tensor) else logits, dtype=np.float64)
    if z.ndim not in (1, 2) or z.shape[-1] == 0:
        raise ValueError(f"logits: expected shape (V,) or (B, V) with V >= 1, got {z.shape}")
    if np.isnan(z).any() or np.isposinf(z).any() or not np.isfinite(z).any(-1).all():
        raise ValueError("logits: expected finite values (-inf excludes a token) and a finite value "
                         "in every row, got NaN, +inf or a row of -inf")
    return z


def next_token_probs(logits: Any, temperature: float = 1.0, top_k: int | None = None) -> np.ndarray:
    """``(B, V)`` probabilities from logits ``(B, V)`` (or ``(V,)``): softmax(logits / temperature)
    over the ``top_k`` largest logits of each row (others 0); temperature 0 puts all mass on the argmax.

    Exactly ``min(top_k, V)`` tokens per row keep their probability: among equal logits at the
    cut, the lower token ids are kept (as ``argmax`` does for temperature 0).
    """
    z = _check_logits(logits)
    if isinstance(temperature, bool) or not isinstance(temperature, (int, float, np.integer, np.floating)):
        raise TypeError(f"temperature: expected a finite number >= 0, got {type(temperature).__name__}")
    if not np.isfinite(temperature) or temperature < 0:
        raise ValueError(f"temperature: expected a finite number >= 0, got {temperature!r}")
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, (int, np.integer)) or top_k < 1):
        raise ValueError(f"top_k: expected a positive int or None, got {top_k!r}")
    if temperature == 0 or top_k == 1:
        probs = np.zeros_like(z)
        np.put_along_axis(probs, z.argmax(-1)[..., None], 1.0, axis=-1)
        return probs
    if top_k is not None and top_k < z.shape[-1]:
        ranked = np.argsort(-z, axis=-1, kind="stable")  # best first, ties by id
        z = z.copy()
        np.put_along_axis(z, ranked[..., top_k:], -np.inf, axis=-1)
    z = (z - z.max(-1, keepdims=True)) / temperature
    e = np.exp(z)
    return e / e.sum(-1, keepdims=True)


def inverse_cdf(probs: np.ndarray, u: np.ndarray) -> np.ndarray:
    """The token of each row of ``probs`` (B, V) (or (V,)) whose CDF interval holds ``u`` (B, 1)
    (or (1,)) in [0, 1): the first id with ``cdf > u * cdf[-1]``. A zero-probability token is
    never returned, whatever the rounding of the cumulative sum."""
    cdf = np.cumsum(probs, -1)
    return (cdf <= u * cdf[..., -1:]).sum(-1).astype(np.int64)


def sample_next(logits: Any, temperature: float = 1.0, top_k: int | None = None,
                generator: np.random.Generator | None = None) -> np.ndarray:
    """Draw one token id per row of ``logits`` (B, V) -> (B,) int64 (``(V,)`` -> a 0-d array)."""
    probs = next_token_probs(logits, temperature, top_k)
    return inverse_cdf(probs, get_generator(generator).random(probs.shape[:-1] + (1,)))


def _check_ids(ids: Any) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 2 or len(ids) < 2 or ids.dtype.kind not in "iu":
        raise ValueError(f"ids: expected integer ids of shape (T+1, B) with T >= 1, got {ids.dtype} {ids.shape}")
    return ids


def teacher_forced_loss(model: LanguageModel, ids: Any, state: Any = None) -> tuple[Tensor, Any]:
    """Mean next-token cross-entropy of ``ids`` (T+1, B): inputs ``ids[:-1]``, targets ``ids[1:]``.

    Returns ``(loss, state)``; ``loss / ln 2`` is bits per token.
    """
    ids = _check_ids(ids)
    logits, state = model(ids[:-1], state)
    return sequence_cross_entropy(logits, ids[1:]), state


def scheduled_sampling_loss(model: LanguageModel, ids: Any, p: float, state: Any = None,
                            generator: np.random.Generator | None = None) -> tuple[Tensor, Any]:
    """Like :func:`teacher_forced_loss`, but each input after the first is, with probability ``p``
    per sequence and step, the model's own greedy prediction instead of the true token."""
    ids = _check_ids(ids)
    if isinstance(p, bool) or not isinstance(p, (int, float, np.integer, np.floating)) or not 0 <= p <= 1:
        raise ValueError(f"p: expected a probability in [0, 1], got {p!r}")
    rng = get_generator(generator)
    x = ids[0]
    total: Any = None  # (a Tensor after the loop: ids has at least two steps)
    for t in range(1, len(ids)):
        logits, state = model(x[None], state)
        step = sequence_cross_entropy(logits, ids[t][None])
        total = step if total is None else total + step
        own = logits.data[0].argmax(-1)
        x = np.where(rng.random(len(own)) < p, own, ids[t])
    return total * (1.0 / (len(ids) - 1)), state


def generate(model: LanguageModel, prompt: Any, length: int, temperature: float = 1.0,
             top_k: int | None = None, generator: np.random.Generator | None = None,
             state: Any = None) -> np.ndarray:
    """Free-running generation: feed ``prompt`` (P,) or (P, B) ids, then ``length`` sampled tokens.

    Returns the ``length`` new ids, (length,) or (length, B). Runs under ``no_grad``.
    """
    prompt = np.asarray(prompt)
    if prompt.dtype.kind not in "iu" or prompt.ndim not in (1, 2) or len(prompt) == 0:
        raise ValueError(f"prompt: expected non-empty integer ids of shape (P,) or (P, B), "
                         f"got {prompt.dtype} {prompt.shape}")
    if isinstance(length, bool) or not isinstance(length, (int, np.integer)) or length < 0:
        raise ValueError(f"length: expected an int >= 0, got {length!r}")
    batched = prompt.ndim == 2
    x = prompt if batched else prompt[:, None]
    out = np.empty((length, x.shape[1]), dtype=np.int64)
    with no_grad():
        for t in range(length):
            logits, state = model(x, state)
            out[t] = sample_next(logits.data[-1], temperature, top_k, generator)
            x = out[t][None]
    return out if batched else out[:, 0]
