"""The command line: ``python -m minirnn {train charlm, train wordlm, sample, bench}``.

* ``train charlm [--data FILE] [--minutes M | --steps N] [--out CKPT]``: train the character LSTM
  (:mod:`minirnn.charlm`) with truncated BPTT on ``FILE`` or, by default, the English text of
  ``pydoc_data.topics``; report held-out bits per character against a unigram baseline, save a
  checkpoint (model, config and vocabulary, no pickle) and print samples.
  ``train wordlm [--min-count N]`` is the same with words for tokens (:mod:`minirnn.wordlm`: words
  seen fewer than N times, default 3, become ``<unk>``); it reports held-out perplexity against the
  unigram model's.
  Every ``--checkpoint-minutes`` (default 5; ``--checkpoint-steps N`` too) and at the end, ``--out``
  gets a checkpoint that also holds the training state (the ``train`` part: options, data
  fingerprint, step, data position, the carried LSTM state, Adam's state, the NaN guard's counts and
  minirnn's random generator); ``--resume CKPT`` continues it, and ends bit for bit where the run
  never interrupted would have (same ``--steps``). SIGINT (Ctrl-C) or SIGTERM: the current step
  ends, a checkpoint is saved and the command exits 130 or 143 (128 + the signal) naming it; a
  second signal acts at once. An update whose loss or gradient norm is not finite is skipped and
  reported; ``--max-nonfinite`` (default 5) in a row, or parameters that are no longer finite,
  stop the run with exit status 3, and a checkpoint with non-finite parameters is never written.
* ``sample CKPT --prompt TEXT [--length N --temperature T --top-k K --seed S]``: generate.
* ``export CKPT OUT.onnx``: the ``train charlm`` model as ONNX (:func:`export_charlm`).
* ``bench [--full] [--threads N,N] [--shape T,B,H ...] [--repeats R]``: the benchmark harness
  (:mod:`minirnn.bench`).
"""
from __future__ import annotations

import argparse
import contextlib
import inspect
import json
import math
import os
import signal
import sys
import threading
import time
import zlib
from collections.abc import Mapping
from dataclasses import dataclass
from types import FrameType
from typing import Any, Callable, Iterator, Sequence, TypeVar

import numpy as np

from . import _extension, distributed, optim
from .arguments import positive_argument, shape_argument, thread_counts_argument
from .charlm import (CharLM, default_corpus, encode_corpus, evaluate_bits, split_held_out, state_shapes, streams,
                     training_loss, unigram_bits)
from .data import CharVocab, WordVocab
from .data.vocab import Vocab
from .generate import generate
from .random import default_generator, manual_seed
from .serialization import load, save
from .tbptt import NonFiniteError, NonFiniteGuard, tbptt
from .tensor import Tensor
from .wordlm import encode_words

T = TypeVar("T")
#: The keys of ``CharLM.config``: what a checkpoint may pass to ``CharLM``.
CHARLM_CONFIG_KEYS = frozenset(inspect.signature(CharLM).parameters) - {"dtype"}


def _progress(total: int | None, quiet: bool, unit: str) -> Any:  # a tqdm bar
    from tqdm import tqdm
    quiet = quiet or distributed.rank() != 0  # one progress bar: rank 0's
    return tqdm(total=total, unit=unit, disable=quiet or not sys.stderr.isatty(), dynamic_ncols=True)


def _sample_text(model: CharLM, vocab: Vocab, prompt: str, length: int, temperature: float,
                 top_k: int | None, seed: int) -> str:
    ids = generate(model, vocab.encode(prompt), length, temperature, top_k, np.random.default_rng(seed))
    # characters run on; words are split and joined with single spaces ("The " + "cat" -> "The cat")
    return vocab.join([vocab.join(vocab.split(prompt)), vocab.decode(ids)])


