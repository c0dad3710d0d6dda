"""Dynamic graphs: the models of dynamic_models.py, one example at a time, eager against
``autobatch()`` against PyTorch eager (same weights, same data), and the Tree-LSTM batched by hand
by level (the practical limit). Every contender does a whole training step: forward, backward
and an SGD step (learning rate 0, so that every repeat computes the same loss).

Contenders (median seconds per step, interleaved, timing.py):

  tape             minirnn's eager tape
  autobatch        the same code inside ``minirnn.autobatch()`` (DyNet's agenda schedule)
  autobatch_depth  ``autobatch(schedule="depth")`` (TensorFlow Fold's schedule)
  torch            PyTorch eager, the same code
  by_level         (Tree-LSTM only) minirnn, batched by hand: one op per level of the trees

Records (``kind``): ``treelstm`` (batch of treebank-shaped trees; also ``treelstm`` with one
tree, the batch of one), ``treenet`` (tape.py's recursive tree net on the same trees),
``mpnn`` (message passing over random graphs), ``decoders`` (greedy decoders of different
lengths). Beside the times each has ``loss`` per contender (the evidence that they compute the
same thing), ``batches``/``ops`` (autobatch's), ``record_s`` and ``schedule_s`` (autobatch's time
recording ops with their signatures, and forming and feeding batches, in one step) and
``peak_bytes`` (one step's peak as the memory section measures it, memory.peak_step_bytes:
NumPy's allocations plus the kernels' scratch; tape and autobatch).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .. import optim
from ..autobatch import autobatch
from ..random import manual_seed
from ..tensor import Tensor
from . import dynamic_models as dm
from .memory import peak_step_bytes
from .tape import TreeNet, Workload, time_workloads, tree_loss

Record = dict[str, Any]
#: The record kinds of this section.
KINDS = ("treelstm", "treenet", "mpnn", "decoders")


@dataclass(frozen=True)
class DynamicConfig:
    """The sizes: the targets' by default (Tree-LSTM hidden 150, embedding 300, 64 trees)."""

    trees: int = 64
    vocab: int = 1000
    embed: int = 300
    hidden: int = 150
    graphs: int = 32
    graph_hidden: int = 64
    decoders: int = 32
    decoder_hidden: int = 128
    max_output: int = 20


def minirnn_step(model: Any, loss: Callable[[], Tensor], schedule: str | None) -> Workload:
    """forward (inside ``autobatch(schedule=...)`` unless None), backward, SGD step."""
    optimizer = optim.SGD(model.parameters(), lr=0.0)

    def run() -> float:
        optimizer.zero_grad()
        with autobatch(enabled=schedule is not None, schedule=schedule or "agenda") as log:
            value = loss()
        value.backward()
        optimizer.step()
        run.log = log  # type: ignore[attr-defined]
        return float(value.item())

    return Workload(run, spins=True)


def torch_step(model: Any, loss: Callable[[], Any]) -> Workload:
    import torch
    optimizer = torch.optim.SGD(model.parameters(), lr=0.0)

    def run() -> float:
        optimizer.zero_grad()
        value = loss()
        value.backward()
        optimizer.step()
        return float(value.item())

    return Workload(run)


def _contenders(model: Any, loss: Callable[[Any, Any], Any], with_torch: bool) -> dict[str, Workload]:
    mfw = dm.minirnn_ops()
    steps = {"tape": minirnn_step(model, lambda: loss(model, mfw), None),
             "autobatch": minirnn_step(model, lambda: loss(model, mfw), "agenda"),
             "autobatch_depth": minirnn_step(model, lambda: loss(model, mfw), "depth")}
    if with_torch:
        twin, tfw = dm.torch_twin(model), dm.torch_ops()
        steps["torch"] = torch_step(twin, lambda: loss(twin, tfw))
    return steps


