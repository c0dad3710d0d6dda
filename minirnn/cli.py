"""The command line: ``python -m minirnn {train charlm, sample, bench}``.

* ``train charlm [--data FILE] [--minutes M | --steps N] [--out CKPT]``: train the character LSTM
  (:mod:`minirnn.charlm`) with truncated BPTT on ``FILE`` or, by default, the English text of
  ``pydoc_data.topics``; report held-out bits per character against a unigram baseline, save a
  checkpoint (model, config and vocabulary, no pickle) and print samples.
* ``sample CKPT --prompt TEXT [--length N --temperature T --top-k K --seed S]``: generate.
* ``bench [--full] [--threads N,N] [--shape T,B,H ...] [--repeats R]``: the benchmark harness
  (:mod:`minirnn.bench`).
"""
from __future__ import annotations

import argparse
import inspect
import os
import sys
import time
from typing import Callable, Sequence, TypeVar

import numpy as np

from . import optim
from .charlm import CharLM, default_corpus, evaluate_bits, split_held_out, streams, unigram_bits
from .data import CharVocab
from .generate import generate, sequence_cross_entropy
from .random import manual_seed
from .serialization import load, save
from .tbptt import tbptt

T = TypeVar("T")
#: The keys of ``CharLM.config``: what a checkpoint may pass to ``CharLM``.
CHARLM_CONFIG_KEYS = frozenset(inspect.signature(CharLM).parameters) - {"dtype"}


def _progress(total: int | None, quiet: bool, unit: str):
    from tqdm import tqdm
    return tqdm(total=total, unit=unit, disable=quiet or not sys.stderr.isatty(), dynamic_ncols=True)


def _sample_text(model: CharLM, vocab: CharVocab, prompt: str, length: int, temperature: float,
                 top_k: int | None, seed: int) -> str:
    ids = generate(model, vocab.encode(prompt), length, temperature, top_k, np.random.default_rng(seed))
    return prompt + vocab.decode(ids)


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as exc:
        raise ValueError(f"--data: expected a UTF-8 text file, got {path!r} "
                         f"({exc.reason} at byte {exc.start})") from exc