def _read_text(path: str) -> str:
    try:
        with open(path, encoding="utf-8") as f:
            return f.read()
    except UnicodeDecodeError as exc:
        raise ValueError(f"--data: expected a UTF-8 text file, got {path!r} "
                         f"({exc.reason} at byte {exc.start})") from exc


#: ``train charlm``'s exit status when it stops on non-finite losses/gradients/parameters.
EXIT_NONFINITE = 3
#: The options a ``--resume`` checkpoint fixes (the model's sizes come from its config).
RESUMED_OPTIONS = ("seq_len", "batch", "lr", "clip", "val_fraction", "seed", "max_nonfinite")
#: Bytes per parameter while training: the value, its gradient and Adam's two running averages.
_TRAINING_BYTES_PER_PARAM = 4 * 4


def _physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):  # pragma: no cover - not POSIX
        return None


def _check_model_fits(vocab_size: int, args: argparse.Namespace) -> None:
    """Refuse, before allocating anything, a model whose training state exceeds physical memory."""
    shapes = state_shapes(vocab_size, args.embed, args.hidden, args.layers)
    count = sum(int(np.prod(shape, dtype=object)) for shape in shapes.values())
    need, have = count * _TRAINING_BYTES_PER_PARAM, _physical_memory()
    if have is not None and need > have:
        raise ValueError(f"--embed/--hidden/--layers: expected a model that fits in memory, got "
                         f"{count:,} parameters (--embed {args.embed} --hidden {args.hidden} --layers "
                         f"{args.layers}): {need / 2**30:.1f} GiB to train, this machine has {have / 2**30:.1f} GiB")


def _data_fingerprint(text: str) -> dict[str, int]:
    return {"chars": len(text), "crc32": zlib.crc32(text.encode("utf-8", "surrogatepass"))}


def _all_finite(params: Sequence[Tensor]) -> bool:
    return all(np.isfinite(p.data).all() for p in params)


