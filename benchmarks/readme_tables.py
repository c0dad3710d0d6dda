"""The README's benchmark tables, as Markdown, from a ``python -m minirnn bench --json`` file.

    python benchmarks/readme_tables.py run.json [--threads 2]

Prints the training-step and inference tables (median ms at one thread count, each ratio to torch,
the NumPy reference and the GEMM floor) and the variable-length table, in the README's layout,
so that a new run replaces the old numbers without copying them by hand.
"""
from __future__ import annotations

import argparse
import json
from typing import Any

GRID_HEADER = ("| cell | T, B, I=H | minirnn fused | torch | NumPy reference | GEMM floor | fused / torch "
               "| fused / NumPy | fused / floor |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
VARLEN_HEADER = ("| cell | T, B, I=H | mean length | minirnn fused | torch packed | torch padded | GEMM floor "
                 "| fused / packed | fused / floor |\n| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")


def _ms(times: dict[str, float], name: str) -> str:
    return f"{times[name] * 1e3:.2f}" if name in times else "-"


def _ratio(times: dict[str, float], name: str, bold: bool = False) -> str:
    if name not in times or "fused" not in times:
        return "-"
    text = f"{times['fused'] / times[name]:.2f}"
    return f"**{text}**" if bold else text


def _size(record: dict[str, Any]) -> str:
    return f"{record['T']}, {record['B']}, {record['H']}"


def grid_table(results: dict[str, Any], task: str, threads: int) -> str:
    rows = [GRID_HEADER]
    for r in results["grid"]:
        if r["task"] == task and r["threads"] == threads:
            t = r["median_s"]
            rows.append(f"| {r['mode']} | {_size(r)} | {_ms(t, 'fused')} | {_ms(t, 'torch')} | {_ms(t, 'numpy')} "
                        f"| {_ms(t, 'floor')} | {_ratio(t, 'torch', bold=True)} | {_ratio(t, 'numpy')} "
                        f"| {_ratio(t, 'floor')} |")
    return "\n".join(rows)


def varlen_table(results: dict[str, Any], threads: int) -> str:
    rows = [VARLEN_HEADER]
    for r in results["varlen"]:
        if r["threads"] == threads:
            t = r["median_s"]
            rows.append(f"| {r['mode']} | {_size(r)} | {r['mean_length']:.1f} | {_ms(t, 'fused')} "
                        f"| {_ms(t, 'torch_packed')} | {_ms(t, 'torch_padded')} | {_ms(t, 'floor')} "
                        f"| {_ratio(t, 'torch_packed', bold=True)} | {_ratio(t, 'floor')} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("json", help="the bench's --json file")
    parser.add_argument("--threads", type=int, default=2, help="thread count of the tables (default 2)")
    args = parser.parse_args(argv)
    with open(args.json, encoding="utf-8") as f:
        results = json.load(f)
    m = results["machine"]
    print(f"<!-- {m['cpu']}, {m['cores']} cores, commit {m['commit']}, {m['date']} -->\n")
    print(f"Training step (forward + backward), {args.threads} threads, median ms:\n")
    print(grid_table(results, "train", args.threads) + "\n")
    print(f"Inference (forward under no_grad), {args.threads} threads, median ms:\n")
    print(grid_table(results, "infer", args.threads) + "\n")
    print(f"Variable-length batches (training step, {args.threads} threads, median ms):\n")
    print(varlen_table(results, args.threads))


if __name__ == "__main__":
    main()
