"""``minirnn.bench.main`` (defined here): run the whole comparison (:func:`measure`), then print
the tables and targets and write the JSON and chart (:func:`publish`).

    python -m minirnn bench            # quick: a subset of the grid, all cores, ~2 minutes
    python -m minirnn bench --full     # the whole grid (problem.FULL_GRID) at 1 thread and at all cores

Both end with the tape section (tape.py): minirnn's tape against torch eager, at all cores.
"""
from __future__ import annotations

import datetime
import importlib.util
import os
import platform
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from .. import _C
from . import report, torch_peer
from .charlm import CharLMConfig, run_charlm
from .contenders import cells_step, fused_step, numpy_step
from .denormals import run_denormals
from .distributed import DistributedConfig, run_distributed
from . import distributed as distributed_section
from .dynamic import DynamicConfig, run_dynamic
from .grid import run_grid
from .memory import peak_step_bytes, workspace_record
from .problem import FULL_GRID, MODES, QUICK_GRID, Shape, make_problem
from .tape import TapeConfig, run_tape
from .targets import Target, as_json, evaluate
from .threads import all_cores, use_threads
from .varlen import run_varlen
from .projected import projected_table, run_projected
from .variants import run_variants, variants_table

#: In quick mode the tape cells and the NumPy reference run only where a step is at most this
#: many FLOPs (they take seconds per step above it); memory and variable lengths likewise.
QUICK_SLOW_MAX_FLOPS = 2e9


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    import numpy
    from .. import __version__
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    return {"cpu": model, "cores": all_cores(), "python": platform.python_version(), "numpy": numpy.__version__,
            "torch": torch_peer.version(), "minirnn": __version__, "commit": _git_commit(),
            "micro_kernel": _C.packed_gemm_kernel(),
            "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}


def _git_commit() -> str | None:
    """The checkout's commit (with "+changes" when the tree differs from it), or None outside a git
    checkout: which code a results file measured."""
    root = Path(__file__).resolve().parents[2]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return commit + ("+changes" if dirty else "") if commit else None


def memory(modes: tuple[str, ...], shapes: tuple[Shape, ...]) -> list[dict[str, Any]]:
    """Peak traced bytes of one training step (``peak_bytes``) and of one inference step
    (``infer_peak_bytes``) of fused, cells and numpy, and the fused workspace (measured bytes, the
    formula in T, B, H, bytes per T*B*H), per mode and shape."""
    contenders = (("fused", fused_step), ("cells", cells_step), ("numpy", numpy_step))

    def peaks(problem: Any, train: bool) -> dict[str, int]:
        return {name: peak_step_bytes(build(problem, train)) for name, build in contenders}

    records = []
    for mode in modes:
        for shape in shapes:
            problem = make_problem(mode, shape)
            records.append(shape.record(mode, peak_bytes=peaks(problem, True), infer_peak_bytes=peaks(problem, False),
                                        **workspace_record(problem)))
    return records


def _light(shapes: tuple[Shape, ...], max_flops: float | None) -> tuple[Shape, ...]:
    """The shapes whose LSTM training step (the costliest mode) is at most ``max_flops``."""
    return tuple(s for s in shapes if max_flops is None or make_problem("lstm", s).flops(True) <= max_flops)


@dataclass(frozen=True)
class _Run:
    """The settings every section of one :func:`measure` shares."""

    cores: int
    shapes: tuple[Shape, ...]
    light: tuple[Shape, ...]  # the shapes the slow sections measure (see _light)
    threads: tuple[int, ...]
    repeats: int
    budget_s: float
    slow_max_flops: float | None
    with_torch: bool
    log: Callable[[str], None]
    wall_start: float

    def phase(self, name: str) -> None:
        self.log(f"{name} ({time.perf_counter() - self.wall_start:.0f} s elapsed)")


def _opening(run: _Run, quick: bool, modes: tuple[str, ...], load_start: float) -> dict[str, Any]:
    """The results dict's machine, config and the notes known before measuring; logs the title line."""
    results: dict[str, Any] = {"machine": machine(), "notes": []}
    if load_start > 0.5:
        results["notes"].append(f"the machine was busy: 1-minute load average {load_start:.2f} at the start; "
                                "times at all cores are sensitive to other processes (a descheduled OpenMP "
                                "thread stalls every time step)")
    results["config"] = {"quick": quick, "modes": list(modes), "shapes": [s.label for s in run.shapes],
                         "threads": list(run.threads), "repeats": run.repeats, "budget_s": run.budget_s}
    if not run.with_torch:
        results["notes"].append("torch is not installed: the torch columns and targets are skipped")
    if run.light != run.shapes:
        results["notes"].append(f"quick: memory and variable lengths measured only at "
                                f"{', '.join(s.label for s in run.light)} (at most {QUICK_SLOW_MAX_FLOPS / 1e9:g} "
                                "GFLOP per LSTM training step); --full measures all")
    run.log(f"minirnn bench ({'quick' if quick else 'full'}) on {results['machine']['cpu']}, {run.cores} cores, "
            f"commit {results['machine']['commit']}")
    return results


def _layer_sections(run: _Run, modes: tuple[str, ...], results: dict[str, Any]) -> None:
    """The fused layers' sections: the grid, memory, variable lengths, denormals, variants, projected."""
    run.phase("grid (median ms per step)")
    grid = run_grid(modes, run.shapes, run.threads, run.repeats, run.budget_s, run.with_torch, run.slow_max_flops,
                    run.log)
    results["grid"] = grid
    results["notes"] += sorted({n for r in grid for n in r["notes"]})
    run.phase("peak memory")
    with use_threads(1):  # bytes do not depend on threads; one thread keeps this phase short on a busy machine
        results["memory"] = memory(modes, run.light)
    top, one = max(run.threads), run.shapes[min(1, len(run.shapes) - 1)]
    run.phase("variable lengths")
    results["varlen"] = run_varlen(modes, run.light, top, run.repeats, run.budget_s, run.with_torch)
    run.phase("denormals")
    results["denormals"] = run_denormals(modes, one, top, run.repeats, run.budget_s, run.with_torch)
    run.phase("lecture variants")
    results["variants"] = run_variants(one, top, run.repeats, run.budget_s, run.slow_max_flops)
    run.phase("projected LSTM")
    results["projected"] = run_projected(one, top, run.repeats, run.budget_s, run.with_torch)


def _model_sections(run: _Run, results: dict[str, Any], charlm: CharLMConfig | None, tape: TapeConfig | None,
                    dynamic: DynamicConfig | None, distributed: DistributedConfig | None) -> None:
    """The whole-model sections, each skipped when its config is None: char-LM, tape, dynamic, distributed."""
    top = max(run.threads)
    if charlm:
        run.phase("char-LM")
    results["charlm"] = run_charlm(charlm, top, run.repeats, run.budget_s, run.with_torch) if charlm else None
    if tape:
        run.phase("tape (median ms per forward + backward; sampling: per run of chars)")
    results["tape"] = run_tape(tape, top, run.repeats, run.budget_s, run.with_torch, run.log) if tape else None
    results["notes"] += sorted({n for r in results["tape"] or [] for n in r["notes"]})
    if dynamic:
        run.phase("dynamic graphs (median ms per training step)")
    results["dynamic"] = (run_dynamic(dynamic, top, run.repeats, run.budget_s, run.with_torch, run.log)
                          if dynamic else None)
    if distributed:
        run.phase("distributed (1 rank vs 2 MPI ranks)")
        results["distributed"] = run_distributed(distributed, run.cores)
        if results["distributed"] is None:
            results["notes"].append("mpi4py/mpiexec not installed: the distributed section is skipped "
                                    "(pip install 'minirnn[mpi]')")


def measure(quick: bool = True, modes: tuple[str, ...] = MODES, shapes: tuple[Shape, ...] | None = None,
            threads: tuple[int, ...] | None = None, repeats: int | None = None,
            charlm: CharLMConfig | None = CharLMConfig(), tape: TapeConfig | None = TapeConfig(),
            dynamic: DynamicConfig | None = DynamicConfig(), log: Callable[[str], None] = print,
            distributed: DistributedConfig | None = DistributedConfig()) -> dict[str, Any]:
    """Run every measurement (arguments as :func:`main`) and return the results dict, without
    targets: the grid, memory, variable lengths, denormals, the char-LM, the tape and dynamic
    graphs, with notes."""
    wall_start = time.perf_counter()
    cores = all_cores()
    shapes = shapes if shapes is not None else (QUICK_GRID if quick else FULL_GRID)
    slow_max_flops = QUICK_SLOW_MAX_FLOPS if quick else None
    run = _Run(cores=cores, shapes=shapes, light=_light(shapes, slow_max_flops),
               threads=threads if threads is not None else ((cores,) if quick else tuple(sorted({1, cores}))),
               repeats=repeats if repeats is not None else (3 if quick else 7), budget_s=1.0 if quick else 5.0,
               slow_max_flops=slow_max_flops, with_torch=torch_peer.available(), log=log, wall_start=wall_start)
    load_start = os.getloadavg()[0]
    results = _opening(run, quick, modes, load_start)
    _layer_sections(run, modes, results)
    _model_sections(run, results, charlm, tape, dynamic, distributed)
    results["load_average"] = {"start": load_start, "end": os.getloadavg()[0]}
    results["wall_s"] = time.perf_counter() - wall_start
    return results


def publish(results: dict[str, Any], json_path: str | Path | None = None, png_path: str | Path | None = None,
            log: Callable[[str], None] = print) -> list[Target]:
    """Judge the targets on ``results`` (stored in it as ``results["targets"]``), print the
    tables, notes and targets, and write the JSON (and the PNG chart) when paths are given."""
    targets = evaluate(results["grid"], results["varlen"], results["denormals"], results["charlm"],
                       results.get("tape"), results.get("dynamic"))
    targets += distributed_section.targets(results.get("distributed"))
    results["targets"] = as_json(targets)
    log("")
    log(report.grid_table(results["grid"]))
    scaling = report.scaling_table(results["grid"])
    if scaling:
        log(scaling)
    log(report.memory_table(results["memory"]))
    log(report.timing_table("Variable lengths (training step):", results["varlen"]))
    log(report.timing_table(report.denormals_title(results["denormals"]), results["denormals"], extra="slowdown"))
    if results.get("variants"):
        log(variants_table(results["variants"]))
    if results.get("projected"):
        log(projected_table(results["projected"]))
    if results["charlm"]:
        log(report.charlm_line(results["charlm"]))
    if results.get("tape"):
        log(report.tape_table(results["tape"]))
    if results.get("dynamic"):
        log(report.dynamic_table(results["dynamic"]))
    if results.get("distributed"):
        log(distributed_section.table(results["distributed"]))
    for note in results["notes"]:
        log(f"note: {note}")
    log(report.targets_table(targets))
    log(f"measured in {results['wall_s']:.0f} s; 1-minute load average {results['load_average']['start']:.2f} "
        f"at the start, {results['load_average']['end']:.2f} at the end")
    if json_path is not None:
        report.write_json(json_path, results)
        log(f"wrote {json_path}")
    if png_path is not None:
        report.write_png(png_path, results["grid"])
        log(f"wrote {png_path}")
    return targets


def main(quick: bool = True, json_path: str | Path | None = "minirnn-bench.json", png_path: str | Path | None = None,
         modes: tuple[str, ...] = MODES, shapes: tuple[Shape, ...] | None = None,
         threads: tuple[int, ...] | None = None, repeats: int | None = None,
         charlm: CharLMConfig | None = CharLMConfig(), tape: TapeConfig | None = TapeConfig(),
         dynamic: DynamicConfig | None = DynamicConfig(), log: Callable[[str], None] = print,
         distributed: DistributedConfig | None = DistributedConfig()) -> dict[str, Any]:
    """Run the benchmarks, print the tables and the targets, write JSON (and PNG); return the
    results dict that went into the JSON.

    ``quick`` picks the defaults: a 3-shape subset of the grid at all cores, 3 repeats, the slow
    contenders (tape cells, NumPy) skipped above 2 GFLOP per step and memory and variable lengths
    measured only at the shapes below that; otherwise the whole grid at 1 thread and at all cores,
    7 repeats, every contender everywhere. ``shapes``, ``threads``, ``repeats`` override them.
    ``charlm=None`` skips the char-LM run, ``tape=None`` the tape section, ``dynamic=None`` the
    dynamic-graph section (dynamic.py); quick and full run the same tape and dynamic sizes, full
    with more repeats and a larger time budget per contender. ``distributed``: the main job on 1
    rank vs 2 MPI ranks (None: skipped; skipped with a note without the mpi extra). ``png_path``
    needs matplotlib (the plot extra).
    """
    if importlib.util.find_spec("threadpoolctl") is None:  # sets NumPy's BLAS threads (threads.py)
        raise ValueError("main: the benchmarks need threadpoolctl (pip install 'minirnn[bench]'), which is not "
                         "installed")
    if png_path is not None and importlib.util.find_spec("matplotlib") is None:
        raise ValueError(f"main: png_path={str(png_path)!r} needs matplotlib (pip install 'minirnn[plot]'), "
                         "which is not installed")
    results = measure(quick, modes, shapes, threads, repeats, charlm, tape, dynamic, log, distributed)
    publish(results, json_path, png_path, log)
    return results
