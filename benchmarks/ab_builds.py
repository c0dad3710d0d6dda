"""A/B of two builds of the kernels: is a change to csrc/ faster, measured, not guessed?

    python benchmarks/ab_builds.py /tmp/build_a/_C*.so /tmp/build_b/_C*.so \\
        --mode lstm --shape 100,64,256 --task train --threads 1 --rounds 5

Two builds of ``minirnn._C`` cannot both be that one module, so every round runs one child
process per build, A then B: a drift of the machine (other tenants, the clock) falls on both alike.
On a busy machine the processes' own luck swamps a few percent (at load 6 on 2 cores the floor's
B/A of two processes ranged 0.4-3.0); ``--in-process`` then loads both files into ONE process
under two other names and times their kernel calls (``rnn_forward``, and ``rnn_backward`` for
training, on the harness's problem) interleaved sample by sample, each round a B/A; the fused
layer's Python around the kernels and the floor are left out, being the same in both. A child loads its build as ``minirnn._C`` before it imports minirnn, then
times the fused layer's step and the GEMM floor as the harness does (``minirnn.bench.timing``:
warm-up, interleaved samples, medians). The parent prints each round's medians, then B/A per
round and the median over rounds (below 1: B is faster). The floor is the same code in both
builds (OpenBLAS), so its B/A shows how much the machine itself moved between the two processes.

Building the two: benchmarks/README.md, "A/B of a kernel change". Both builds must have this
checkout's kernel interface: a build from before rnn_forward returned a SavedLayer for
rnn_backward (issue 26) cannot be compared with this script, as both the fused layer a child times
and ``--in-process``'s kernel calls use that interface.
"""
from __future__ import annotations

import argparse
import importlib.machinery
import importlib.util
import json
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any, Callable

import numpy as np


def load_build(so: str, name: str = "minirnn._C") -> Any:
    """Load the extension file ``so`` as the module ``name`` (its last part must be ``_C``, the name
    the extension was built with) and return it; as ``minirnn._C``, before minirnn is imported."""
    import scipy_openblas32  # noqa: F401  (loads the OpenBLAS the extension links to)
    loader = importlib.machinery.ExtensionFileLoader(name, so)
    spec = importlib.util.spec_from_file_location(name, so, loader=loader)
    module = importlib.util.module_from_spec(spec)
    loader.exec_module(module)
    sys.modules[name] = module
    return module


if __name__ == "__main__" and "--child" in sys.argv:  # before anything imports minirnn, with its own _C
    load_build(sys.argv[sys.argv.index("--child") + 1])

import minirnn  # noqa: E402
from minirnn.bench.contenders import fused_step  # noqa: E402
from minirnn.bench.floor import floor_step  # noqa: E402
from minirnn.bench.problem import MODES, make_problem  # noqa: E402
from minirnn.bench.threads import use_threads  # noqa: E402
from minirnn.bench.timing import Contender, time_interleaved  # noqa: E402
from minirnn.arguments import positive_argument, shape_argument  # noqa: E402


def child(args: argparse.Namespace) -> dict[str, Any]:
    """In a fresh process that loaded build ``args.child`` first: median seconds of the fused step
    and of its GEMM floor."""
    if Path(minirnn._C.__file__).resolve() != Path(args.child).resolve():
        raise RuntimeError(f"loaded {minirnn._C.__file__}, not the build {args.child}")
    problem = make_problem(args.mode, args.shape)
    train = args.task == "train"
    with use_threads(args.threads):
        timings = time_interleaved([Contender("fused", fused_step(problem, train), spins=False),
                                    Contender("floor", floor_step(problem, train), spins=False)],
                                   args.repeats, budget_s=1e9)
    return {name: t.median_s for name, t in timings.items()}


