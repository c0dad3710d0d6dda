"""Example 9: a neural computer -- an LSTM controller with an external memory -- learns to copy.

The copy task of the lecture's figure: L random 5-bit words, then a 1-bit interrupt (the
delimiter); then, with no more input, the network must output the L words in order. Per-bit
held-out accuracy is measured at the training lengths (1-10) and at longer ones (15, 20).

The memory M (B, N slots, W wide) is read and written by attention over all slots (the
Neural Turing Machine's addressing, Graves et al. 2014). At every step the controller's state
h gives each head a key k, a strength beta > 0, an interpolation gate g and a shift s over
{-1, 0, +1}; the head's weights over the slots are

    w_c = softmax(beta * cos(k, M_i))                 content: the slots that look like k
    w_g = g * w_c + (1 - g) * w_prev                  or stay where the head was
    w   = s_-1 w_g[i+1] + s_0 w_g[i] + s_+1 w_g[i-1]   then move by one slot (circular)

The write head erases and adds: M_i <- M_i * (1 - w_i e) + w_i a  (e = sigmoid(.), a = tanh(.));
the read head reads r = sum_i w_i M_i, which the controller sees at the next step and the output
layer at this one. The baseline is an LSTM of about the same number of parameters, no memory.

    python examples/neural_computer.py [--quick]
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from _common import fit, new_figure, parse_quick, save_picture, seed
from minirnn import Tensor, cat, functional as F, nn, no_grad, stack

BITS = 5
PICTURE = Path(__file__).resolve().parent / "img" / "neural_computer.png"


def make(rng: np.random.Generator, batch: int, length: int) -> tuple[np.ndarray, np.ndarray]:
    """inputs (2L + 1, B, BITS + 1): the words, the interrupt (last bit), then zeros;
    targets (L, B, BITS): the words, for the last L steps."""
    words = rng.integers(0, 2, (length, batch, BITS)).astype(np.float32)
    inputs = np.zeros((2 * length + 1, batch, BITS + 1), np.float32)
    inputs[:length, :, :BITS] = words
    inputs[length, :, BITS] = 1.0
    return inputs, words


def circular_shift(w: Tensor, shift: Tensor) -> Tensor:
    """w (B, N) moved by -1, 0 or +1 slots, mixed by shift (B, 3): a circular convolution."""
    n = w.shape[1]
    ahead, behind = np.roll(np.arange(n), -1), np.roll(np.arange(n), 1)
    return shift[:, 0:1] * w[:, ahead] + shift[:, 1:2] * w + shift[:, 2:3] * w[:, behind]


class Head(nn.Module):
    """Addressing of one head (see the module docstring); ``extra`` more outputs (erase, add)."""

    def __init__(self, hidden: int, width: int, extra: int = 0):
        super().__init__()
        self.width = width
        self.params = nn.Linear(hidden, width + 1 + 1 + 3 + extra)  # key, beta, g, shift, extra

    def forward(self, h: Tensor, memory: Tensor, w_prev: Tensor) -> tuple[Tensor, Tensor]:
        """weights (B, N) and the extra outputs (B, extra)."""
        p = self.params(h)
        W = self.width
        key, beta, gate, shift = p[:, :W], F.softplus(p[:, W:W + 1]), p[:, W + 1:W + 2].sigmoid(), p[:, W + 2:W + 5]
        dot = (memory @ key.reshape(key.shape[0], W, 1)).reshape(memory.shape[0], memory.shape[1])  # (B, N)
        norms = ((memory * memory).sum(-1) + 1e-8) ** 0.5 * ((key * key).sum(-1, keepdims=True) + 1e-8) ** 0.5
        content = F.softmax(beta * dot / norms, -1)
        w = circular_shift(gate * content + (1.0 - gate) * w_prev, F.softmax(shift, -1))
        return w, p[:, W + 5:]


class NeuralComputer(nn.Module):
    def __init__(self, hidden: int, slots: int, width: int):
        super().__init__()
        self.slots, self.width = slots, width
        self.controller = nn.LSTMCell(BITS + 1 + width, hidden)
        self.read_head = Head(hidden, width)
        self.write_head = Head(hidden, width, extra=2 * width)  # erase, add
        self.out = nn.Linear(hidden + width, BITS)
        self.memory0 = nn.Parameter(np.random.default_rng(0).uniform(-0.1, 0.1, (slots, width)).astype(np.float32))

    def forward(self, inputs: np.ndarray) -> Tensor:
        """inputs (S, B, BITS + 1) -> logits (S, B, BITS) at every step."""
        S, B, _ = inputs.shape
        memory = Tensor(np.zeros((B, self.slots, self.width), np.float32)) + self.memory0
        start = np.zeros((B, self.slots), np.float32)
        start[:, 0] = 1.0
        w_read = w_write = Tensor(start)
        read, state, logits = Tensor(np.zeros((B, self.width), np.float32)), None, []
        for t in range(S):
            h, c = state = self.controller(cat([Tensor(inputs[t]), read], -1), state)
            w_write, erase_add = self.write_head(h, memory, w_write)
            erase, add = erase_add[:, :self.width].sigmoid(), erase_add[:, self.width:].tanh()
            ww = w_write.reshape(B, self.slots, 1)
            memory = memory * (1.0 - ww * erase.reshape(B, 1, self.width)) + ww * add.reshape(B, 1, self.width)
            w_read, _ = self.read_head(h, memory, w_read)
            read = (w_read.reshape(B, 1, self.slots) @ memory).reshape(B, self.width)
            logits.append(self.out(cat([h, read], -1)))
        return stack(logits)


class PlainLSTM(nn.Module):
    """The baseline: one LSTM layer and a linear read-out, no memory."""

    def __init__(self, hidden: int):
        super().__init__()
        self.lstm = nn.LSTM(BITS + 1, hidden)
        self.out = nn.Linear(hidden, BITS)

    def forward(self, inputs: np.ndarray) -> Tensor:
        return self.out(self.lstm(inputs)[0])


def copy_loss(model: nn.Module, inputs: np.ndarray, targets: np.ndarray) -> Tensor:
    """Binary cross-entropy of the outputs of the last L steps (the recall) against the words."""
    logits = model(inputs)[-targets.shape[0]:]
    return F.binary_cross_entropy_with_logits(logits, targets)


def bit_accuracy(model: nn.Module, length: int, count: int = 200) -> float:
    inputs, targets = make(np.random.default_rng(1000 + length), count, length)
    with no_grad():
        logits = model(inputs)[-length:].data
    return float(((logits > 0) == (targets > 0.5)).mean())


def n_params(model: nn.Module) -> int:
    return sum(p.data.size for p in model.parameters())


def main(quick: bool = False) -> dict[str, float]:
    steps, hidden, max_len = (60, 32, 4) if quick else (3000, 64, 10)
    tests = [(f"lengths 1-{max_len}", range(1, max_len + 1))] + ([] if quick else [("length 15", [15]),
                                                                                ("length 20", [20])])
    result, trained = {}, {}
    for name in ("neural computer", "LSTM"):
        rng = seed(0)
        if name == "LSTM":  # as many parameters as the neural computer, or just above
            size = next(h for h in range(hidden, 8 * hidden) if n_params(PlainLSTM(h)) >= n_params(trained["neural computer"]))
            model = PlainLSTM(size)
        else:
            model = NeuralComputer(hidden, 24, 16)
        fit(lambda i: copy_loss(model, *make(rng, 16, int(rng.integers(1, max_len + 1)))), model.parameters(),
            steps, lr=3e-3, desc=name)
        trained[name] = model
        for test, lengths in tests:
            result[f"{name}: {test}"] = float(np.mean([bit_accuracy(model, n) for n in lengths]))
        print(f"copy task, {name} ({n_params(model):,} parameters): held-out per-bit accuracy, " +
              "; ".join(f"{test}: {result[f'{name}: {test}']:.3f}" for test, _ in tests))
    if not quick:
        draw(trained, PICTURE)
    return result


def draw(models: dict[str, nn.Module], path: Path, lengths: tuple[int, ...] = (10, 20)) -> None:
    """Input, target and each model's output (probability of each bit) for one held-out sequence
    per length, like the lecture's figure; if matplotlib (the ``plot`` extra) is installed."""
    fig = new_figure(figsize=(11, 1.2 * (2 + len(models))), layout="constrained")
    if fig is None:
        return
    axes = fig.subplots(2 + len(models), len(lengths), squeeze=False)
    for column, length in enumerate(lengths):
        inputs, targets = make(np.random.default_rng(7), 1, length)
        shown_target = np.zeros((inputs.shape[0], BITS), np.float32)
        shown_target[-length:] = targets[:, 0]
        rows = [("input", inputs[:, 0])] + [("target", shown_target)]
        with no_grad():
            for name, model in models.items():  # the recall steps only, as in the target
                recalled = np.zeros_like(shown_target)
                recalled[-length:] = 1 / (1 + np.exp(-model(inputs).data[-length:, 0]))
                rows.append((f"{name} output", recalled))
        for ax, (title, image) in zip(axes[:, column], rows):
            ax.imshow(image.T, aspect="auto", cmap="Blues" if title == "input" else "Reds", vmin=0, vmax=1,
                      interpolation="nearest")
            ax.set(yticks=[], xticks=[], title=f"{title}, length {length}")
    save_picture(fig, path)


if __name__ == "__main__":
    main(parse_quick(__doc__.split("\n")[0]))
