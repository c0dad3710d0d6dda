"""Character and word vocabularies: token <-> integer id, saved and loaded as JSON."""
from __future__ import annotations

import json
import os
import re
from collections import Counter
from typing import Iterable, Sequence, TypeVar

import numpy as np

V = TypeVar("V", bound="Vocab")  # a subclass's class methods return that subclass


class Vocab:
    """A fixed list of tokens; ``encode`` maps tokens to ids ``0..len-1`` and ``decode`` back.

    Tokens not in the vocabulary map to ``unk`` (which must then be one of the tokens) or raise
    KeyError naming the token. Subclasses define how text splits into tokens and joins back.
    """

    kind = "tokens"

    def __init__(self, tokens: Sequence[str], unk: str | None = None):
        tokens = list(tokens)
        for i, t in enumerate(tokens):
            if not isinstance(t, str):
                raise TypeError(f"tokens[{i}]: expected a str, got {type(t).__name__}")
        if len(set(tokens)) != len(tokens):
            raise ValueError("tokens: expected distinct tokens, got duplicates")
        if unk is not None and unk not in tokens:
            raise ValueError(f"unk: expected one of the tokens, got {unk!r}")
        self.tokens, self.unk = tokens, unk
        self.index = {t: i for i, t in enumerate(tokens)}

    def __len__(self) -> int:
        return len(self.tokens)

    def __contains__(self, token: str) -> bool:
        return token in self.index

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and (self.tokens, self.unk) == (other.tokens, other.unk)

    @staticmethod
    def split(text: str) -> list[str]:
        raise NotImplementedError

    @staticmethod
    def join(tokens: Iterable[str]) -> str:
        raise NotImplementedError

    @classmethod
    def build(cls: type[V], text: str, min_count: int = 1, unk: str | None = None) -> V:
        """The tokens of ``text`` seen at least ``min_count`` times, most frequent first (ties: sorted)."""
        counts = Counter(cls.split(text))
        tokens = sorted((t for t, n in counts.items() if n >= min_count), key=lambda t: (-counts[t], t))
        if unk is not None and unk not in tokens:
            tokens.append(unk)
        return cls(tokens, unk)

    def encode(self, text: str) -> np.ndarray:
        """``(L,)`` int64 ids of the tokens of ``text``."""
        if not isinstance(text, str):
            raise TypeError(f"text: expected a str, got {type(text).__name__}")
        fallback = self.index.get(self.unk) if self.unk is not None else None
        ids = []
        for t in self.split(text):
            i = self.index.get(t, fallback)
            if i is None:
                raise KeyError(f"text: token {t!r} is not in the vocabulary and it has no unk token")
            ids.append(i)
        return np.array(ids, dtype=np.int64)

    def decode(self, ids: Iterable[int]) -> str:
        """The text whose token ids are ``ids`` (any iterable of ints)."""
        out = []
        for i in np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids).reshape(-1):
            if not 0 <= int(i) < len(self.tokens):
                raise IndexError(f"ids: expected ids in [0, {len(self.tokens)}), got {int(i)}")
            out.append(self.tokens[int(i)])
        return self.join(out)

    def to_dict(self) -> dict:
        return {"kind": self.kind, "tokens": self.tokens, "unk": self.unk}

    @classmethod
    def from_dict(cls: type[V], d: dict) -> V:
        if not isinstance(d, dict) or d.get("kind") != cls.kind:
            got = d.get("kind") if isinstance(d, dict) else type(d).__name__
            raise ValueError(f"vocab: expected a {cls.__name__} description (kind {cls.kind!r}), got {got!r}")
        return cls(d["tokens"], d.get("unk"))

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabulary as JSON (UTF-8)."""
        with open(path, "w", encoding="utf-8") as f:
            json.dump(self.to_dict(), f, ensure_ascii=False)

    @classmethod
    def load(cls: type[V], path: str | os.PathLike[str]) -> V:
        """Read a vocabulary written by :meth:`save`."""
        with open(path, encoding="utf-8") as f:
            return cls.from_dict(json.load(f))


class CharVocab(Vocab):
    """One token per character: ``CharVocab.build("hello").decode(v.encode("hello")) == "hello"``."""

    kind = "char"

    @staticmethod
    def split(text: str) -> list[str]:
        return list(text)

    @staticmethod
    def join(tokens: Iterable[str]) -> str:
        return "".join(tokens)


class WordVocab(Vocab):
    """Words and punctuation marks as tokens (regex ``\\w+|[^\\w\\s]``), joined with spaces."""

    kind = "word"
    pattern = re.compile(r"\w+|[^\w\s]")

    @staticmethod
    def split(text: str) -> list[str]:
        return WordVocab.pattern.findall(text)

    @staticmethod
    def join(tokens: Iterable[str]) -> str:
        return " ".join(tokens)