def run_child(so: str, args: argparse.Namespace) -> dict[str, float]:
    shape = args.shape
    command = [sys.executable, __file__, "--child", so, "--mode", args.mode, "--task", args.task,
               "--shape", f"{shape.T},{shape.B},{shape.I},{shape.H}", "--threads", str(args.threads),
               "--repeats", str(args.repeats)]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"ab_builds: the child timing {so} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def compare(args: argparse.Namespace) -> list[str]:
    """Rounds of A then B, each in its own process; the report's lines."""
    shape = args.shape
    lines = [f"{args.mode} T{shape.T} B{shape.B} I{shape.I} H{shape.H} {args.task}, {args.threads} thread(s), "
             f"{args.rounds} rounds; A = {args.a}, B = {args.b}"]
    rounds = []
    for r in range(args.rounds):
        a, b = run_child(args.a, args), run_child(args.b, args)
        rounds.append((a, b))
        lines.append(f"round {r + 1}: fused A {a['fused'] * 1e3:.3f} ms  B {b['fused'] * 1e3:.3f} ms  "
                     f"B/A {b['fused'] / a['fused']:.3f}   floor B/A {b['floor'] / a['floor']:.3f}")
    for name in ("fused", "floor"):
        ratios = [b[name] / a[name] for a, b in rounds]
        lines.append(f"{name} B/A: median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, "
                     f"max {max(ratios):.3f}; B faster in {sum(x < 1 for x in ratios)} of {len(ratios)} rounds)")
    return lines


def kernel_step(kernels: Any, problem: Any, train: bool) -> Callable[[], None]:
    """One layer step of ``problem`` straight on a build's kernels: forward, then backward of ``dy``."""
    w, s = problem.weights, problem.shape
    zero = np.zeros((s.B, s.H), np.float32)
    args = (problem.mode, problem.x, w["weight_ih_l0"], w["weight_hh_l0"], w["bias_ih_l0"], w["bias_hh_l0"], zero,
            zero if problem.mode == "lstm" else None, None)

    def training_step() -> None:
        saved = kernels.rnn_forward(*args)[3]
        kernels.rnn_backward(saved, problem.dy, None, None)

    return training_step if train else lambda: kernels.rnn_forward(*args, need_workspace=False)


def compare_in_process(args: argparse.Namespace) -> list[str]:
    """Both builds in this process, their kernel calls timed interleaved; the report's lines."""
    builds = [load_build(so, f"ab_{name}._C") for name, so in (("a", args.a), ("b", args.b))]
    problem, train = make_problem(args.mode, args.shape), args.task == "train"
    shape = problem.shape
    lines = [f"{args.mode} T{shape.T} B{shape.B} I{shape.I} H{shape.H} {args.task}, {args.threads} thread(s), "
             f"{args.rounds} rounds in one process; A = {args.a}, B = {args.b}"]
    for kernels in builds:
        kernels.set_num_threads(args.threads)
    ratios = []
    for r in range(args.rounds):
        timings = time_interleaved([Contender(name, kernel_step(kernels, problem, train), spins=False)
                                    for name, kernels in zip("AB", builds)], args.repeats, budget_s=1e9)
        a, b = timings["A"].median_s, timings["B"].median_s
        ratios.append(b / a)
        lines.append(f"round {r + 1}: kernels A {a * 1e3:.3f} ms  B {b * 1e3:.3f} ms  B/A {b / a:.3f}")
    lines.append(f"kernels B/A: median {statistics.median(ratios):.3f} (min {min(ratios):.3f}, "
                 f"max {max(ratios):.3f}; B faster in {sum(x < 1 for x in ratios)} of {len(ratios)} rounds)")
    return lines


def extension_file(text: str) -> str:
    if not Path(text).is_file():
        raise argparse.ArgumentTypeError(f"expected a built extension file (_C*.so), got {text!r}: no such file")
    return text


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("a", nargs="?", type=extension_file, help="build A's _C*.so (the baseline)")
    p.add_argument("b", nargs="?", type=extension_file, help="build B's _C*.so (the change)")
    p.add_argument("--mode", choices=MODES, default="lstm")
    p.add_argument("--shape", type=shape_argument, default=shape_argument("100,64,256"), help="T,B,H or T,B,I,H")
    p.add_argument("--task", choices=("train", "infer"), default="train")
    p.add_argument("--threads", type=positive_argument(int), default=1)
    p.add_argument("--rounds", type=positive_argument(int), default=5, help="processes per build (in process: B/As)")
    p.add_argument("--in-process", action="store_true", help="both builds in one process, kernels only")
    p.add_argument("--repeats", type=positive_argument(int), default=7, help="timed samples per process")
    p.add_argument("--child", type=extension_file, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    if args.child:
        print(json.dumps(child(args)))
        return
    if args.a is None or args.b is None:
        parser().error("expected two builds, A and B")
    print("\n".join(compare_in_process(args) if args.in_process else compare(args)))


if __name__ == "__main__":
    main()
