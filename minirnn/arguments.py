"""argparse types shared by the command line (:mod:`minirnn.cli`) and the scripts in benchmarks/.

Each turns one command-line word into a value or raises ``argparse.ArgumentTypeError``, whose
message argparse prints after the option's name.
"""
from __future__ import annotations

import argparse
from typing import Callable

from .bench.problem import Shape


def positive_argument(kind: type) -> Callable[[str], float | int]:
    """argparse type: a ``kind`` (int or float) > 0."""
    def parse(text: str) -> float | int:
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"expected a number > 0, got {text}")
        return value
    return parse


def _comma_ints(text: str) -> list[int]:
    """``"1,2,4"`` -> [1, 2, 4]; [] when a part is not an integer."""
    try:
        return [int(part) for part in text.split(",")]
    except ValueError:
        return []


def thread_counts_argument(text: str) -> tuple[int, ...]:
    """argparse type: ``"1,2,4"`` -> (1, 2, 4), distinct thread counts >= 1 in increasing order."""
    counts = _comma_ints(text)
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1 such as 1,2,4, got {text!r}")
    return tuple(sorted(set(counts)))


def shape_argument(text: str) -> Shape:
    """argparse type of a layer size: ``"50,64,512"`` (T, B, H with I = H) or ``"50,64,256,512"``
    (T, B, I, H) -> a bench Shape."""
    dims = _comma_ints(text)
    if len(dims) not in (3, 4) or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"expected T,B,H or T,B,I,H as integers >= 1 such as 50,64,512, got {text!r}")
    T, B, *rest = dims
    return Shape(T, B, rest[0], rest[-1])
