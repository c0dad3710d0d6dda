"""Output of a benchmark run: the stdout table, the JSON file and the optional PNG chart."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Callable

from .dynamic import label as dynamic_label
from .tape import label
from .targets import Target

Record = dict[str, Any]
#: Contenders in column order; a missing one (skipped, or no torch) prints as "-".
COLUMNS = ("fused", "cells", "numpy", "torch", "floor")


def _ms(times: dict[str, float], name: str, width: int = 10) -> str:
    return f"{times[name] * 1e3:{width}.2f}" if name in times else f"{'-':>{width}s}"


def _ratio(times: dict[str, float], name: str, ours: str = "fused") -> str:
    return f"{times[ours] / times[name]:7.2f}" if ours in times and name in times else f"{'-':>7s}"


def grid_table(records: list[Record]) -> str:
    """Median ms per step of each contender, fused's ratio to torch, NumPy and the floor
    (below 1: fused is faster), and fused's GFLOP/s."""
    head = (f"{'mode':8s} {'T':>4s} {'B':>3s} {'H':>5s} {'thr':>3s} {'task':5s}"
            + "".join(f"{c + ' ms':>10s}" for c in COLUMNS)
            + f"{'/torch':>7s}{'/numpy':>7s}{'/floor':>7s}{'GFLOP/s':>9s}")
    lines = [head, "-" * len(head)]
    for r in records:
        t = r["median_s"]
        gflops = f"{r['flops'] / t['fused'] / 1e9:9.1f}" if "fused" in t else f"{'-':>9s}"
        lines.append(f"{r['mode']:8s} {r['T']:4d} {r['B']:3d} {r['H']:5d} {r['threads']:3d} {r['task']:5s}"
                     + "".join(_ms(t, c) for c in COLUMNS)
                     + _ratio(t, "torch") + _ratio(t, "numpy") + _ratio(t, "floor") + gflops)
    return "\n".join(lines)


#: The contenders whose thread scaling is printed: the fused kernels, torch's layers, the GEMM floor.
SCALING_COLUMNS = ("fused", "torch", "floor")


def scaling_table(records: list[Record]) -> str:
    """Per mode, shape and task, each contender's speedup at every thread count over the fewest
    threads measured (time at the fewest / time at n), and fused's ratio to torch at each count.
    Empty when the grid ran at one thread count."""
    counts = sorted({r["threads"] for r in records})
    if len(counts) < 2:
        return ""
    by_point: dict[tuple[Any, ...], dict[int, dict[str, float]]] = {}
    for r in records:
        by_point.setdefault((r["mode"], r["T"], r["B"], r["H"], r["task"]), {})[r["threads"]] = r["median_s"]
    head = (f"{'mode':8s} {'T':>4s} {'B':>3s} {'H':>5s} {'task':5s} {'speedup of':12s}"
            + "".join(f"{f'{n} thr':>8s}" for n in counts))
    lines = [f"Thread scaling (speedup over {counts[0]} thread{'s' if counts[0] > 1 else ''}; "
             "last row: fused's time / torch's at each count):", head, "-" * len(head)]
    for (mode, T, B, H, task), times in by_point.items():
        first = times.get(counts[0], {})
        label = f"{mode:8s} {T:4d} {B:3d} {H:5d} {task:5s} "
        for name in SCALING_COLUMNS:
            if name in first:
                lines.append(label + f"{name:12s}" + "".join(
                    f"{first[name] / times[n][name]:8.2f}" if name in times.get(n, {}) else f"{'-':>8s}"
                    for n in counts))
                label = " " * len(label)
        lines.append(label + f"{'fused/torch':12s}" + "".join(
            f"{times[n]['fused'] / times[n]['torch']:8.2f}" if {"fused", "torch"} <= set(times.get(n, {}))
            else f"{'-':>8s}" for n in counts))
    return "\n".join(lines)