class _Stop:
    """SIGINT/SIGTERM set ``signum`` (the loop then saves and exits); a second one acts at once."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.previous: dict[int, Callable[[int, FrameType | None], Any] | int | None] = {}

    def __call__(self, signum: int, frame: object) -> None:
        self.signum = signum
        for sig, handler in self.previous.items():  # a second Ctrl-C: the usual KeyboardInterrupt
            signal.signal(sig, handler)

    def __enter__(self) -> _Stop:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self.previous[sig] = signal.signal(sig, self)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self.previous.items():
            signal.signal(sig, handler)


def _resume_state(path: str, args: argparse.Namespace) -> dict:
    """The ``train`` part of a checkpoint to resume, with ``args`` updated to its options."""
    ckpt = load(path)
    resume = ckpt.get("train")
    if not isinstance(resume, dict) or not {"options", "data", "step", "position", "state", "optimizer",
                                             "guard", "rng", "elapsed_s"} <= set(resume):
        raise ValueError(f"--resume: expected a checkpoint written by 'train charlm' with its training state, "
                         f"got keys {sorted(ckpt)}" + ("" if resume is None else f" (train: {sorted(resume)})"
                                                       if isinstance(resume, dict) else ""))
    options = resume["options"]
    if not isinstance(options, dict) or set(options) != set(RESUMED_OPTIONS) or not isinstance(resume["data"], dict):
        raise ValueError(f"--resume: train: options: expected the keys {list(RESUMED_OPTIONS)}, got {options!r}")
    for name, value in options.items():  # user data: each value must pass its option's own check
        try:
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(type(value).__name__)
            _OPTION_TYPES[name](str(value))
        except (TypeError, ValueError, argparse.ArgumentTypeError) as exc:
            raise ValueError(f"--resume: train: options: {name}: got {value!r} ({exc})") from exc
    vars(args).update(options)
    if args.data is None:
        args.data = resume["data"].get("path")
    return ckpt


def _restore(resume: dict, model: CharLM, opt: optim.Optimizer, guard: NonFiniteGuard) -> tuple:
    """Load a checkpoint's training state into ``opt``, ``guard`` and minirnn's generator; return
    ``(step, data position, carried LSTM state, seconds trained)``."""
    opt.load_state_dict(resume["optimizer"])
    guard.load_state_dict(resume["guard"])
    step, pos, trained_s = resume["step"], resume["position"], resume["elapsed_s"]
    if not all(type(v) is int and v >= 0 for v in (step, pos)) or not isinstance(trained_s, (int, float)):
        raise ValueError(f"expected step and position ints >= 0, got {step!r}, {pos!r}")
    state = resume["state"]
    if state is not None:
        cfg = model.config
        shape = (cfg["num_layers"], resume["options"]["batch"], cfg["hidden_size"])
        if not (isinstance(state, list) and len(state) == 2 and
                all(isinstance(a, np.ndarray) and a.shape == shape and a.dtype == np.float32 for a in state)):
            raise ValueError(f"state: expected the LSTM's (h, c), two float32 arrays of shape {shape}")
        state = tuple(Tensor(a) for a in state)
    default_generator().bit_generator.state = resume["rng"]
    return step, pos, state, float(trained_s)


def _score(model_kind: str, bits: float) -> str:
    """Bits per token as the model kind reports it: bits/char, or perplexity for words."""
    return f"{bits:.3f} bits/char" if model_kind == "charlm" else f"perplexity {2.0 ** bits:.1f}"


@dataclass
class _Corpus:
    """The token data of one ``train`` run: training streams (this rank's), held-out streams and what
    a checkpoint records of them."""

    vocab: Vocab
    train: np.ndarray      # (steps, this rank's streams) token ids
    held_out: np.ndarray   # (steps, streams) token ids
    held_ids: np.ndarray   # the held-out ids in order (the sample prompt's fallback)
    baseline: float        # the unigram model's held-out bits per token
    data_info: dict        # the data's path and fingerprint, as a checkpoint keeps them


def _load_corpus(args: argparse.Namespace, ckpt: dict | None, mine: slice) -> _Corpus:
    """Read and encode ``--data`` (default: the pydoc corpus), check it is a resumed checkpoint's own,
    split off the held-out part and print a line about it."""
    if args.data is None:
        text, source = default_corpus(), "pydoc_data.topics"
    else:
        text, source = _read_text(args.data), args.data
    fingerprint = _data_fingerprint(text)
    vocab, ids = encode_words(text, args.min_count) if args.model == "wordlm" else encode_corpus(text)
    del text  # the ids (one byte a character for up to 256 characters) are all that is needed
    if ckpt is not None and fingerprint != ckpt["train"]["data"].get("fingerprint"):
        raise ValueError(f"--resume: the data differs from the checkpoint's ({source}: {fingerprint}, "
                         f"checkpoint: {ckpt['train']['data']}); pass --data with the file it was trained on")
    train_ids, held_ids = split_held_out(ids, args.val_fraction)
    train, held_out = streams(train_ids, args.batch), streams(held_ids, min(args.batch, len(held_ids) // 2))
    baseline = unigram_bits(train_ids, held_ids, len(vocab))
    unit = "chars" if args.model == "charlm" else f"words and marks (vocabulary: seen >= {args.min_count} times)"
    print(f"data: {source}, {len(ids):,} {unit}, vocab {len(vocab)}, held out {len(held_ids):,}; "
          f"unigram baseline {_score(args.model, baseline)}")
    data_info = {"path": None if args.data is None else os.path.abspath(args.data), "fingerprint": fingerprint}
    return _Corpus(vocab, np.ascontiguousarray(train[:, mine]), held_out, held_ids, baseline, data_info)


def _make_model(args: argparse.Namespace, vocab: Vocab, ckpt: dict | None) -> CharLM:
    """A new model of the options' sizes, or a resumed checkpoint's (whose vocabulary must be the data's)."""
    if ckpt is None:
        _check_model_fits(len(vocab), args)
        return CharLM(len(vocab), args.embed, args.hidden, args.layers)
    model, saved_vocab = _model_from(ckpt)
    if saved_vocab != vocab:
        raise ValueError("--resume: the checkpoint's vocabulary differs from the data's")
    return model


class _Training:
    """One ``train`` run after its setup: the model, Adam, the NaN guard, the position in the data and
    the carried LSTM state; it steps (:meth:`loop`) and saves checkpoints (:meth:`checkpoint`)."""

    def __init__(self, args: argparse.Namespace, corpus: _Corpus, model: CharLM, ckpt: dict | None,
                 mine: slice) -> None:
        self.args, self.corpus, self.model = args, corpus, model
        self.params = list(model.parameters())
        self.opt = optim.Adam(self.params, lr=args.lr)
        self.guard = NonFiniteGuard(args.max_nonfinite)
        self.step, self.pos, self.state, self.trained_s = 0, 0, None, 0.0
        if ckpt is not None:
            self.step, self.pos, state, self.trained_s = _checkpoint_part(
                "train", lambda: _restore(ckpt["train"], model, self.opt, self.guard))
            self.state = None if state is None else tuple(Tensor(np.ascontiguousarray(s.data[:, mine])) for s in state)
            options = ", ".join(f"{k} {getattr(args, k)}" for k in RESUMED_OPTIONS)
            print(f"resumed {args.resume} at step {self.step} with its options ({options}) and model sizes")
        self.saved_step: int | None = None
        self.start = time.perf_counter()

    def checkpoint(self, metrics: dict) -> bool:
        """Save everything a resumed run needs to --out; never parameters that are not finite."""
        if not _all_finite(self.params):
            return False
        whole_state = None if self.state is None else [distributed.gather_along(s.data, 1) for s in self.state]
        if distributed.rank() != 0:
            return True
        args, corpus = self.args, self.corpus
        save({"model": self.model.state_dict(), "config": self.model.config, "vocab": corpus.vocab.to_dict(),
              "metrics": {"unigram_bpc": corpus.baseline, "steps": self.step, **metrics},
              "train": {"options": {k: getattr(args, k) for k in RESUMED_OPTIONS}, "data": corpus.data_info,
                        "step": self.step, "position": self.pos,
                        "state": whole_state,
                        "optimizer": self.opt.state_dict(), "guard": self.guard.state_dict(),
                        "rng": default_generator().bit_generator.state,
                        "elapsed_s": self.trained_s + time.perf_counter() - self.start}}, args.out)
        return True

    def loop(self) -> int | None:
        """Train until --steps or --minutes, or a signal (returned: its number); checkpoint as asked."""
        args = self.args
        deadline, last_save = self.start + 60 * args.minutes, self.start
        every_s = 60 * args.checkpoint_minutes if args.checkpoint_minutes else math.inf
        ddp = distributed.DistributedDataParallel(self.model)
        recent: list[float] = []
        with _progress(args.steps, args.quiet, "step") as bar, _Stop() as stop:
            bar.update(min(self.step, args.steps or 0))
            while self._running(stop, deadline):
                chunk = self.corpus.train[self.pos:self.pos + args.seq_len + 1]
                if len(chunk) < 2:  # end of an epoch: start the streams again from a fresh state
                    self.pos, self.state = 0, None
                    continue
                result = tbptt(ddp, training_loss, self.opt, chunk[:-1], chunk[1:], args.seq_len, state=self.state,
                               max_norm=args.clip, parameters=self.params, guard=self.guard)
                self.state, self.pos, self.step = result.state, self.pos + args.seq_len, self.step + 1
                recent = (recent + [x for x in result.losses if math.isfinite(x)])[-50:]
                if result.skipped:
                    bar.write(f"step {self.step}: skipped the update (loss {result.losses[-1]}, non-finite loss or "
                              f"gradient norm; {self.guard.in_a_row} in a row, {self.guard.skipped} in all)",
                              file=sys.stderr)
                bar.update(1)
                if recent:
                    bar.set_postfix(bpc=f"{np.mean(recent) / np.log(2):.3f}")
                due = (args.checkpoint_steps and self.step % args.checkpoint_steps == 0) or \
                    time.perf_counter() - last_save >= every_s
                if distributed.agree(due) and self.checkpoint({}):
                    last_save, self.saved_step = time.perf_counter(), self.step
        return stop.signum

    def _running(self, stop: _Stop, deadline: float) -> bool:
        """Whether to take another step: rank 0's clock and signals decide for every rank."""
        steps = self.args.steps
        go = ((self.step < steps) if steps else (time.perf_counter() < deadline)) and not stop.signum
        go, signum = distributed.agree((go, stop.signum))
        # Rank 0's signal decides on every rank; on rank 0 itself, its None must not clear a signal
        # the handler set after it was read (the run would go on as if none had come).
        if signum is not None or distributed.rank() != 0:
            stop.signum = signum
        return go

    def finish(self, signum: int | None) -> int:
        """After the loop: save and name a signal's stop, or evaluate, save and print samples; the exit status."""
        args, corpus, step = self.args, self.corpus, self.step
        elapsed = time.perf_counter() - self.start
        if signum:
            name = signal.Signals(signum).name
            if not self.checkpoint({}):
                print(f"{name}: stopped at step {step}; the parameters are not finite, {args.out} not written",
                      file=sys.stderr)
                return EXIT_NONFINITE
            print(f"{name}: stopped after step {step}; saved {args.out}; continue with --resume {args.out}",
                  file=sys.stderr)
            return 128 + signum
        if not _all_finite(self.params):
            print(f"error: after step {step} the parameters are not finite (learning rate too high?); "
                  f"{args.out} not written", file=sys.stderr)
            return EXIT_NONFINITE
        bits = evaluate_bits(self.model, corpus.held_out, args.seq_len) if distributed.rank() == 0 else math.nan
        skipped = f"; skipped {self.guard.skipped} non-finite updates" if self.guard.skipped else ""
        print(f"trained {step} steps ({step * args.seq_len * args.batch:,} tokens) in {elapsed:.0f} s; "
              f"held-out {_score(args.model, bits)} vs unigram {_score(args.model, corpus.baseline)}{skipped}")
        self.checkpoint({"val_bpc": bits})
        print(f"saved {args.out}")
        vocab = corpus.vocab
        prompt = "The " if all(t in vocab for t in vocab.split("The ")) else vocab.decode(corpus.held_ids[:4])
        for seed in range(args.samples if distributed.rank() == 0 else 0):
            print(f"--- sample {seed + 1} (temperature 0.8)\n"
                  f"{_sample_text(self.model, vocab, prompt, 200, 0.8, None, seed)}")
        return 0


def train_charlm(args: argparse.Namespace) -> int:
    """``train charlm`` / ``train wordlm``: set up (or resume) a run, train it, report; the exit status."""
    args.out = args.out or f"{args.model}.npz"
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if os.path.isdir(args.out) or not os.path.isdir(out_dir):  # fail now, not after the training
        raise ValueError(f"--out: expected a file in an existing directory, got {args.out!r}")
    ckpt = _resume_state(args.resume, args) if args.resume else None
    _set_threads(args.threads)
    mine = distributed.shard(args.batch)  # this rank's streams of the global batch (all in one process)
    manual_seed(args.seed)
    corpus = _load_corpus(args, ckpt, mine)
    run = _Training(args, corpus, _make_model(args, corpus.vocab, ckpt), ckpt, mine)
    try:
        signum = run.loop()
    except NonFiniteError as exc:
        kept = f"{args.out} keeps the checkpoint of step {run.saved_step}" if run.saved_step is not None else \
            f"{args.out} was not written by this run"
        print(f"error: training stopped at step {run.step + 1}: {exc}; {kept}", file=sys.stderr)
        return EXIT_NONFINITE
    return run.finish(signum)


def _set_threads(threads: int | None) -> None:
    """The kernels' threads: ``threads``, or under MPI the cores shared out among this machine's ranks."""
    if threads is None and distributed.is_distributed():
        threads = max(1, (os.cpu_count() or 1) // distributed.local_size())
    if threads is not None and _extension.C is not None:  # (without the extension, NumPy's BLAS decides)
        _extension.C.set_num_threads(threads)


def _checkpoint_part(name: str, build: Callable[[], T]) -> T:
    """``build()``, with any error it raises on damaged data turned into a ValueError that names
    the checkpoint's part ``name``."""
    try:
        return build()
    except (TypeError, ValueError, KeyError, AttributeError, IndexError) as exc:
        text = str(exc)
        raise ValueError(f"checkpoint: {text if text.startswith(name + ':') else f'{name}: {text}'}") from exc


def _sizes_are_ints(config: dict) -> bool:
    return all(type(config.get(k)) is int and config[k] >= 1
               for k in ("vocab_size", "embed_dim", "hidden_size", "num_layers"))


def _check_model_shapes(config: dict, weights: object) -> None:
    """The stored arrays must have the shapes the config declares: checked before the model is
    built, so a small file declaring a huge model fails without allocating it."""
    if not isinstance(weights, Mapping) or not all(isinstance(v, np.ndarray) for v in weights.values()):
        raise ValueError(f"checkpoint: model: expected a dict of arrays, got {type(weights).__name__}")
    if not _sizes_are_ints(config):
        return  # CharLM(**config) names the bad value
    if 4 * config["num_layers"] + 3 != len(weights):
        raise ValueError(f"checkpoint: model: expected {4 * config['num_layers'] + 3} arrays for num_layers="
                         f"{config['num_layers']} (config), got {len(weights)}")
    sizes = {k: config[k] for k in ("vocab_size", "embed_dim", "hidden_size", "num_layers")}
    for name, shape in state_shapes(**sizes).items():
        got = weights[name].shape if name in weights else None
        if got != shape:
            raise ValueError(f"checkpoint: model: {name}: expected shape {shape} (from the config {sizes}), got "
                             + ("no such array" if got is None else str(got)))


def _model_from(ckpt: dict) -> tuple[CharLM, Vocab]:
    if not {"model", "config", "vocab"} <= set(ckpt):
        raise ValueError(f"checkpoint: expected a file written by 'train charlm' (model, config, vocab), "
                         f"got keys {sorted(ckpt)}")
    config, keys = ckpt["config"], sorted(CHARLM_CONFIG_KEYS)
    if not (isinstance(config, dict) and "vocab_size" in config and set(config) <= CHARLM_CONFIG_KEYS):
        raise ValueError(f"checkpoint: config: expected the keys {keys} (vocab_size required), got {config!r}")
    _check_model_shapes(config, ckpt["model"])
    model = _checkpoint_part("config", lambda: CharLM(**config))
    kind = CharVocab if not isinstance(ckpt["vocab"], dict) or ckpt["vocab"].get("kind") != "word" else WordVocab
    vocab = _checkpoint_part("vocab", lambda: kind.from_dict(ckpt["vocab"]))
    if len(vocab) != config["vocab_size"]:
        raise ValueError(f"checkpoint: vocab: expected {config['vocab_size']} tokens (config's vocab_size), "
                         f"got {len(vocab)}")
    _checkpoint_part("model", lambda: model.load_state_dict(ckpt["model"]))
    return model, vocab


def load_charlm(path: str) -> tuple[CharLM, Vocab]:
    """The model and vocabulary of a checkpoint written by ``train charlm`` or ``train wordlm`` (the
    vocabulary's kind says which). A file is user data:
    a missing or damaged part (config keys or values, vocabulary, weights) is a ValueError naming it;
    the weights' shapes are checked against the config before the model is built."""
    return _model_from(load(path))


def sample(args: argparse.Namespace) -> int:
    model, vocab = load_charlm(args.checkpoint)
    missing = sorted(t for t in vocab.split(args.prompt) if t not in vocab and vocab.unk is None)
    if missing or not vocab.split(args.prompt):
        tokens = "characters" if vocab.kind == "char" else "words"
        raise ValueError(f"prompt: expected non-empty text of {tokens} in the vocabulary, got "
                         f"{args.prompt!r} (unknown: {missing})")
    print(_sample_text(model, vocab, args.prompt, args.length, args.temperature, args.top_k, args.seed))
    return 0


def export_charlm(args: argparse.Namespace) -> int:
    """The model of a ``train charlm`` checkpoint as an ONNX file: inputs ``ids`` (T, B) int64,
    ``h0``/``c0`` (layers, B, hidden); outputs ``logits`` (T, B, vocab), ``h_n``, ``c_n``; the
    vocabulary's characters, in id order, as JSON in the metadata under ``minirnn.vocab``."""
    try:
        from . import onnx as minirnn_onnx
    except ImportError as exc:
        print(f"export: {exc}", file=sys.stderr)
        return 1
    model, vocab = load_charlm(args.checkpoint)
    state = np.zeros((model.config["num_layers"], 1, model.config["hidden_size"]), np.float32)
    minirnn_onnx.export(model, (np.zeros((2, 1), np.int64), (state, state)), args.out,
                        input_names=["ids", "h0", "c0"], output_names=["logits", "h_n", "c_n"],
                        metadata={"minirnn.vocab": json.dumps(vocab.tokens)})
    print(f"saved {args.out}")
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


def _fraction(text: str) -> float:
    value = float(text)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"expected a number in (0, 1), got {text}")
    return value


def _finite_positive(text: str) -> float:
    value = float(text)
    if not 0 < value < math.inf:
        raise argparse.ArgumentTypeError(f"expected a finite number > 0, got {text}")
    return value


def _non_negative(kind: type) -> Callable[[str], float | int]:
    def parse(text: str) -> float | int:
        value = kind(text)
        if not 0 <= value < math.inf:
            raise argparse.ArgumentTypeError(f"expected {'an integer' if kind is int else 'a finite number'} >= 0, "
                                             f"got {text}")
        return value
    return parse


def _file_path(text: str) -> str:
    if not text:  # (a directory is refused by the command, with its own message)
        raise argparse.ArgumentTypeError(f"expected a file path, got {text!r}")
    return text


_OPTION_TYPES: dict[str, Callable[[str], object]] = {
    "seq_len": positive_argument(int), "batch": positive_argument(int), "lr": _finite_positive,
    "clip": positive_argument(float), "val_fraction": _fraction, "seed": _non_negative(int),
    "max_nonfinite": positive_argument(int)}


def parser() -> argparse.ArgumentParser:
    """The command line's parser: one subcommand each for train, sample, export and bench."""
    p = argparse.ArgumentParser(prog="python -m minirnn", description=__doc__.split("\n")[0])
    sub = p.add_subparsers(dest="command", required=True)
    _add_train(sub.add_parser("train", help="train a model"))
    _add_sample(sub.add_parser("sample", help="generate text from a checkpoint"))
    _add_export(sub.add_parser("export", help="write a 'train charlm' checkpoint's model as ONNX (needs minirnn[onnx])"))
    _add_bench(sub.add_parser("bench", help="run the benchmarks (quick unless --full)"))
    return p


def _add_train(train: argparse.ArgumentParser) -> None:
    train.add_argument("model", choices=["charlm", "wordlm"])
    train.add_argument("--data", help="UTF-8 text file (default: pydoc_data.topics)")
    train.add_argument("--minutes", type=positive_argument(float), default=2.0, help="training time (default 2)")
    train.add_argument("--steps", type=positive_argument(int), help="train this many updates instead of --minutes")
    train.add_argument("--out", type=_file_path,
                       help="checkpoint path (default MODEL.npz), also written every --checkpoint-minutes")
    train.add_argument("--resume", metavar="CKPT", type=_file_path,
                       help="continue the run saved in CKPT (its data, sizes and options; --steps counts "
                            "from its start, --minutes from now)")
    train.add_argument("--checkpoint-minutes", type=_non_negative(float), default=5.0,
                       help="save a resumable checkpoint to --out this often (default 5; 0: only at the end)")
    train.add_argument("--checkpoint-steps", type=_non_negative(int), default=0,
                       help="also save one every this many steps (default 0: off)")
    train.add_argument("--max-nonfinite", type=_OPTION_TYPES["max_nonfinite"], default=5,
                       help="stop (exit 3) after this many updates in a row skipped for a non-finite loss or "
                            "gradient norm (default 5)")
    train.add_argument("--seq-len", type=_OPTION_TYPES["seq_len"], default=64, help="TBPTT chunk length k1 = k2")
    train.add_argument("--batch", type=_OPTION_TYPES["batch"], default=32)
    train.add_argument("--embed", type=positive_argument(int), default=32)
    train.add_argument("--hidden", type=positive_argument(int), default=128)
    train.add_argument("--layers", type=positive_argument(int), default=2)
    train.add_argument("--lr", type=_OPTION_TYPES["lr"], default=3e-3)
    train.add_argument("--clip", type=_OPTION_TYPES["clip"], default=1.0, help="gradient-norm clipping")
    train.add_argument("--val-fraction", type=_OPTION_TYPES["val_fraction"], default=0.05,
                       help="held-out share (default 0.05)")
    train.add_argument("--samples", type=int, default=2, help="samples to print after training")
    train.add_argument("--seed", type=_OPTION_TYPES["seed"], default=0)
    train.add_argument("--min-count", type=positive_argument(int), default=3,
                       help="wordlm: a word seen fewer times is <unk> (default 3)")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--threads", type=positive_argument(int),
                       help="kernel threads per process (default: all cores; under MPI, the cores / ranks on a machine)")
    train.set_defaults(run=train_charlm)


def _add_sample(smp: argparse.ArgumentParser) -> None:
    smp.add_argument("checkpoint")
    smp.add_argument("--prompt", default="The ")
    smp.add_argument("--length", type=int, default=300)
    smp.add_argument("--temperature", type=float, default=0.8)
    smp.add_argument("--top-k", type=positive_argument(int))
    smp.add_argument("--seed", type=_non_negative(int), default=0)
    smp.set_defaults(run=sample)


def _add_export(exp: argparse.ArgumentParser) -> None:
    exp.add_argument("checkpoint")
    exp.add_argument("out", type=_file_path, help="the .onnx file to write")
    exp.set_defaults(run=export_charlm)


def _add_bench(b: argparse.ArgumentParser) -> None:
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


@contextlib.contextmanager
def _rank0_prints() -> Iterator[None]:
    """Under MPI, the block's standard output on ranks other than 0 goes nowhere: one log, rank 0's
    (errors still reach standard error from every rank)."""
    if distributed.rank() == 0:
        yield
        return
    with open(os.devnull, "w") as sink, contextlib.redirect_stdout(sink):
        yield


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    with distributed.abort_on_error():
        try:
            with _rank0_prints():
                return args.run(args)
        except (ValueError, OSError, KeyError) as exc:
            print(f"error: {exc}", file=sys.stderr)
            if distributed.is_distributed():  # the other ranks may wait for this one: end them too
                distributed.abort(2)
            return 2
