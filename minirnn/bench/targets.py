"""minirnn's speed targets (fused layers and tape against torch, NumPy and the GEMM floor),
checked against the measured records (goals, not assertions).

Every target is written as ``value <= limit`` for a time ratio, smaller meaning better for
minirnn: "2x faster than torch" is ``fused / torch <= 0.5``.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Callable

from . import dynamic, tape

Record = dict[str, Any]
#: The tape's cell loops: the limit of tape / torch at each cell-loop size (T, B, H).
TAPE_CELL_LIMITS = {(100, 1, 64): 0.3, (100, 32, 128): 0.7, (50, 64, 256): 1.0}
#: The cell-loop size at which the tape is also held to the GEMM floor.
TAPE_FLOOR_POINT = (50, 64, 256)


@dataclass
class Target:
    """One target's verdict: PASS, MISS, or n/a (nothing measured), the worst ratio seen and
    every point that missed."""

    text: str
    status: str
    worst: float | None = None
    misses: list[str] = field(default_factory=list)


def _label(r: Record) -> str:
    """Where a record was measured: mode and size for the layer records (grid, varlen,
    denormals), the model's size for the char-LM record (which has no single mode or H), what it
    measured for a tape or dynamic record (tape.py, dynamic.py)."""
    if "kind" in r:
        what = dynamic.label(r) if r["kind"] in dynamic.KINDS else tape.label(r)
        return f"{what} threads={r['threads']}"
    if "mode" not in r:
        c = r["config"]
        return f"char-LM T{c['T']} B{c['B']} H{c['hidden']} layers={c['layers']} threads={r['threads']}"
    return f"{r['mode']} T{r['T']} B{r['B']} H{r['H']} threads={r['threads']}"


def _ratio(r: Record, num: str, den: str) -> float | None:
    times = r["median_s"]
    return times[num] / times[den] if num in times and den in times else None


def _miss(r: Record, value: float, limit: float) -> str:
    """A missed point. Where the record has a GEMM floor, a ratio ``ours / X`` target needs our
    time (``fused``; ``minirnn`` in the char-LM record) to be ``limit * X``; when that is below the
    floor it is out of reach on this machine, and the line says so."""
    line = f"{_label(r)}: {value:.2f} > {limit:.2f}"
    times = r.get("median_s", {})
    ours = next((times[k] for k in ("fused", "minirnn", "tape") if k in times), None)
    if "floor" in times and ours is not None and value > 0:
        needed = limit * ours / value
        if needed < times["floor"]:
            line += f" (needs {needed * 1e3:.2f} ms, below the GEMM floor {times['floor'] * 1e3:.2f} ms)"
    return line


def check(text: str, records: list[Record], value: Callable[[Record], float | None],
          limit: Callable[[Record], float]) -> Target:
    """``value(r) <= limit(r)`` on every record where ``value`` is defined."""
    measured = [(r, v) for r in records if (v := value(r)) is not None]
    if not measured:
        return Target(text, "n/a")
    misses = [_miss(r, v, limit(r)) for r, v in measured if v > limit(r)]
    worst = max(measured, key=lambda rv: rv[1] / limit(rv[0]))[1]
    return Target(text, "MISS" if misses else "PASS", worst, misses)


def _point(r: Record) -> tuple[int, int, int]:
    return r["T"], r["B"], r["H"]


def evaluate(grid: list[Record], varlen: list[Record], denormals: list[Record],
             charlm: Record | None, tape_records: list[Record] | None = None,
             dynamic_records: list[Record] | None = None) -> list[Target]:
    """Every target of the fused layers (train, infer, char-LM, varlen), plus the denormal one, then the tape's
    and the dynamic graphs' (``tape_records``, ``dynamic_records``: tape.py's and dynamic.py's;
    None or empty: n/a)."""
    cells = [r for r in tape_records or [] if r["kind"] == "cells" and _point(r) in TAPE_CELL_LIMITS]

    def tape_check(text: str, kind: str, limit: float) -> Target:
        return check(text, [r for r in tape_records or [] if r["kind"] == kind],
                     lambda r: _ratio(r, "tape", "torch"), lambda r: limit)

    train = [r for r in grid if r["task"] == "train"]
    infer = [r for r in grid if r["task"] == "infer"]
    gated = [r for r in train if r["mode"] in ("lstm", "gru")]
    small = [r for r in gated if r["B"] <= 32 and r["H"] <= 256]
    large = [r for r in train if r["H"] >= 512]
    return [
        check("train LSTM/GRU: fused / torch < 1.0 at every point", gated,
              lambda r: _ratio(r, "fused", "torch"), lambda r: 1.0),
        check("train B<=32, H<=256: 2x faster than torch (LSTM), 4x (GRU)", small,
              lambda r: _ratio(r, "fused", "torch"), lambda r: 0.5 if r["mode"] == "lstm" else 0.25),
        check("train H>=512: fused / floor <= 1.25", large,
              lambda r: _ratio(r, "fused", "floor"), lambda r: 1.25),
        check("train: 3x faster than NumPy at every point, 10x at (100, 1, 64)", train,
              lambda r: _ratio(r, "fused", "numpy"),
              lambda r: 0.1 if (r["T"], r["B"], r["H"]) == (100, 1, 64) else 1 / 3),
        check("infer: fused / torch < 1.0 at every point", infer,
              lambda r: _ratio(r, "fused", "torch"), lambda r: 1.0),
        check("char-LM: chars/s at least 1.5x torch's", [charlm] if charlm else [],
              lambda r: r["chars_per_s"].get("torch", 0) / r["chars_per_s"]["minirnn"]
              if "torch" in r["chars_per_s"] else None, lambda r: 1 / 1.5),
        check("varlen: 3x faster than torch's packed path", varlen,
              lambda r: _ratio(r, "fused", "torch_packed"), lambda r: 1 / 3),
        check("denormals: fused slows down at most 1.5x", denormals,
              lambda r: r["slowdown"].get("fused"), lambda r: 1.5),
        check("tape cell loops: tape / torch <= 0.3 at (100, 1, 64), 0.7 at (100, 32, 128), 1.0 at (50, 64, 256)",
              cells, lambda r: _ratio(r, "tape", "torch"), lambda r: TAPE_CELL_LIMITS[_point(r)]),
        check("tape cell loops at (50, 64, 256): tape / floor <= 1.2",
              [r for r in cells if _point(r) == TAPE_FLOOR_POINT], lambda r: _ratio(r, "tape", "floor"),
              lambda r: 1.2),
        tape_check("tape per-op fixed cost: tape / torch <= 1.0", "ops", 1.0),
        tape_check("tape tree net (eager): tape / torch <= 1.0", "tree", 1.0),
        tape_check("tape sampling: chars/s at least 2x torch's", "sample", 0.5),
        *dynamic_targets(dynamic_records or []),
    ]


def dynamic_targets(records: list[Record]) -> list[Target]:
    """The goals for autobatch(): on the Tree-LSTM's batch of trees faster than torch eager by 8x
    (DyNet reported 7.1x over its unbatched mode) and near the hand-batched version; everywhere
    cheap to schedule, no hungrier for memory and never slower than eager."""
    trees = [r for r in records if r["kind"] == "treelstm" and r["trees"] > 1]
    return [
        check("autobatch Tree-LSTM: autobatch / torch <= 1/8", trees,
              lambda r: _ratio(r, "autobatch", "torch"), lambda r: 1 / 8),
        check("autobatch Tree-LSTM: autobatch / by_level (batched by hand) <= 1.2", trees,
              lambda r: _ratio(r, "autobatch", "by_level"), lambda r: 1.2),
        check("autobatch scheduling (recording + forming batches) <= 15% of the step", records,
              lambda r: (r["record_s"] + r["schedule_s"]) / r["median_s"]["autobatch"], lambda r: 0.15),
        check("autobatch peak memory <= 1.5x eager's", records,
              lambda r: r["peak_bytes"]["autobatch"] / max(r["peak_bytes"]["tape"], 1), lambda r: 1.5),
        check("autobatch never slower than eager by more than 10%: autobatch / tape <= 1.1", records,
              lambda r: _ratio(r, "autobatch", "tape"), lambda r: 1.1),
    ]


def as_json(targets: list[Target]) -> list[dict[str, Any]]:
    return [asdict(t) for t in targets]