def timing_table(title: str, records: list[Record], extra: str = "") -> str:
    """A small table of ``median_s`` per record (the varlen and denormal runs)."""
    lines = [title]
    for r in records:
        times = "  ".join(f"{name} {s * 1e3:.2f}ms" for name, s in r["median_s"].items())
        suffix = f"  {extra}: " + ", ".join(f"{k} {v:.2f}x" for k, v in r[extra].items()) if extra else ""
        lines.append(f"  {r['mode']:8s} T{r['T']} B{r['B']} H{r['H']} threads={r['threads']}:  {times}{suffix}")
    return "\n".join(lines)


def denormals_title(records: list[Record]) -> str:
    """The denormal table's title, with how subnormal the data really is (see denormals.py)."""
    least = min((r["subnormal_outputs"] for r in records), default=0.0)
    return (f"Denormals (training step; inputs -0.1, weights ~1e-39: at least {least:.0%} of the NumPy "
            "reference's outputs are subnormal):")


def memory_table(records: list[Record]) -> str:
    """Peak MiB of a training step and of an inference step per contender, and the fused workspace:
    its bytes as a formula in T, B, H, its size at each shape and its bytes per T*B*H."""
    lines = []
    for task, key in (("a training step", "peak_bytes"), ("an inference step (no_grad)", "infer_peak_bytes")):
        lines.append(f"Peak memory of {task} (MiB: NumPy's allocations by tracemalloc plus the kernels' own "
                     "count; torch's allocator is not traced):")
        for r in records:
            peaks = "  ".join(f"{name} {b / 2**20:.2f}" for name, b in r[key].items())
            lines.append(f"  {r['mode']:8s} T{r['T']} B{r['B']} H{r['H']}:  {peaks}")
    lines.append("Fused workspace (saved by forward for backward):")
    for r in records:
        lines.append(f"  {r['mode']:8s} T{r['T']} B{r['B']} H{r['H']}:  {r['workspace_formula']} bytes = "
                     f"{r['workspace_bytes'] / 2**20:.2f} MiB = {r['workspace_bytes_per_tbh']:.2f} B per T*B*H")
    return "\n".join(lines)


def charlm_line(record: Record) -> str:
    """chars/s of each framework, their ratio, and the first-step losses (equal when the two
    models start from the same weights)."""
    rates = record["chars_per_s"]
    ratio = f" (minirnn / torch {rates['minirnn'] / rates['torch']:.2f}x)" if "torch" in rates else ""
    return ("char-LM training chars/s: " + ", ".join(f"{k} {v:,.0f}" for k, v in rates.items()) + ratio
            + "; first-step loss " + ", ".join(f"{k} {v:.4f}" for k, v in record["first_loss"].items()))


#: The tape section's contenders in column order (tape.py); a missing one prints as "-".
TAPE_COLUMNS = ("tape", "tape_composed", "torch", "fused_layer", "floor")


def _tape_extra(r: Record) -> str:
    """What a tape record measured beside its times: microseconds per op, or characters per second."""
    for key, unit, fmt in (("us_per_op", "us/op", ".2f"), ("chars_per_s", "chars/s", ",.0f")):
        if key in r:
            return f"  {unit} " + ", ".join(f"{k} {v:{fmt}}" for k, v in r[key].items())
    return ""


def tape_table(records: list[Record]) -> str:
    """The tape section (tape.py), a row per record: median ms per forward + backward of each
    contender (a sampling row: per run of its characters), tape / torch and tape / floor (below
    1: the tape is faster), and the record's own unit (us per op, chars/s)."""
    return _section_table("Tape vs torch eager (median ms per forward + backward; sampling: per run, no grad; "
                          "/torch and /floor: tape's time over theirs):", "tape section", records, label,
                          TAPE_COLUMNS, "tape", ("torch", "floor"), "", _tape_extra)


#: The dynamic section's contenders in column order (dynamic.py).
DYNAMIC_COLUMNS = ("tape", "autobatch", "autobatch_depth", "torch", "by_level")