def workloads(cfg: DynamicConfig, with_torch: bool) -> list[tuple[dict[str, Any], dict[str, Workload]]]:
    """(record fields, contenders) of every measurement, models seeded by ``manual_seed(0)``."""
    rng = np.random.default_rng(0)
    trees = [dm.treebank_tree(rng, cfg.vocab, 5) for _ in range(cfg.trees)]
    out = [_tree_lstm(cfg, batch, with_torch) for batch in (trees, trees[:1])]
    manual_seed(0)
    net = TreeNet(cfg.vocab, cfg.hidden)
    labels = rng.integers(2, size=len(trees))
    out.append(({"kind": "treenet", "trees": len(trees), "nodes": sum(map(dm.count_nodes, trees)), "H": cfg.hidden},
                _contenders(net, lambda m, fw: tree_loss(m, trees, fw.targets(labels),
                                                         [fw.ids(k) for k in range(cfg.vocab)], fw.cat, fw.cross_entropy),
                            with_torch)))
    graphs = [dm.random_graph(rng, 10) for _ in range(cfg.graphs)]
    manual_seed(0)
    mpnn = dm.MPNN(10, cfg.graph_hidden)
    out.append(({"kind": "mpnn", "graphs": len(graphs), "nodes": sum(len(g.tokens) for g in graphs),
                 "H": cfg.graph_hidden}, _contenders(mpnn, lambda m, fw: dm.mpnn_loss(m, graphs, fw), with_torch)))
    sources = [rng.standard_normal((1, 32)).astype(np.float32) for _ in range(cfg.decoders)]
    targets = [rng.integers(20, size=int(rng.integers(2, cfg.max_output + 1))) for _ in range(cfg.decoders)]
    manual_seed(0)
    decoder = dm.Decoder(32, 20, 32, cfg.decoder_hidden)
    out.append(({"kind": "decoders", "decoders": len(sources), "steps": sum(map(len, targets)),
                 "H": cfg.decoder_hidden},
                _contenders(decoder, lambda m, fw: dm.decoders_loss(m, [fw.tensor(s) for s in sources], targets, fw),
                            with_torch)))
    return out


def _tree_lstm(cfg: DynamicConfig, trees: list[dm.Tree], with_torch: bool) -> tuple[dict[str, Any], dict[str, Workload]]:
    """The Tree-LSTM's record fields and contenders on ``trees``, batched by hand by level too."""
    manual_seed(0)
    model = dm.TreeLSTM(cfg.vocab, cfg.embed, cfg.hidden)
    steps = _contenders(model, lambda m, fw: dm.tree_lstm_loss(m, trees, fw, cfg.hidden), with_torch)
    plan = dm.level_plan(trees)
    steps["by_level"] = minirnn_step(model, lambda: dm.tree_lstm_loss_by_level(model, plan), None)
    return {"kind": "treelstm", "trees": len(trees), "nodes": sum(map(dm.count_nodes, trees)), "H": cfg.hidden}, steps


def label(r: Record) -> str:
    if r["kind"] in ("treelstm", "treenet"):
        name = "Tree-LSTM" if r["kind"] == "treelstm" else "tree net"
        return f"{name} {r['trees']} tree{'s' * (r['trees'] != 1)} {r['nodes']} nodes H{r['H']}"
    if r["kind"] == "mpnn":
        return f"MPNN {r['graphs']} graphs {r['nodes']} nodes H{r['H']}"
    return f"decoders {r['decoders']} x {r['steps']} steps H{r['H']}"


def run_dynamic(cfg: DynamicConfig, threads: int, repeats: int, budget_s: float, with_torch: bool,
                log: Callable[[str], None] = print) -> list[Record]:
    """Every measurement of the module docstring; one record each, logged as it ends."""
    records = []
    for fields, steps in workloads(cfg, with_torch):
        losses = {name: step.run() for name, step in steps.items()}  # (also warms up)
        record = time_workloads(steps, threads, repeats, budget_s, **fields)
        last = steps["autobatch"].run.log  # type: ignore[attr-defined]  # (minirnn_step keeps its last step's log)
        record["loss"] = losses
        record["batches"], record["ops"] = len(last.batches), last.ops
        record["record_s"], record["schedule_s"] = last.record_seconds, last.schedule_seconds
        record["peak_bytes"] = {name: peak_step_bytes(steps[name].run) for name in ("tape", "autobatch")}
        log(f"  {label(record):44s} " + " ".join(f"{k}={v * 1e3:.1f}ms" for k, v in record["median_s"].items()))
        records.append(record)
    return records