def train_charlm(args: argparse.Namespace) -> int:
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if os.path.isdir(args.out) or not os.path.isdir(out_dir):  # fail now, not after the training
        raise ValueError(f"--out: expected a file in an existing directory, got {args.out!r}")
    manual_seed(args.seed)
    if args.data is None:
        text, source = default_corpus(), "pydoc_data.topics"
    else:
        text, source = _read_text(args.data), args.data
    vocab = CharVocab.build(text)
    ids = vocab.encode(text)
    train_ids, held_ids = split_held_out(ids, args.val_fraction)
    train, held_out = streams(train_ids, args.batch), streams(held_ids, min(args.batch, len(held_ids) // 2))
    baseline = unigram_bits(train_ids, held_ids, len(vocab))
    print(f"data: {source}, {len(ids):,} chars, vocab {len(vocab)}, held out {len(held_ids):,}; "
          f"unigram baseline {baseline:.3f} bits/char")
    model = CharLM(len(vocab), args.embed, args.hidden, args.layers)
    params = list(model.parameters())
    opt = optim.Adam(params, lr=args.lr)
    start = time.perf_counter()
    deadline = start + 60 * args.minutes
    step, pos, state, recent = 0, 0, None, []
    with _progress(args.steps, args.quiet, "step") as bar:
        while (step < args.steps) if args.steps else (time.perf_counter() < deadline):
            chunk = train[pos:pos + args.seq_len + 1]
            if len(chunk) < 2:  # end of an epoch: start the streams again from a fresh state
                pos, state = 0, None
                continue
            result = tbptt(model, sequence_cross_entropy, opt, chunk[:-1], chunk[1:], args.seq_len,
                           state=state, max_norm=args.clip, parameters=params)
            state, pos, step = result.state, pos + args.seq_len, step + 1
            recent = (recent + result.losses)[-50:]
            bar.update(1)
            bar.set_postfix(bpc=f"{np.mean(recent) / np.log(2):.3f}")
    elapsed = time.perf_counter() - start
    bits = evaluate_bits(model, held_out, args.seq_len)
    print(f"trained {step} steps ({step * args.seq_len * args.batch:,} chars) in {elapsed:.0f} s; "
          f"held-out {bits:.3f} bits/char vs unigram {baseline:.3f}")
    save({"model": model.state_dict(), "config": model.config, "vocab": vocab.to_dict(),
          "metrics": {"val_bpc": bits, "unigram_bpc": baseline, "steps": step}}, args.out)
    print(f"saved {args.out}")
    prompt = "The " if set("The ") <= set(vocab.tokens) else vocab.decode(held_ids[:4])
    for seed in range(args.samples):
        print(f"--- sample {seed + 1} (temperature 0.8)\n{_sample_text(model, vocab, prompt, 200, 0.8, None, seed)}")
    return 0


def _checkpoint_part(name: str, build: Callable[[], T]) -> T:
    """``build()``, with any error it raises on damaged data turned into a ValueError that names
    the checkpoint's part ``name``."""
    try:
        return build()
    except (TypeError, ValueError, KeyError, AttributeError) as exc:
        text = str(exc)
        raise ValueError(f"checkpoint: {text if text.startswith(name + ':') else f'{name}: {text}'}") from exc


def load_charlm(path: str) -> tuple[CharLM, CharVocab]:
    """The model and vocabulary of a checkpoint written by ``train charlm``. A file is user data:
    a missing or damaged part (config keys or values, vocabulary, weights) is a ValueError naming it."""
    ckpt = load(path)
    if not {"model", "config", "vocab"} <= set(ckpt):
        raise ValueError(f"checkpoint: expected a file written by 'train charlm' (model, config, vocab), "
                         f"got keys {sorted(ckpt)}")
    config, keys = ckpt["config"], sorted(CHARLM_CONFIG_KEYS)
    if not (isinstance(config, dict) and "vocab_size" in config and set(config) <= CHARLM_CONFIG_KEYS):
        raise ValueError(f"checkpoint: config: expected the keys {keys} (vocab_size required), got {config!r}")
    model = _checkpoint_part("config", lambda: CharLM(**config))
    vocab = _checkpoint_part("vocab", lambda: CharVocab.from_dict(ckpt["vocab"]))
    if len(vocab) != config["vocab_size"]:
        raise ValueError(f"checkpoint: vocab: expected {config['vocab_size']} tokens (config's vocab_size), "
                         f"got {len(vocab)}")
    _checkpoint_part("model", lambda: model.load_state_dict(ckpt["model"]))
    return model, vocab


def sample(args: argparse.Namespace) -> int:
    model, vocab = load_charlm(args.checkpoint)
    missing = sorted(set(args.prompt) - set(vocab.tokens))
    if missing or not args.prompt:
        raise ValueError(f"prompt: expected non-empty text of characters in the vocabulary, got "
                         f"{args.prompt!r} (unknown: {missing})")
    print(_sample_text(model, vocab, args.prompt, args.length, args.temperature, args.top_k, args.seed))
    return 0


def bench(args: argparse.Namespace) -> int:
    try:
        from .bench import main as bench_main
    except ImportError as exc:
        print(f"bench: the benchmark harness (minirnn.bench) is not available: {exc}", file=sys.stderr)
        return 1
    bench_main(quick=not args.full, json_path=args.json, png_path=args.png,  # errors: main's handler
               shapes=tuple(args.shapes) if args.shapes else None, threads=args.threads, repeats=args.repeats)
    return 0


def positive_argument(kind: type) -> object:
    """argparse type: a ``kind`` (int or float) > 0 (also used by benchmarks/ab_builds.py)."""
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
    """argparse type: ``"1,2,4"`` -> (1, 2, 4), distinct thread counts >= 1 in increasing order
    (also used by benchmarks/thread_knobs.py and gemm_layouts.py)."""
    counts = _comma_ints(text)
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers >= 1 such as 1,2,4, got {text!r}")
    return tuple(sorted(set(counts)))


def shape_argument(text: str) -> object:
    """argparse type of a layer size: ``"50,64,512"`` (T, B, H with I = H) or ``"50,64,256,512"``
    (T, B, I, H) -> a bench Shape (also used by benchmarks/ab_builds.py)."""
    from .bench.problem import Shape
    dims = _comma_ints(text)
    if len(dims) not in (3, 4) or min(dims) < 1:
        raise argparse.ArgumentTypeError(f"expected T,B,H or T,B,I,H as integers >= 1 such as 50,64,512, got {text!r}")
    T, B, *rest = dims
    return Shape(T, B, rest[0], rest[-1])


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text}")
    return value


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m minirnn", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    train = sub.add_parser("train", help="train a model")
    train.add_argument("model", choices=["charlm"])
    train.add_argument("--data", help="UTF-8 text file (default: pydoc_data.topics)")
    train.add_argument("--minutes", type=positive_argument(float), default=2.0, help="training time (default 2)")
    train.add_argument("--steps", type=positive_argument(int), help="train this many updates instead of --minutes")
    train.add_argument("--out", default="charlm.npz", help="checkpoint path (default charlm.npz)")
    train.add_argument("--seq-len", type=positive_argument(int), default=64, help="TBPTT chunk length k1 = k2")
    train.add_argument("--batch", type=positive_argument(int), default=32)
    train.add_argument("--embed", type=positive_argument(int), default=32)
    train.add_argument("--hidden", type=positive_argument(int), default=128)
    train.add_argument("--layers", type=positive_argument(int), default=2)
    train.add_argument("--lr", type=positive_argument(float), default=3e-3)
    train.add_argument("--clip", type=positive_argument(float), default=1.0, help="gradient-norm clipping")
    train.add_argument("--val-fraction", type=_fraction, default=0.05, help="held-out share (default 0.05)")
    train.add_argument("--samples", type=int, default=2, help="samples to print after training")
    train.add_argument("--seed", type=int, default=0)
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(run=train_charlm)
    smp = sub.add_parser("sample", help="generate text from a checkpoint")
    smp.add_argument("checkpoint")
    smp.add_argument("--prompt", default="The ")
    smp.add_argument("--length", type=int, default=300)
    smp.add_argument("--temperature", type=float, default=0.8)
    smp.add_argument("--top-k", type=positive_argument(int))
    smp.add_argument("--seed", type=int, default=0)
    smp.set_defaults(run=sample)
    b = sub.add_parser("bench", help="run the benchmarks (quick unless --full)")
    b.add_argument("--full", action="store_true", help="the whole grid at 1 thread and all cores (~17 min)")
    b.add_argument("--json", default="minirnn-bench.json", help="results file (default minirnn-bench.json)")
    b.add_argument("--png", help="chart file (needs matplotlib: pip install 'minirnn[plot]')")
    b.add_argument("--threads", type=thread_counts_argument, metavar="N,N,...",
                   help="thread counts to time the grid at, e.g. 1,2,4,8 (default: all cores; --full: 1 and "
                        "all cores); with more than one, a thread-scaling table is printed")
    b.add_argument("--shape", type=shape_argument, action="append", dest="shapes", metavar="T,B,H",
                   help="a layer size to time, T,B,H (I = H) or T,B,I,H; repeat for several (default: the "
                        "quick or the full grid)")
    b.add_argument("--repeats", type=positive_argument(int), help="timed rounds per point (default 3 quick, 7 full)")
    b.set_defaults(run=bench)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.run(args)
    except (ValueError, OSError, KeyError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
