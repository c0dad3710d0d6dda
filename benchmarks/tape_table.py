"""The tape section alone (minirnn/bench/tape.py), or the dynamic-graph one (dynamic.py): one table.

    python benchmarks/tape_table.py                  # all cores, 7 rounds, 5 s per contender
    python benchmarks/tape_table.py --repeats 3 --budget 1 --threads 1
    python benchmarks/tape_table.py --section dynamic   # autobatch(): the table and its targets

It prints which minirnn it imported, then ``report.tape_table`` of ``tape.run_tape`` and the
notes. The tables in benchmarks/results/2026-12-06-xeon-2core-tape-{before,after}.txt came from
this script with its defaults: "after" in this checkout; "before" from commit bdc4141 with this
checkout's minirnn/bench/*.py copied over it (the harness does not depend on the tape's internals),
its extension built with cmake as in benchmarks/README.md section 4, and run with ``python -S``
and PYTHONPATH set to that tree and then site-packages, so that it, not the editable install, is
imported.
"""
from __future__ import annotations

import argparse

import minirnn
from minirnn.bench import dynamic, report, tape, targets
from minirnn.bench.threads import all_cores
from minirnn.bench.torch_peer import available
from minirnn.arguments import positive_argument


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=positive_argument(int), default=None, help="default: all cores")
    parser.add_argument("--repeats", type=positive_argument(int), default=7, help="interleaved rounds")
    parser.add_argument("--budget", type=positive_argument(float), default=5.0,
                        help="seconds of samples per contender and row at most")
    parser.add_argument("--section", choices=("tape", "dynamic"), default="tape")
    args = parser.parse_args(argv)
    print(f"minirnn from {minirnn.__file__}")
    threads, quiet = args.threads or all_cores(), lambda line: None
    if args.section == "dynamic":
        records = dynamic.run_dynamic(dynamic.DynamicConfig(), threads, args.repeats, args.budget, available(), quiet)
        print(report.dynamic_table(records))
        print(report.targets_table(targets.dynamic_targets(records)))
        return
    records = tape.run_tape(tape.TapeConfig(), threads, args.repeats, args.budget, available(), quiet)
    print(report.tape_table(records))
    for note in sorted({n for r in records for n in r.get("notes", [])}):
        print(f"note: {note}")


if __name__ == "__main__":
    main()