def dynamic_table(records: list[Record]) -> str:
    """The dynamic-graph section (dynamic.py), a row per record: median ms per training step of
    each contender, autobatch's time over eager's, torch's and the hand-batched one's (below 1:
    autobatch is faster), its batches for its ops, the shares of its step spent recording ops (with
    their signatures) and scheduling (grouping, gathering inputs), and its peak memory over eager's."""
    def tail(r: Record) -> str:
        record, schedule = (r[k] / r["median_s"]["autobatch"] for k in ("record_s", "schedule_s"))
        memory = r["peak_bytes"]["autobatch"] / max(r["peak_bytes"]["tape"], 1)
        return f"  {r['batches']:>5d}/{r['ops']:<6d} {record:6.0%} {schedule:6.0%}  {memory:6.2f}x"

    return _section_table("Dynamic graphs: one example at a time, eager vs autobatch() vs torch eager (median ms "
                          "per training step; /x: autobatch's time over x's):", "dynamic section", records,
                          dynamic_label, DYNAMIC_COLUMNS, "autobatch", ("tape", "torch", "by_level"),
                          "  batches/ops  record  sched  memory", tail)


def _section_table(title: str, name: str, records: list[Record], label_of: Callable[[Record], str],
                   columns: tuple[str, ...], ours: str, others: tuple[str, ...], tail_head: str,
                   tail: Callable[[Record], str]) -> str:
    """A table of ``records``: the label, the thread count, each contender's median ms, ``ours``'s
    time over each of ``others``' (headed ``/name``, ``/level`` for ``by_level``), and ``tail(r)``."""
    widths = {c: len(c) + 5 for c in columns}
    head = (f"{name:40s} {'thr':>3s}" + "".join(f"{c + ' ms':>{widths[c]}s}" for c in columns)
            + "".join(f"{'/' + o.replace('by_', ''):>7s}" for o in others) + tail_head)
    lines = [title, head, "-" * len(head)]
    for r in records:
        t = r["median_s"]
        lines.append(f"{label_of(r):40s} {r['threads']:3d}" + "".join(_ms(t, c, widths[c]) for c in columns)
                     + "".join(_ratio(t, o, ours) for o in others) + tail(r))
    return "\n".join(lines)


def targets_table(targets: list[Target]) -> str:
    """Every target with PASS / MISS / n/a, its worst ratio and each point that missed."""
    lines = ["Targets (goals, not assertions):"]
    for t in targets:
        worst = f"  (worst ratio {t.worst:.2f})" if t.worst is not None else ""
        lines.append(f"  [{t.status:4s}] {t.text}{worst}")
        lines.extend(f"           miss: {m}" for m in t.misses)
    return "\n".join(lines)


def write_json(path: str | Path, results: dict[str, Any]) -> None:
    """Every number of the run (``results``) as indented JSON."""
    Path(path).write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")


def write_png(path: str | Path, records: list[Record]) -> None:
    """Bar chart of each contender's training-step time relative to torch (log scale), one
    panel per mode, at the largest thread count measured. Needs the plot extra (matplotlib)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    train = [r for r in records if r["task"] == "train"]
    threads = max(r["threads"] for r in train)
    modes = list(dict.fromkeys(r["mode"] for r in train))  # first-seen order
    fig, axes = plt.subplots(1, len(modes), figsize=(5 * len(modes), 4), squeeze=False)
    for ax, mode in zip(axes[0], modes):
        rows = [r for r in train if r["mode"] == mode and r["threads"] == threads]
        base = "torch" if all("torch" in r["median_s"] for r in rows) else "fused"
        width = 0.8 / len(COLUMNS)
        for k, name in enumerate(COLUMNS):
            xs = [i + k * width for i, r in enumerate(rows) if name in r["median_s"]]
            ys = [r["median_s"][name] / r["median_s"][base] for r in rows if name in r["median_s"]]
            ax.bar(xs, ys, width, label=name)
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_yscale("log")
        ax.set_xticks([i + 0.4 - width / 2 for i in range(len(rows))])
        ax.set_xticklabels([f"T{r['T']}\nB{r['B']}\nH{r['H']}" for r in rows], fontsize=8)
        ax.set_title(f"{mode} training step, {threads} thread(s)")
        ax.set_ylabel(f"time / {base} (lower is better)")
    axes[0][0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
